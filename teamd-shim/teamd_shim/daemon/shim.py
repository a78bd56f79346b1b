"""The shim process: one asyncio loop running every PortChannel's LACP.

Only this loop touches LACP state. Redis (config in, state out) and rtnetlink live in threads that
hand plain records over with `call_soon_threadsafe`, so no Redis stall or outage can delay a PDU.

`Shim` owns the lifecycle and the config reconciliation, and composes the parts:
  RoleMachine    (roles/machine.py)    what this instance is and may do; pure
  LagRunner      (daemon/runner.py)    every LAG's LACP, its dataplane writes and DB state
  HandoverDriver (roles/driver.py)     the role machine's Redis and thread side: snapshots,
                                       yield, takeover, resume, following the active
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

from teamd_shim.control.access import AccessPolicy
from teamd_shim.control.transport import ControlError, ControlServer
from teamd_shim.daemon.runner import LagRunner
from teamd_shim.daemon.warm_boot import WarmBoot
from teamd_shim.db import ownership, sonic_db, stale
from teamd_shim.db.config_watch import ConfigSnapshot, ConfigWatcher
from teamd_shim.db.ownership import OwnershipError, OwnerStore
from teamd_shim.db.publisher import Publisher
from teamd_shim.db.redis_decoded import keys
from teamd_shim.db.schema import (
    APPL_DB,
    APPL_DB_ID,
    PORTCHANNEL_MEMBER,
    STATE_DB,
    STATE_DB_ID,
    Target,
    lag_config_error,
    member_config_error,
)
from teamd_shim.db.warm_restart import WarmState, check_warm_start, set_state
from teamd_shim.io.dataplane import Dataplane
from teamd_shim.io.health_file import HealthFile
from teamd_shim.io.links import LinkInfo, LinkWatcher
from teamd_shim.model.config import LAG_NAME, DesiredConfig, desired_config
from teamd_shim.model.running_lag import RunningLag
from teamd_shim.roles.driver import HandoverDriver
from teamd_shim.roles.machine import SHADOW_LEASE_S, Effect, Role, RoleMachine

RECONCILE_LIMIT_S = 70.0  # teamsyncd's DEFAULT_WR_PENDING_TIMEOUT
log = logging.getLogger(__name__)


class Shim:
    """Drives all LAGs of CONFIG_DB in one of the roles of roles/machine.py."""

    def __init__(
        self,
        endpoint: sonic_db.Endpoint,
        dataplane: Dataplane,
        links: LinkWatcher,
        *,
        name: str,
        ctl_dir: str,
        access: AccessPolicy | None = None,
        role: str = "active",
        hot: bool = False,
        warmboot_dir: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.warm_boot = WarmBoot(warmboot_dir)  # teamd's -L (hld §6.2)
        self.dataplane = dataplane
        self.name = name
        self.ctl_dir = ctl_dir
        self.access = access
        self.hot = hot  # a hot standby: watches the owner and promotes itself (hld §14)
        self.rm = RoleMachine(Role(role))
        # Redis back: an owner that promoted without it moves the epoch forward at once
        self.publisher = Publisher(
            endpoint, fence=self._fence, on_connected=self._from_thread(self._redis_back)
        )
        # the runner and the driver call each other only through these two callbacks and the
        # driver's reference to the runner: the runner knows nothing of the handover
        self.runner = LagRunner(
            dataplane, self.publisher, self.rm, on_effects=self._run_effects, on_rx=self._note_rx
        )
        self.driver = HandoverDriver(
            name, self.rm, OwnerStore(endpoint), self.publisher, self.runner, on_exit=self.stop
        )
        self.driver.hot = hot and role == "standby"  # in the very first instance record
        self.driver.on_owner = self._owner_again
        self.snapshot: ConfigSnapshot | None = None
        self.refused: dict[Target, str] = {}
        self._links_ready = False
        self._waiting_init_logged = False
        self._stopping = asyncio.Event()
        self._fast_reboot = False  # SIGUSR2: exit without the cold stop
        self._sweep_due = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.config_watcher = ConfigWatcher(endpoint, self._from_thread(self._on_snapshot))
        self.link_watcher = links  # shared with the dataplane backend; subscribed in run()
        self.control: ControlServer | None = None

    def _fence(self) -> int | None:
        """The epoch our dataplane writes carry; None while we are not the owner."""
        return self.rm.epoch if self.rm.owns_dataplane else None

    def _run_effects(self, effects: list[Effect]) -> None:
        self.driver.run_effects(effects)

    def _note_rx(self, port: str, frame: bytes, now: float, stamp: int) -> None:
        self.driver.note_rx(port, frame, now, stamp)

    @property
    def role(self) -> Role:
        return self.rm.role

    # ---- plumbing --------------------------------------------------------------------------
    def _from_thread(self, fn: Callable[..., None]) -> Callable[..., None]:
        """Wrap a loop-thread handler so worker threads can call it safely."""

        def post(*args: object) -> None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(fn, *args)

        return post

    async def run(self) -> int:
        self._loop = loop = asyncio.get_running_loop()
        self.runner.attach(loop)
        self.driver.attach(loop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        # as SONiC's teamd (libteam patches): SIGHUP is ignored (a closed terminal or a log
        # rotation must not stop the LAGs), SIGUSR2 is the fast-reboot exit (hld §7, signals)
        loop.add_signal_handler(signal.SIGHUP, self._on_hangup)
        loop.add_signal_handler(signal.SIGUSR2, self._on_fast_reboot)
        loop.add_signal_handler(signal.SIGUSR1, self._on_signal, "yield")
        loop.add_signal_handler(signal.SIGRTMIN, self._on_signal, "takeover")
        self.control = ControlServer(
            self, os.path.abspath(os.path.join(self.ctl_dir, f"{self.name}.sock")), self.access
        )
        self.driver.ctl_path = self.control.path
        try:
            await self.control.start()
        except ControlError as e:
            log.error("%s: %s", self.name, e)
            return 2
        self.publisher.start()
        self.link_watcher.subscribe(
            self._from_thread(self._on_links), self._from_thread(self._on_link)
        )
        self.link_watcher.start()
        if self.role is Role.ACTIVE and not await self.driver.claim_ownership():
            self.publisher.stop()
            await self.control.stop()
            return 2
        if self.role is Role.ACTIVE:
            # decided before the config is read: a warm start adopts the LAGs from the
            # warm-boot files instead of renegotiating them (teammgrd's `teamd -w`)
            warm = await self._check_warm_start()
            if warm:
                self.runner.take_saved = self.warm_boot.reader()
            self.driver.spawn(self._warm_start_rows(warm))
            self._sweep_due = True  # a start as the active: what an earlier one left goes
        self.driver.heartbeat()
        # the container healthcheck's file (env TEAMD_SHIM_HEALTH_FILE), once a second
        health = HealthFile.from_env(lambda: (self.name, self.role.value, self.driver.ready))
        if health is not None:
            health.start(loop)
        self.config_watcher.start()
        if self.role is Role.STANDBY:
            self.driver.start_following()
            if self.hot:
                self.driver.start_hot()
        log.info(
            "%s: %s%s started (pid %d, dataplane %s, redis %s)",
            self.name,
            "hot " if self.hot and self.role is Role.STANDBY else "",
            self.role,
            os.getpid(),
            self.dataplane.name,
            self.endpoint.url,
        )
        await self._stopping.wait()
        log.info("%s: stopping (role %s)", self.name, self.role)
        if health is not None:
            health.stop()
        await self._stop_all()
        return 0

    async def _stop_all(self) -> None:
        assert self.control is not None
        # a hot standby must not take a cold stop for a death and bring the LAGs back
        self.driver.close_watchers("stop" if self.role is Role.ACTIVE else self.role.value)
        self.config_watcher.stop()
        self.link_watcher.stop()
        self.driver.stop()
        if self.role is Role.ACTIVE and self._fast_reboot:
            dumps = self.warm_boot.collect(self.runner.lags, members=False)
            await self.driver.blocking(self.warm_boot.write, dumps)
        elif self.role is Role.ACTIVE:
            self.warm_boot.remove(self.warm_boot.names(self.runner.lags))
            self.runner.remove_all()  # a cold stop, as teamd on SIGTERM
        # standby / yielded / retired: leave every LAG, link and DB entry as it is
        self.publisher.stop()
        self.runner.close()
        await self.control.stop()
        try:
            await asyncio.wait_for(
                self.driver.blocking(self.driver.store.drop_instance, self.name), 2.0
            )
        except Exception as e:
            log.warning("%s: could not remove the instance record: %s", self.name, e)

    async def _check_warm_start(self) -> bool:
        """A start as the active (not a takeover, whose rows the orchestrator keeps): SONiC's
        checkWarmStart for teammgrd and teamsyncd. Redis not answering within 5 s: a cold
        start, said in the log."""
        try:
            return await asyncio.wait_for(
                self.driver.blocking(check_warm_start, self.driver.store.state), 5.0
            )
        except Exception as e:
            log.warning("%s: WARM_RESTART_TABLE rows not written, cold start: %s", self.name, e)
            return False

    async def _warm_start_rows(self, warm: bool) -> None:
        """On a warm start teamsyncd's state goes `initialized`, then `reconciled` once the
        CONFIG_DB LAGs are written out (what sonic-installer upgrade-docker waits for), at the
        latest after teamsyncd's default 70 s timer."""
        state = self.driver.store.state
        if not warm:
            return
        deadline = time.monotonic() + RECONCILE_LIMIT_S
        while self.snapshot is None or self.publisher.pending():
            if time.monotonic() > deadline:
                log.warning(
                    "%s: LAG state not all written after %.0f s", self.name, RECONCILE_LIMIT_S
                )
                break
            await asyncio.sleep(0.2)
        try:
            await self.driver.blocking(set_state, state, WarmState.RECONCILED)
            log.info("%s: warm start reconciled", self.name)
        except Exception as e:
            log.warning("%s: teamsyncd state not set to reconciled: %s", self.name, e)

    def _redis_back(self) -> None:
        self.driver.keep_owner_record_now()

    def _on_hangup(self) -> None:
        log.info("%s: SIGHUP ignored (as teamd)", self.name)

    def _on_fast_reboot(self) -> None:
        """teamd's SIGUSR2: one PDU on every port now, then exit keeping every team netdev,
        member and DB entry, so the LAGs stay up through the reboot's kexec on the partner's
        timeout (what `fast-reboot` sends it for). Only the owner refreshes."""
        log.warning("%s: SIGUSR2: fast-reboot exit, LAGs and kernel state kept", self.name)
        if self.role is Role.ACTIVE:
            self.runner.refresh_all(time.monotonic())
        self._fast_reboot = True
        self._stopping.set()

    def _on_signal(self, what: str) -> None:
        async def go() -> None:
            try:
                if what == "yield":
                    await self._save_warm_boot()
                    await self.driver.do_yield()
                else:
                    await self.driver.do_takeover()
            except OwnershipError as e:  # refused: the step logged why at error level
                log.info("%s by signal refused: %s", what, e)
            except Exception:  # a bug: say so loudly, the signal must not kill us
                log.exception("%s by signal failed", what)

        self.driver.spawn(go())

    def _owner_again(self) -> None:
        if self.warm_boot.directory is not None:
            names = self.warm_boot.names(self.runner.lags)
            self.driver.spawn(self.driver.blocking(self.warm_boot.remove, names))

    async def _save_warm_boot(self) -> None:
        """SIGUSR1 is teamd's warm stop: the warm-boot files first (before the final snapshot,
        which teamd.sh waits for before it kills the container), then the yield."""
        if self.role is Role.ACTIVE and self.warm_boot.directory is not None:
            dumps = self.warm_boot.collect(self.runner.lags, members=True)
            await self.driver.blocking(self.warm_boot.write, dumps)

    def stop(self) -> None:
        self._stopping.set()

    def kernel_changed(self, lag: str) -> None:
        """From a dataplane backend's watcher thread: the kernel changed `lag`, republish."""
        self._from_thread(self.runner.dataplane_changed)(lag)

    # ---- the control socket's view (control.ControlTarget) ---------------------------------
    @property
    def lags(self) -> Mapping[str, RunningLag]:
        return self.runner.lags

    def dump(self, name: str) -> dict[str, Any]:
        return self.runner.dump(name)

    def state_item_get(self, name: str, path: str) -> Any:
        return self.runner.state_item_get(name, path)

    def state_item_set(self, name: str, path: str, value: str) -> Any:
        return self.runner.state_item_set(name, path, value, who=self.name)

    def info(self) -> dict[str, Any]:
        return self.driver.info()

    def request_shadow(self, seconds: float = SHADOW_LEASE_S) -> None:
        self.driver.request_shadow(seconds)

    async def do_yield(self) -> dict[str, Any]:
        return await self.driver.do_yield()

    async def do_takeover(self) -> dict[str, Any]:
        return await self.driver.do_takeover()

    async def do_resume(self, force: bool = False) -> dict[str, Any]:
        return await self.driver.do_resume(force)

    def retire(self) -> None:
        self.driver.retire()

    async def serve_watcher(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self.driver.serve_watcher(reader, writer)

    # ---- config ----------------------------------------------------------------------------
    def _on_snapshot(self, snap: ConfigSnapshot) -> None:
        if not snap.initialized:
            # an empty CONFIG_DB after a Redis restart must not tear the running LAGs down
            if not self._waiting_init_logged:
                log.warning(
                    "CONFIG_DB_INITIALIZED is not set: keeping %d running LAG(s) and "
                    "waiting for the config to be loaded",
                    len(self.runner.lags),
                )
                self._waiting_init_logged = True
            return
        self._waiting_init_logged = False
        self.snapshot = snap
        self._reconcile()

    def _reconcile(self) -> None:
        snap = self.snapshot
        if snap is None or not self._links_ready:
            return  # members cannot be judged before the netdev table is known
        runner = self.runner
        runner.ports = snap.ports
        desired = desired_config(
            snap.portchannel,
            snap.members,
            snap.device_mac,
            current_owner=dict(runner.port_lag),
            running={n: r.cfg for n, r in runner.lags.items()},
        )
        self._follow_netdev_systems(desired)
        now = time.monotonic()
        for name in list(runner.lags):
            if name not in desired.lags:
                runner.remove_lag(name)
        lag_errors = {lag_config_error(n): err for n, err in desired.lag_errors.items()}
        for name, cfg in desired.lags.items():
            running = runner.lags.get(name)
            if running is None:
                runner.add_lag(cfg, now)
                continue
            kept = desired.kept.get(name)
            running.error = f"refused config change, running config kept: {kept}" if kept else None
            if running.error:
                lag_errors[lag_config_error(name)] = running.error
            runner.update_lag(running, cfg, now)
        runner.take_saved = None  # a warm start restores the LAGs of the first config only
        self._publish_refusals(lag_errors, member=False)
        self._apply_member_errors(desired)
        runner.publishing.schedule()
        if self._sweep_due:
            self._sweep_due = False
            self.driver.spawn(self._sweep_stale())

    async def _sweep_stale(self) -> None:
        """Once, at a start as the active, after the first CONFIG_DB reconcile: drop the LAG
        keys, refusals and team netdevs an earlier instance left for what CONFIG_DB no longer
        names (teammgrd clears LAG_TABLE at its start; a SIGKILLed shim cleans nothing)."""
        runner = self.runner
        try:
            found = await asyncio.wait_for(self.driver.blocking(self._read_lag_keys), 5.0)
        except Exception as e:
            log.warning("%s: start-up sweep skipped, redis: %s", self.name, e)
            found = []
        # judged against the config as it is now, on the loop: nothing runs between these lines
        lags = set(runner.lags)
        members = {(n, p) for n, r in runner.lags.items() for p in r.lacp.ports}
        for t in stale.stale(found, lags, members, set(self.refused)):
            log.info("%s: removing stale %s %s", self.name, t.db, t.redis_key)
            self.publisher.drop(t)
        for link in list(runner.links.values()):
            if link.kind == "team" and LAG_NAME.match(link.name) and link.name not in lags:
                log.info("%s: removing stale team netdev %s", self.name, link.name)
                self.dataplane.lag_removed(link.name)

    def _read_lag_keys(self) -> list[stale.Found]:
        out = []
        for db, db_id, patterns in (
            (STATE_DB, STATE_DB_ID, stale.STATE_PATTERNS),
            (APPL_DB, APPL_DB_ID, stale.APPL_PATTERNS),
        ):
            r = ownership.client(self.endpoint, db_id)
            for pattern in patterns:
                out += [f for k in keys(r, pattern) if (f := stale.parse(db, k)) is not None]
        return out

    def _follow_netdev_systems(self, desired: DesiredConfig) -> None:
        """A LAG whose team netdev MAC was changed under us keeps that MAC as its actor system
        id until CONFIG_DB's own system changes (which the netdev then takes)."""
        follow = self.runner.netdev_system
        for name in list(follow):
            cfg = desired.lags.get(name)
            mac, base = follow[name]
            if cfg is None or cfg.system != base:
                del follow[name]
            else:
                desired.lags[name] = dataclasses.replace(cfg, system=mac)

    def _netdev_mac_changed(self, name: str, info: LinkInfo) -> None:
        """teamd follows its team netdev's MAC (MCLAG: iccpd gives both peers one): so do we."""
        running = self.runner.lags[name]
        if info.mac in (running.cfg.system, "00:00:00:00:00:00"):
            return
        log.warning(
            "%s: the team netdev's MAC changed to %s (MCLAG's iccpd?): the LACP system id "
            "follows it, as teamd's does",
            name,
            info.mac,
        )
        base = self.runner.netdev_system.get(name, ("", running.cfg.system))[1]
        self.runner.netdev_system[name] = (info.mac, base)
        self._reconcile()

    def _apply_member_errors(self, desired: DesiredConfig) -> None:
        wanted: dict[Target, str] = {}
        for (lag, port), err in desired.member_errors.items():
            wanted[member_config_error(lag, port)] = err
        for name, cfg in desired.lags.items():
            running = self.runner.lags.get(name)
            for port in cfg.members:
                if running is not None and port not in running.lacp.ports:
                    link = self.runner.links.get(port)
                    why = (
                        f"netdev {port} does not exist"
                        if link is None
                        else f"netdev {port} could not be opened for LACP"
                    )
                    wanted[member_config_error(name, port)] = why
        self._publish_refusals(wanted, member=True)

    def _publish_refusals(self, wanted: dict[Target, str], *, member: bool) -> None:
        """STATE_DB TEAMD_CONFIG_ERROR_TABLE|<CONFIG_DB key> `error`, one per refused entry,
        cleared when the entry is fixed or removed; never a LAG_TABLE / LAG_MEMBER_TABLE key
        (its existence alone means "ready" to SONiC's managers, hld §4)."""
        for t in [t for t in self.refused if _is_member_refusal(t) == member and t not in wanted]:
            self._unrefuse(t)
        for t, err in wanted.items():
            self._refuse(t, err)

    def _refuse(self, target: Target, err: str) -> None:
        if self.refused.get(target) != err:
            log.error("refused %s %s: %s", target.table, target.key, err)
            self.refused[target] = err
            self.publisher.put(target, {"error": err})

    def _unrefuse(self, target: Target) -> None:
        if self.refused.pop(target, None) is not None:
            self.publisher.drop(target)

    # ---- links -----------------------------------------------------------------------------
    def _on_links(self, table: dict[str, LinkInfo]) -> None:
        self.runner.links = table
        self._links_ready = True
        self._reconcile()

    def _on_link(self, name: str, info: LinkInfo | None) -> None:
        runner = self.runner
        old = runner.links.get(name)
        if info is None:
            runner.links.pop(name, None)
        else:
            runner.links[name] = info
        if info is not None and info.kind == "team" and name in runner.lags:
            if old is not None and info.mac != old.mac:
                self._netdev_mac_changed(name, info)
            return
        lag_name = runner.port_lag.get(name)
        if lag_name is None:
            if info is not None and old is None:
                self._reconcile()  # a configured member's netdev may have just appeared
            return
        if info is None:
            log.warning("%s: member netdev %s disappeared", lag_name, name)
            runner.remove_member(runner.lags[lag_name], name, time.monotonic())
            self._reconcile()
            return
        runner.link_changed(name, old, info)


def _is_member_refusal(t: Target) -> bool:
    return t.key.startswith(PORTCHANNEL_MEMBER + "|")

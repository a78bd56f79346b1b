"""The shim process: one asyncio loop running every PortChannel's LACP.

Only this loop touches LACP state. Redis (config in, state out) and rtnetlink live in threads that
hand plain records over with `call_soon_threadsafe`, so no Redis stall or outage can delay a PDU.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
from collections.abc import Callable
from typing import Any

from . import sonic_db
from .config import DesiredConfig, LagConfig, desired_config, port_number
from .config_watch import ConfigSnapshot, ConfigWatcher
from .control import ControlServer
from .dataplane import Dataplane
from .lacp import Carrier, Lag, LagSettings, PortEnable, parse_mac
from .links import LinkInfo, LinkWatcher
from .ownership import OwnershipError, OwnerStore
from .packet_io import PacketIO
from .publisher import Publisher, Target
from .role_machine import Role, RoleMachine
from .roles import RolesMixin
from .running_lag import RunningLag
from .state_view import (
    TeamDevice,
    appl_db_lag,
    appl_db_member,
    state_db_lag,
    state_db_member,
    state_dump,
)

log = logging.getLogger(__name__)

PUBLISH_EVERY_S = 0.1


def settings_for(cfg: LagConfig) -> LagSettings:
    return LagSettings(
        name=cfg.name,
        system=parse_mac(cfg.system),
        key=cfg.key,
        fast_rate=cfg.fast_rate,
        min_links=cfg.min_links,
        admin_up=cfg.admin_up,
        retry_count=cfg.retry_count,
        # no 802.1AX aggregate wait, as stock teamd (hld §12): it turned a partner's identity
        # change into a 2 s outage the partner saw; Lag.pop_intents nets out instead
    )


class Shim(RolesMixin):
    """Drives all LAGs of CONFIG_DB in one of the roles of roles.py."""

    def __init__(self, endpoint: sonic_db.Endpoint, dataplane: Dataplane, *, name: str,
                 ctl_dir: str, role: str = "active") -> None:
        self.endpoint = endpoint
        self.dataplane = dataplane
        self.name = name
        self.rm = RoleMachine(Role(role))
        self.ctl_dir = ctl_dir
        self.lags: dict[str, RunningLag] = {}
        self.port_lag: dict[str, str] = {}
        self.links: dict[str, LinkInfo] = {}
        self.snapshot: ConfigSnapshot | None = None
        self.published: set[Target] = set()
        self.refused: dict[Target, str] = {}
        self._dirty: set[str] = set()
        self._links_ready = False
        self._waiting_init_logged = False
        self._publish_handle: asyncio.TimerHandle | None = None
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.io: PacketIO | None = None
        self.store = OwnerStore(endpoint)
        self._roles_init()
        self.publisher = Publisher(endpoint, fence=self._fence)
        self.config_watcher = ConfigWatcher(endpoint, self._from_thread(self._on_snapshot))
        self.link_watcher = LinkWatcher(self._from_thread(self._on_links),
                                        self._from_thread(self._on_link))
        self.control: ControlServer | None = None
        self.started_at = time.time()

    def _fence(self) -> int | None:
        """The epoch our dataplane writes carry; None while we are not the owner."""
        return self.epoch if self.role == "active" else None

    # ---- plumbing --------------------------------------------------------------------------
    def _from_thread(self, fn: Callable[..., None]) -> Callable[..., None]:
        """Wrap a loop-thread handler so worker threads can call it safely."""

        def post(*args: object) -> None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(fn, *args)
        return post

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self.io = PacketIO(self._loop, self._on_frame)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._stopping.set)
        self._loop.add_signal_handler(signal.SIGUSR1, self._on_signal, "yield")
        self._loop.add_signal_handler(signal.SIGRTMIN, self._on_signal, "takeover")
        self.control = ControlServer(self, os.path.join(self.ctl_dir, f"{self.name}.sock"))
        await self.control.start()
        self.publisher.start()
        self.link_watcher.start()
        if self.role == "active" and not await self.claim_ownership():
            self.publisher.stop()
            await self.control.stop()
            return 2
        self._heartbeat()
        self.config_watcher.start()
        if self.role == "standby":
            self.start_following()
        log.info("%s: %s started (pid %d, dataplane %s, redis %s)", self.name, self.role,
                 os.getpid(), self.dataplane.name, self.endpoint.url)
        await self._stopping.wait()
        log.info("%s: stopping (role %s)", self.name, self.role)
        self.config_watcher.stop()
        self.link_watcher.stop()
        self._follow_stop.set()
        if self.role == "active":
            # a cold stop, as teamd on SIGTERM: the LAGs go away with us
            for name in list(self.lags):
                self._remove_lag(name)
            self._flush_publish()
        # standby / yielded / retired: leave every LAG, link and DB entry as it is
        self.publisher.stop()
        self.io.close()
        self.dataplane.close()
        await self.control.stop()
        try:
            await asyncio.wait_for(self._blocking(self.store.drop_instance, self.name), 2.0)
        except Exception as e:
            log.warning("%s: could not remove the instance record: %s", self.name, e)
        return 0

    def _on_signal(self, what: str) -> None:
        async def go() -> None:
            try:
                if what == "yield":
                    await self.do_yield()
                else:
                    await self.do_takeover()
            except OwnershipError as e:  # refused: the step logged why at error level
                log.info("%s by signal refused: %s", what, e)
            except Exception:  # a bug: say so loudly, the signal must not kill us
                log.exception("%s by signal failed", what)
        self.spawn(go())

    def stop(self) -> None:
        self._stopping.set()

    # ---- config ----------------------------------------------------------------------------
    def _on_snapshot(self, snap: ConfigSnapshot) -> None:
        if not snap.initialized:
            # an empty CONFIG_DB after a Redis restart must not tear the running LAGs down
            if not self._waiting_init_logged:
                log.warning("CONFIG_DB_INITIALIZED is not set: keeping %d running LAG(s) and "
                            "waiting for the config to be loaded", len(self.lags))
                self._waiting_init_logged = True
            return
        self._waiting_init_logged = False
        self.snapshot = snap
        self._reconcile()

    def _reconcile(self) -> None:
        snap = self.snapshot
        if snap is None or not self._links_ready:
            return  # members cannot be judged before the netdev table is known
        desired = desired_config(snap.portchannel, snap.members, snap.device_mac,
                                 current_owner=dict(self.port_lag),
                                 running={n: r.cfg for n, r in self.lags.items()})
        now = time.monotonic()
        for name in list(self.lags):
            if name not in desired.lags:
                self._remove_lag(name)
        for t in [t for t in self.refused
                  if t.table == "LAG_TABLE" and t.key not in desired.lag_errors]:
            self._unrefuse(t)
        for name, err in desired.lag_errors.items():
            self._refuse(Target("STATE_DB", "LAG_TABLE", name), err)
        for name, cfg in desired.lags.items():
            self._unrefuse(Target("STATE_DB", "LAG_TABLE", name))
            running = self.lags.get(name)
            if running is None:
                self._add_lag(cfg, now)
                continue
            kept = desired.kept.get(name)
            if kept and running.error is None:
                log.error("%s: refused config change, running config kept: %s", name, kept)
            running.error = f"refused config change, running config kept: {kept}" if kept else None
            self._update_lag(running, cfg, now)
        self._apply_member_errors(desired)
        self._schedule_publish()

    def _apply_member_errors(self, desired: DesiredConfig) -> None:
        wanted: dict[Target, str] = {}
        for (lag, port), err in desired.member_errors.items():
            wanted[Target("STATE_DB", "LAG_MEMBER_TABLE", f"{lag}|{port}")] = err
        for name, cfg in desired.lags.items():
            running = self.lags.get(name)
            for port in cfg.members:
                if running is not None and port not in running.lacp.ports:
                    link = self.links.get(port)
                    why = (f"netdev {port} does not exist" if link is None
                           else f"netdev {port} could not be opened for LACP")
                    wanted[Target("STATE_DB", "LAG_MEMBER_TABLE", f"{name}|{port}")] = why
        for t in [t for t in self.refused if t.table == "LAG_MEMBER_TABLE" and t not in wanted]:
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

    def _add_lag(self, cfg: LagConfig, now: float) -> None:
        log.info("%s: LAG up (key %d, system %s, fast_rate %s, min_links %d)", cfg.name, cfg.key,
                 cfg.system, cfg.fast_rate, cfg.min_links)
        running = RunningLag(cfg=cfg, lacp=Lag(settings_for(cfg)))
        self.lags[cfg.name] = running
        self.dataplane.lag_added(cfg, owner=self.role == "active")
        for port in cfg.members:
            self._add_member(running, port, now)
        self._service(running, now)

    def _update_lag(self, running: RunningLag, cfg: LagConfig, now: float) -> None:
        old = running.cfg
        if settings_for(old) != settings_for(cfg):
            log.info("%s: LACP settings changed", cfg.name)
            running.lacp.update_settings(settings_for(cfg), now)
        for port in set(old.members) - set(cfg.members):
            self._remove_member(running, port, now, goodbye=True)
        running.cfg = cfg
        for port in cfg.members:
            if port not in running.lacp.ports:
                self._add_member(running, port, now)
        self._dirty.add(cfg.name)
        self._service(running, now)

    def _add_member(self, running: RunningLag, port: str, now: float) -> None:
        link = self.links.get(port)
        if link is None or self.io is None:
            return
        if not self.io.add(port, link.ifindex):
            return
        running.lacp.add_port(port, port_number=port_number(port), mac=parse_mac(link.mac),
                              link_up=link.up, now=now)
        running.enabled.setdefault(port, False)
        self.port_lag[port] = running.cfg.name
        self.dataplane.member_added(running.cfg.name, port, owner=self.role == "active")
        log.info("%s: member %s added (link %s)", running.cfg.name, port,
                 "up" if link.up else "down")
        self._dirty.add(running.cfg.name)

    def _remove_member(self, running: RunningLag, port: str, now: float, *,
                       goodbye: bool = False) -> None:
        """`goodbye`: a real removal (config, cold stop) by the owner: one last PDU with Sync,
        Collecting and Distributing cleared first (hld §12). Never on a handover, never by a
        standby or yielded instance."""
        if port in running.lacp.ports:
            if goodbye and self.role == "active" and self.io is not None:
                frame = running.lacp.goodbye(port)
                if frame is not None and self.io.send(port, frame):
                    log.info("%s: goodbye PDU on %s", running.cfg.name, port)
            running.lacp.remove_port(port, now)
        self._apply_intents(running)
        if self.io is not None:
            self.io.remove(port)
        self.port_lag.pop(port, None)
        running.enabled.pop(port, None)
        if self.role == "active":  # a standby or yielded instance never writes the kernel
            self.dataplane.member_removed(running.cfg.name, port)
        self.note_port_silent(port)  # removed: a takeover does not wait for its first PDU
        lag = running.cfg.name
        self.publisher.drop(Target("STATE_DB", "LAG_MEMBER_TABLE", f"{lag}|{port}"))
        self.publisher.drop(Target("APPL_DB", "LAG_MEMBER_TABLE", f"{lag}:{port}"))
        log.info("%s: member %s removed", lag, port)
        self._dirty.add(lag)

    def _remove_lag(self, name: str) -> None:
        """Config removal or cold stop: every member says goodbye first."""
        running = self.lags.pop(name)
        now = time.monotonic()
        for port in list(running.lacp.ports):
            self._remove_member(running, port, now, goodbye=True)
        if running.timer is not None:
            running.timer.cancel()
        if self.role == "active":  # the new owner removes it after a takeover (roles.py)
            self.dataplane.lag_removed(name)
        self.publisher.drop(Target("STATE_DB", "LAG_TABLE", name))
        self.publisher.drop(Target("APPL_DB", "LAG_TABLE", name))
        self._dirty.discard(name)
        log.info("%s: LAG removed", name)

    # ---- links -----------------------------------------------------------------------------
    def _on_links(self, table: dict[str, LinkInfo]) -> None:
        self.links = table
        self._links_ready = True
        self._reconcile()

    def _on_link(self, name: str, info: LinkInfo | None) -> None:
        old = self.links.get(name)
        if info is None:
            self.links.pop(name, None)
        else:
            self.links[name] = info
        lag_name = self.port_lag.get(name)
        now = time.monotonic()
        if lag_name is None:
            if info is not None and old is None:
                self._reconcile()  # a configured member's netdev may have just appeared
            return
        running = self.lags[lag_name]
        if info is None:
            log.warning("%s: member netdev %s disappeared", lag_name, name)
            self._remove_member(running, name, now)
            self._reconcile()
            return
        if old is None or old.up != info.up:
            log.info("%s: member %s link %s", lag_name, name, "up" if info.up else "down")
            running.lacp.set_link(name, info.up, now)
            if not info.up:
                self.note_port_silent(name)
            if old is not None and old.ifindex != info.ifindex and self.io is not None:
                self.io.add(name, info.ifindex)
            self._dirty.add(lag_name)
            self._service(running, now)
        self._schedule_publish()

    # ---- LACP ------------------------------------------------------------------------------
    def _on_frame(self, port: str, frame: bytes, now: float) -> None:
        lag_name = self.port_lag.get(port)
        if lag_name is None:
            return
        running = self.lags[lag_name]
        if self.role == "standby":
            self.note_rx(port, frame, now)
        if not running.lacp.receive(port, frame, now):
            # dropped (bad, truncated, marker, loopback): its counter moved, publish it
            self._dirty.add(lag_name)
            self._schedule_publish()
        self._service(running, now)

    def _service(self, running: RunningLag, now: float) -> None:
        """Run due timers, send what is due, apply intents, re-arm this LAG's timer."""
        lacp = running.lacp
        keepalive = self.role is Role.YIELDED and lacp.keepalive_due(now)
        lacp.on_timer(now)
        if self.rm.transmits(keepalive) and self.io is not None:
            for port, frame in lacp.frames_to_send(now):
                if not self.io.send(port, frame):
                    lacp.send_failed(port, frame, now)  # not our last PDU: it never left
                elif self.takeover_at is not None and not self.confirmed:
                    self.note_tx(port, now)
        self._apply_intents(running)
        self._arm(running)

    def _arm(self, running: RunningLag) -> None:
        deadline = running.lacp.next_deadline()
        if running.timer is not None:
            if deadline is not None and running.timer.when() == deadline:
                return
            running.timer.cancel()
            running.timer = None
        if deadline is not None and self._loop is not None:
            running.timer = self._loop.call_at(deadline, self._on_timer, running)

    def _on_timer(self, running: RunningLag) -> None:
        running.timer = None
        if self.lags.get(running.cfg.name) is running:
            self._service(running, time.monotonic())

    def _apply_intents(self, running: RunningLag) -> None:
        for notice in running.lacp.pop_notices():
            log.warning("%s: loopback detected on %s: it hears LACPDUs with our own system id "
                        "%s (two of our ports cabled together?); it will not be selected",
                        notice.lag, notice.port, running.cfg.system)
            self._dirty.add(running.cfg.name)
            self._schedule_publish()
        intents = running.lacp.pop_intents()
        if not intents:
            return
        owner = self.role == "active"
        for it in intents:
            if isinstance(it, PortEnable):
                if running.enabled.get(it.port) != it.enabled:
                    running.enabled[it.port] = it.enabled
                    if owner:
                        self.dataplane.set_port_enabled(it.lag, it.port, it.enabled)
                    log.info("%s: member %s %s", it.lag, it.port,
                             "enabled" if it.enabled else "disabled")
            elif isinstance(it, Carrier) and running.carrier != it.up:
                running.carrier = it.up
                if owner:
                    self.dataplane.set_carrier(it.lag, it.up)
                log.info("%s: carrier %s", it.lag, "up" if it.up else "down")
        self._dirty.add(running.cfg.name)
        self._schedule_publish()

    def _sync_dataplane(self, running: RunningLag) -> None:
        """After a rollback: write what changed in the kernel's view while we were yielded.

        A yielded instance keeps its machines running but writes nothing, so a link change
        meanwhile was decided but not applied. Backends without a kernel view return None.
        """
        lag = running.cfg.name
        for port, enabled in running.enabled.items():
            kernel = self.dataplane.port_enabled(lag, port)
            if kernel is not None and kernel != enabled:
                self.dataplane.set_port_enabled(lag, port, enabled)
        dev = self.dataplane.device(lag)
        if dev is not None and dev.oper_up != running.carrier:
            self.dataplane.set_carrier(lag, running.carrier)
        # The DB state too: what was decided while yielded is only marked dirty (a yielded
        # instance publishes nothing), and without a new intent nothing else would flush it, so
        # APPL_DB kept a member `enabled` that the kernel had disabled (kernel tier, link down
        # during a handover that rolled back).
        self._dirty.add(lag)
        self._schedule_publish()

    # ---- state out -------------------------------------------------------------------------
    def device(self, running: RunningLag) -> TeamDevice:
        """The kernel's LAG netdev when there is one (teamsyncd semantics), else our view."""
        dev = self.dataplane.device(running.cfg.name)
        if dev is not None:
            return dev
        cfg = running.cfg
        return TeamDevice(ifindex=0, dev_addr=cfg.system, admin_up=cfg.admin_up,
                          oper_up=cfg.admin_up and running.carrier, mtu=cfg.mtu)

    def dataplane_changed(self, lag: str) -> None:
        """Called (via the loop) by a backend that saw the kernel change: republish."""
        if lag in self.lags:
            self._dirty.add(lag)
            self._schedule_publish()

    def dump(self, name: str) -> dict[str, Any]:
        running = self.lags[name]
        return state_dump(running.lacp, running.cfg, self.device(running), self.links)

    def state_item_get(self, name: str, path: str) -> Any:
        """teamdctl `state item get` for the items teamd's LACP runner exposes (hld §13.7)."""
        lacp = self.lags[name].lacp
        if path == "runner.retry_count":
            return lacp.own_retry_count
        if path == "runner.enable_retry_count_feature":
            return lacp.retry_count_feature
        m = re.fullmatch(r"ports\.([^.]+)\.runner\.partner_retry_count", path)
        if m and m.group(1) in lacp.ports:
            return lacp.port_view(m.group(1))["partner_retry_count"]
        raise KeyError(f"no state item {path!r} (known: runner.retry_count, runner."
                       "enable_retry_count_feature, ports.<port>.runner.partner_retry_count)")

    def state_item_set(self, name: str, path: str, value: str) -> Any:
        """teamdctl `state item set`: only the owner changes LACP state (a standby shadows it,
        a yielded instance has handed it over)."""
        if self.role != "active":
            raise ValueError(f"{self.name} is {self.role}: set it on the active instance")
        running = self.lags[name]
        now = time.monotonic()
        if path == "runner.retry_count":
            try:
                count = int(value)
            except ValueError:
                raise ValueError(f"runner.retry_count must be an integer 3..255, got {value!r}"
                                 ) from None
            running.lacp.set_retry_count(count, now)
        elif path == "runner.enable_retry_count_feature":
            if value.lower() not in ("true", "false"):
                raise ValueError(f"{path} must be true or false, got {value!r}")
            running.lacp.set_retry_count_feature(value.lower() == "true", now)
        else:
            raise KeyError(f"state item {path!r} cannot be set (settable: runner.retry_count, "
                           "runner.enable_retry_count_feature)")
        log.info("%s: %s set to %s", name, path, value)
        self._dirty.add(name)
        self._service(running, now)
        return self.state_item_get(name, path)

    def _schedule_publish(self) -> None:
        if self._publish_handle is None and self._dirty and self._loop is not None:
            self._publish_handle = self._loop.call_later(PUBLISH_EVERY_S, self._flush_publish)

    def _flush_publish(self) -> None:
        """Coalesced: at most one STATE_DB/APPL_DB recomputation per LAG every 100 ms."""
        self._publish_handle = None
        if self.role != "active":
            return  # only the owner publishes LAG state; the rest keep it dirty for later
        dirty, self._dirty = self._dirty, set()
        for name in dirty:
            running = self.lags.get(name)
            if running is None:
                continue
            dev = self.device(running)
            dump = state_dump(running.lacp, running.cfg, dev, self.links)
            lag_fields = state_db_lag(dump, dev)
            if running.error:
                lag_fields["error"] = running.error
            self.publisher.put(Target("STATE_DB", "LAG_TABLE", name), lag_fields)
            self.publisher.put(Target("APPL_DB", "LAG_TABLE", name), appl_db_lag(dev))
            for port, pd in dump["ports"].items():
                self.publisher.put(Target("STATE_DB", "LAG_MEMBER_TABLE", f"{name}|{port}"),
                                   state_db_member(pd))
                self.publisher.put(Target("APPL_DB", "LAG_MEMBER_TABLE", f"{name}:{port}"),
                                   appl_db_member(running.enabled.get(port, False)))

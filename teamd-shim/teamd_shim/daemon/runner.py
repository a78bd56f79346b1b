"""The LAG runner: every running LAG's LACP on the event loop, and what its decisions write.

It owns the running LAGs and their member sockets, services each LAG (due timers, PDUs,
intents, re-arming its one timer) and applies intents to the dataplane; its LAG state goes out
through `LagPublishing` (publishing.py) and its teamdctl items through the state-item table
(control/state_items.py). What it may do is asked of the role machine, never decided here:
only the owner writes the kernel or publishes; who transmits is `RoleMachine.transmits`. It
knows nothing of Redis handover keys or of the other instance (roles/driver.py does), and
nothing of CONFIG_DB (the `Shim` reconciles the config and calls add/update/remove).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from teamd_shim.control.state_items import (
    STATE_ITEMS,
    LagState,
    state_dump,
)
from teamd_shim.daemon.publishing import LagPublishing
from teamd_shim.db.publisher import Publisher
from teamd_shim.io.dataplane import Dataplane
from teamd_shim.io.dataplane.base import TeamDevice
from teamd_shim.io.links import LinkInfo
from teamd_shim.io.packets import PacketIO
from teamd_shim.io.timers import rearm
from teamd_shim.io.warmboot import SavedLag
from teamd_shim.lacp import Carrier, Lag, PortEnable, parse_mac
from teamd_shim.model.config import LagConfig, PortSettings, port_number, port_settings
from teamd_shim.model.running_lag import RunningLag
from teamd_shim.roles.machine import Effect, Role, RoleMachine

log = logging.getLogger(__name__)


# (port, frame, monotonic receive time, kernel receive stamp in ns): every received frame
RxObserver = Callable[[str, bytes, float, int], None]


class LagRunner:
    """Runs the LACP of every LAG; see the module docstring."""

    def __init__(
        self,
        dataplane: Dataplane,
        publisher: Publisher,
        rm: RoleMachine,
        *,
        on_effects: Callable[[list[Effect]], None],
        on_rx: RxObserver,
    ) -> None:
        self.dataplane = dataplane
        self.rm = rm
        self._on_effects = on_effects  # the role machine's effects raised on the LACP path
        self._on_rx = on_rx  # a standby's received frames, kept for its replay
        self.lags: dict[str, RunningLag] = {}
        self.port_lag: dict[str, str] = {}
        self.links: dict[str, LinkInfo] = {}
        # CONFIG_DB PORT|<member> as the shim last read it (the member's own admin state, MTU)
        self.ports: dict[str, dict[str, str]] = {}
        # per LAG: (MAC, CONFIG_DB system it replaced) when the team netdev's MAC was changed
        # under us (MCLAG's iccpd does): the actor system id follows it, as teamd's does
        self.netdev_system: dict[str, tuple[str, str]] = {}
        self.rx_cut: dict[str, int] = {}  # per port: kernel stamp of the last frame applied
        # a warm start (hld §6.2): a LAG's saved state, read (and consumed) as it is added;
        # the Shim sets it for the LAGs of its first config and clears it after
        self.take_saved: Callable[[str], SavedLag | None] | None = None
        self.io: PacketIO | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.publishing = LagPublishing(
            publisher,
            lags=lambda: self.lags,
            links=lambda: self.links,
            device=self.device,
            owner=lambda: self._owner,
        )

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.publishing.attach(loop)
        self.io = PacketIO(loop, self.on_frame)

    def port_settings(self, port: str) -> PortSettings:
        return port_settings(self.ports.get(port))

    def close(self) -> None:
        if self.io is not None:
            self.io.close()
        self.dataplane.close()

    @property
    def _owner(self) -> bool:
        return self.rm.owns_dataplane

    # ---- LAGs and members ------------------------------------------------------------------
    def add_lag(self, cfg: LagConfig, now: float) -> None:
        log.info(
            "%s: LAG up (key %d, system %s, fast_rate %s, min_links %d)",
            cfg.name,
            cfg.key,
            cfg.system,
            cfg.fast_rate,
            cfg.min_links,
        )
        saved = self.take_saved(cfg.name) if self.take_saved and self._owner else None
        warm = saved is not None and saved.carrier
        if saved is not None and not warm:
            log.info("%s: saved carrier was down: cold start (as teamd)", cfg.name)
        running = RunningLag(cfg=cfg, lacp=Lag(cfg.lacp_settings()), carrier=warm)
        self.lags[cfg.name] = running
        self.dataplane.lag_added(cfg, owner=self._owner, carrier=warm)
        kept = {p for p, _ in saved.members} if saved is not None and warm else set()
        for port in cfg.members:
            self.add_member(running, port, now, keep_enabled=port in kept)
        if saved is not None and warm:
            self._warm_start(running, saved, now)
        self.service(running, now)

    def _warm_start(self, running: RunningLag, saved: SavedLag, now: float) -> None:
        """teamd -w: the kernel's carrier and `enabled` were left as the warm stop left them;
        the LACP core restores from the saved PDUs, and where it cannot (a member's link is
        down, no PDU was current) the kernel is told at once."""
        lag = running.cfg.name
        members = dict(saved.members)
        running.lacp.warm_start(members, saved.pdus, now)
        log.info(
            "%s: warm start: carrier kept up, %d of %d saved member(s) restored from their "
            "saved PDU",
            lag,
            sum(1 for p in running.lacp.ports if running.lacp.port_enabled(p)),
            len(members),
        )
        for port in running.lacp.ports:
            # enabled before the stop and left so, but not restored now: the kernel is told (a
            # restored one gets its PortEnable intent, a write of what the kernel has)
            if self._owner and members.get(port) and not running.lacp.port_enabled(port):
                self.dataplane.set_port_enabled(lag, port, False)

    def update_lag(self, running: RunningLag, cfg: LagConfig, now: float) -> None:
        old = running.cfg
        settings = cfg.lacp_settings()
        if old.lacp_settings() != settings:
            log.info("%s: LACP settings changed", cfg.name)
            running.lacp.update_settings(settings, now)
        for port in set(old.members) - set(cfg.members):
            self.remove_member(running, port, now, goodbye=True)
        running.cfg = cfg
        changed = (old.mtu, old.admin_up, old.system) != (cfg.mtu, cfg.admin_up, cfg.system)
        if self._owner and changed:
            self.dataplane.lag_changed(cfg)  # the netdev as teammgrd sets it at runtime
        for port in cfg.members:
            if port not in running.lacp.ports:
                self.add_member(running, port, now)
        self.publishing.dirty.add(cfg.name)
        self.service(running, now)

    def add_member(
        self, running: RunningLag, port: str, now: float, *, keep_enabled: bool = False
    ) -> None:
        link = self.links.get(port)
        if link is None or self.io is None:
            return
        if not self.io.add(port, link.ifindex):
            return
        running.lacp.add_port(
            port, port_number=port_number(port), mac=parse_mac(link.mac), link_up=link.up, now=now
        )
        running.enabled.setdefault(port, False)
        self.port_lag[port] = running.cfg.name
        self.dataplane.member_added(
            running.cfg.name,
            port,
            owner=self._owner,
            admin_up=self.port_settings(port).admin_up,
            # a warm start leaves a saved member's `enabled` as the stop left it
            enabled=None if keep_enabled else False,
        )
        log.info(
            "%s: member %s added (link %s)", running.cfg.name, port, "up" if link.up else "down"
        )
        self.publishing.dirty.add(running.cfg.name)

    def remove_member(
        self, running: RunningLag, port: str, now: float, *, goodbye: bool = False
    ) -> None:
        """`goodbye`: a real removal (config, cold stop) by the owner: one last PDU with Sync,
        Collecting and Distributing cleared first (hld §12). Never on a handover, never by a
        standby or yielded instance."""
        if port in running.lacp.ports:
            if goodbye and self._owner and self.io is not None:
                frame = running.lacp.goodbye(port)
                if frame is not None and self.io.send(port, frame):
                    log.info("%s: goodbye PDU on %s", running.cfg.name, port)
            running.lacp.remove_port(port, now)
        self.apply_intents(running)
        if self.io is not None:
            self.io.remove(port)
        self.port_lag.pop(port, None)
        self.rx_cut.pop(port, None)
        running.enabled.pop(port, None)
        # a real removal by the owner gives the port back its own CONFIG_DB settings
        restore = self.port_settings(port) if goodbye and self._owner else None
        if self._owner:  # a standby or yielded instance never writes the kernel
            self.dataplane.member_removed(running.cfg.name, port, restore)
        self._port_silent(port)  # removed: a takeover does not wait for its first PDU
        lag = running.cfg.name
        self.publishing.drop_member(lag, port, restore)
        log.info("%s: member %s removed", lag, port)
        self.publishing.dirty.add(lag)

    def remove_lag(self, name: str) -> None:
        """Config removal or cold stop: every member says goodbye first."""
        running = self.lags.pop(name)
        now = time.monotonic()
        for port in list(running.lacp.ports):
            self.remove_member(running, port, now, goodbye=True)
        if running.timer is not None:
            running.timer.cancel()
        if self._owner:  # else the new owner removes it after a takeover (roles/driver.py)
            self.dataplane.lag_removed(name)
        self.publishing.drop(name)
        log.info("%s: LAG removed", name)

    def remove_all(self) -> None:
        """A cold stop, as teamd on SIGTERM: the LAGs go away with us."""
        for name in list(self.lags):
            self.remove_lag(name)
        self.publishing.flush()

    # ---- links -----------------------------------------------------------------------------
    def link_changed(self, name: str, old: LinkInfo | None, info: LinkInfo) -> None:
        """A member's netdev changed (the `Shim` handles netdevs that appear or vanish)."""
        lag_name = self.port_lag[name]
        running = self.lags[lag_name]
        if old is None or old.up != info.up:
            now = time.monotonic()
            log.info("%s: member %s link %s", lag_name, name, "up" if info.up else "down")
            running.lacp.set_link(name, info.up, now)
            if not info.up:
                self._port_silent(name)
            if old is not None and old.ifindex != info.ifindex and self.io is not None:
                self.io.add(name, info.ifindex)
            self.publishing.dirty.add(lag_name)
            self.service(running, now)
        self.publishing.schedule()

    # ---- LACP ------------------------------------------------------------------------------
    def on_frame(self, port: str, frame: bytes, now: float, stamp: int) -> None:
        lag_name = self.port_lag.get(port)
        if lag_name is None:
            return
        running = self.lags[lag_name]
        if self.rm.role is Role.STANDBY:  # only a standby keeps frames (for its replay)
            self._on_rx(port, frame, now, stamp)
        self.rx_cut[port] = stamp
        if not running.lacp.receive(port, frame, now):
            # dropped (bad, truncated, marker, loopback): its counter moved, publish it
            self.publishing.dirty.add(lag_name)
            self.publishing.schedule()
        self.service(running, now)

    def service(self, running: RunningLag, now: float) -> None:
        """Run due timers, send what is due, apply intents, re-arm this LAG's timer."""
        lacp = running.lacp
        rm = self.rm
        self._run(rm.check_stall(now))  # after a stall of our loop: nothing until confirmed
        keepalive = rm.role is Role.YIELDED and lacp.keepalive_due(now)
        lacp.on_timer(now)
        if rm.transmits(keepalive) and self.io is not None:
            for port, frame in lacp.frames_to_send(now):
                if not self.io.send(port, frame):
                    lacp.send_failed(port, frame, now)  # not our last PDU: it never left
                elif rm.confirming:
                    self._run(rm.note_tx(port, now))
        self.apply_intents(running)
        self._arm(running)

    def service_all(self, now: float) -> None:
        for running in self.lags.values():
            self.service(running, now)

    def refresh_all(self, now: float) -> None:
        """The yield's refresh: one PDU on every port now (teamd's SIGUSR1), so that each
        port's next one is due one full period later, from whoever owns it then."""
        if self.io is None:
            return
        for running in self.lags.values():
            for port, frame in running.lacp.refresh(now):
                if not self.io.send(port, frame):
                    running.lacp.send_failed(port, frame, now)
            self.apply_intents(running)

    def _port_silent(self, port: str) -> None:
        if self.rm.confirming:
            self._run(self.rm.note_port_silent(port))

    def _run(self, effects: list[Effect]) -> None:
        if effects:
            self._on_effects(effects)

    def _arm(self, running: RunningLag) -> None:
        running.timer = rearm(
            self._loop, running.timer, running.lacp.next_deadline(), self._on_timer, running
        )

    def _on_timer(self, running: RunningLag) -> None:
        running.timer = None
        if self.lags.get(running.cfg.name) is running:
            self.service(running, time.monotonic())

    def apply_intents(self, running: RunningLag) -> None:
        for notice in running.lacp.pop_notices():
            log.warning(
                "%s: loopback detected on %s: it hears LACPDUs with our own system id "
                "%s (two of our ports cabled together?); it will not be selected",
                notice.lag,
                notice.port,
                running.cfg.system,
            )
            self.publishing.dirty.add(running.cfg.name)
            self.publishing.schedule()
        intents = running.lacp.pop_intents()
        if not intents:
            return
        owner = self._owner
        for it in intents:
            if isinstance(it, PortEnable):
                if running.enabled.get(it.port) != it.enabled:
                    running.enabled[it.port] = it.enabled
                    if owner:
                        self.dataplane.set_port_enabled(it.lag, it.port, it.enabled)
                    log.info(
                        "%s: member %s %s", it.lag, it.port, "enabled" if it.enabled else "disabled"
                    )
            elif isinstance(it, Carrier) and running.carrier != it.up:
                running.carrier = it.up
                if owner:
                    self.dataplane.set_carrier(it.lag, it.up)
                log.info("%s: carrier %s", it.lag, "up" if it.up else "down")
        self.publishing.dirty.add(running.cfg.name)
        self.publishing.schedule()

    def sync_dataplane(self) -> None:
        """Owner again after a rollback: write what changed in the kernel's view while we were
        yielded (a yielded instance keeps its machines running but writes nothing, so a link
        change meanwhile was decided but not applied). Backends without a kernel view return
        None and are left alone. "The kernel's view" includes a write still queued: a cold
        start's adoption queues carrier down / ports disabled, and the kernel may still show the
        killed owner's up meanwhile (io/dataplane/queued.py)."""
        dp = self.dataplane
        for running in self.lags.values():
            lag = running.cfg.name
            for port, enabled in running.enabled.items():
                kernel = dp.queued_enabled(lag, port)
                if kernel is None:
                    kernel = dp.port_enabled(lag, port)
                if kernel is not None and kernel != enabled:
                    dp.set_port_enabled(lag, port, enabled)
            carrier = dp.queued_carrier(lag)
            if carrier is None:
                dev = dp.device(lag)
                carrier = dev.oper_up if dev is not None else None
            if carrier is not None and carrier != running.carrier:
                dp.set_carrier(lag, running.carrier)
        # The DB state too: what was decided while yielded is only marked dirty (a yielded
        # instance publishes nothing), and without a new intent nothing else would flush it, so
        # APPL_DB kept a member `enabled` that the kernel had disabled (kernel tier, link down
        # during a handover that rolled back).
        self.mark_dirty(self.lags)

    def kernel_differs(self) -> list[str]:
        """Where our view of carrier / `enabled` differs from the kernel's (when there is a
        kernel LAG): a takeover writes nothing, so such a difference would never be corrected."""
        out = []
        dp = self.dataplane
        for name, running in self.lags.items():
            dev = dp.device(name)
            if dev is not None and dev.admin_up and dev.oper_up != running.carrier:
                out.append(f"{name}: kernel carrier {dev.oper_up}, restored {running.carrier}")
            for port, on in running.enabled.items():
                k = dp.port_enabled(name, port)
                if k is not None and k != on:
                    out.append(f"{name}/{port}: kernel enabled {k}, restored {on}")
        return out

    # ---- state out -------------------------------------------------------------------------
    def lacp_snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: r.lacp.to_dict() for name, r in self.lags.items()}

    def device(self, running: RunningLag) -> TeamDevice:
        """The kernel's LAG netdev when there is one (teamsyncd semantics), else our view."""
        dev = self.dataplane.device(running.cfg.name)
        if dev is not None:
            return dev
        cfg = running.cfg
        return TeamDevice(
            ifindex=0,
            dev_addr=cfg.system,
            admin_up=cfg.admin_up,
            oper_up=cfg.admin_up and running.carrier,
            mtu=cfg.mtu,
        )

    def dataplane_changed(self, lag: str) -> None:
        """Called (via the loop) by a backend that saw the kernel change: republish."""
        if lag in self.lags:
            self.mark_dirty([lag])

    def dump(self, name: str) -> dict[str, Any]:
        running = self.lags[name]
        return state_dump(running.lacp, running.cfg, self.device(running), self.links)

    def _item_state(self, running: RunningLag) -> LagState:
        # the device only if an item reads it: get and set never asked the dataplane
        return LagState(running.lacp, running.cfg, lambda: self.device(running), self.links)

    def state_item_get(self, name: str, path: str) -> Any:
        """teamdctl `state item get` for the items teamd's LACP runner exposes (hld §13.7)."""
        return STATE_ITEMS.get(self._item_state(self.lags[name]), path)

    def state_item_set(self, name: str, path: str, value: str, *, who: str) -> Any:
        """teamdctl `state item set`: only the owner changes LACP state (a standby shadows it,
        a yielded instance has handed it over)."""
        if self.rm.role is not Role.ACTIVE:
            raise ValueError(f"{who} is {self.rm.role}: set it on the active instance")
        running = self.lags[name]
        now = time.monotonic()
        STATE_ITEMS.set(self._item_state(running), path, value, now)
        log.info("%s: %s set to %s", name, path, value)
        self.publishing.dirty.add(name)
        self.service(running, now)
        return self.state_item_get(name, path)

    def mark_dirty(self, names: Iterable[str]) -> None:
        self.publishing.mark(names)

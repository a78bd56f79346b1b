"""One PortChannel: its ports, aggregator selection, carrier, intents and the state dict.

``Lag`` is the sans-IO connection object (h11/aioquic style): the caller feeds it events
(``receive``, ``set_link``, ``on_timer`` ...) with the current CLOCK_MONOTONIC time, then drains
its outputs (``frames_to_send``, ``pop_intents``) and sleeps until ``next_deadline()``.

Every entry point first runs the timers that are due at ``now``, so behaviour does not depend on
whether the caller called ``on_timer`` exactly on time, and the whole state round-trips through
``to_dict``/``from_dict`` so another process can continue exactly where this one stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .constants import SYNC
from .pdu import ZERO_INFO, NotLacpError, PduError, PortInfo, decode_frame, mac_str, parse_mac
from .port import (
    COUNTERS,
    TEAMD_STATE_NAME,
    MuxState,
    Port,
    RxState,
    Selected,
)

FORMAT_VERSION = 1
_MAX_CONVERGE_ROUNDS = 64


@dataclass(frozen=True, slots=True)
class PortEnable:
    """Enable or disable a member in the dataplane (team `enabled` option, LAG_MEMBER_TABLE)."""

    lag: str
    port: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class Carrier:
    """The PortChannel's carrier: up iff enabled members >= min_links."""

    lag: str
    up: bool


Intent = PortEnable | Carrier


@dataclass
class LagSettings:
    """Admin configuration of one PortChannel (what CONFIG_DB and teamd's config give)."""

    name: str
    system: bytes
    key: int
    fast_rate: bool = True
    min_links: int = 1
    system_priority: int = 65535
    active: bool = True
    # 802.1AX Aggregate_Wait_Time is 2 s; teamd has no wait_while, hence 0 by default.
    aggregate_wait: float = 0.0
    # CONFIG_DB admin_status: down stops the LAG as teamd does (every port says goodbye, then
    # no LACPDU, no member enabled, carrier down); PDUs are still received
    admin_up: bool = True

    def __post_init__(self) -> None:
        if type(self.system) is not bytes or len(self.system) != 6:
            raise ValueError(f"system must be 6 bytes, got {self.system!r}")
        for name in ("key", "system_priority"):
            if not 0 <= getattr(self, name) <= 0xFFFF:
                raise ValueError(f"{name} out of range: {getattr(self, name)}")
        if self.min_links < 0:
            raise ValueError(f"min_links must be >= 0, got {self.min_links}")
        if self.aggregate_wait < 0:
            raise ValueError(f"aggregate_wait must be >= 0, got {self.aggregate_wait}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "system": mac_str(self.system),
            "key": self.key,
            "fast_rate": self.fast_rate,
            "min_links": self.min_links,
            "system_priority": self.system_priority,
            "active": self.active,
            "aggregate_wait": self.aggregate_wait,
            "admin_up": self.admin_up,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LagSettings:
        return cls(
            name=str(d["name"]),
            system=parse_mac(d["system"]),
            key=int(d["key"]),
            fast_rate=bool(d["fast_rate"]),
            min_links=int(d["min_links"]),
            system_priority=int(d["system_priority"]),
            active=bool(d["active"]),
            aggregate_wait=float(d["aggregate_wait"]),
            # absent in a snapshot from before admin state was honoured: it was up
            admin_up=bool(d.get("admin_up", True)),
        )


def _aggregator_key(port: Port) -> tuple[int, bytes, int]:
    """Ports aggregate together iff they see the same partner system, priority and key."""
    p = port.partner
    return (p.system_priority, p.system, p.key)


def _eligible(port: Port, cfg: LagSettings) -> bool:
    """Selectable: current, or expired with a real partner identity (teamd: not defaulted or
    disabled). A never-heard partner (all-zero identity) is not selectable, so a cold start
    advertises Sync=0 instead of claiming an aggregator nobody agreed to. Nothing is
    selectable while the LAG is admin down."""
    if not port.link_up or not cfg.admin_up:
        return False
    if port.rx_state is RxState.CURRENT:
        return True
    return port.rx_state is RxState.EXPIRED and port.partner.system != ZERO_INFO.system


class Lag:
    """A PortChannel's LACP speaker, pure and deterministic; see the module docstring."""

    def __init__(self, settings: LagSettings) -> None:
        self._settings = settings
        self._ports: dict[str, Port] = {}
        self._order: list[Port] = []  # by port number: the order of frames and intents
        self._carrier = False
        self._intents: list[Intent] = []
        # goodbye PDUs queued by an admin down, sent by the next frames_to_send
        self._goodbyes: list[tuple[str, bytes]] = []

    # ---- configuration -----------------------------------------------------------------

    @property
    def settings(self) -> LagSettings:
        return self._settings

    def add_port(
        self,
        name: str,
        *,
        port_number: int,
        mac: bytes,
        link_up: bool,
        now: float,
        port_priority: int = 255,
    ) -> None:
        if name in self._ports:
            raise ValueError(f"{self._settings.name}: port {name} already present")
        if any(p.port_number == port_number for p in self._order):
            raise ValueError(f"{self._settings.name}: port number {port_number} already used")
        # Validate identity now rather than on the first transmission.
        PortInfo(0, mac, 0, port_priority, port_number, 0)
        self._run_timers(now)
        port = Port(
            name=name, port_number=port_number, mac=mac, port_priority=port_priority,
            link_up=link_up,
        )  # fmt: skip
        port.begin(now)
        self._ports[name] = port
        self._order.append(port)
        self._order.sort(key=lambda p: p.port_number)
        port.periodic_update(now, self._settings)
        self._converge(now)

    def goodbye(self, name: str) -> bytes | None:
        """The goodbye PDU for a member that is really being removed (config removal, LAG
        removal, cold stop), to send before `remove_port`; a handover never asks for one.
        Changes nothing: the caller removes the port next."""
        return self._ports[name].goodbye_frame(self._settings)

    def remove_port(self, name: str, now: float) -> None:
        """Forget a member without a goodbye PDU (a handover must never send one)."""
        port = self._ports[name]
        self._run_timers(now)
        del self._ports[name]
        self._order.remove(port)
        if port.enabled:
            port.enabled = False
            self._intents.append(PortEnable(self._settings.name, name, False))
            self._update_carrier()
        self._converge(now)

    def update_settings(self, settings: LagSettings, now: float) -> None:
        if settings.name != self._settings.name:
            raise ValueError(f"cannot rename LAG {self._settings.name} to {settings.name}")
        self._run_timers(now)
        old = self._settings
        before = {p.name: p.actor(old) for p in self._order}
        if old.admin_up and not settings.admin_up:
            # teamd on admin down: every port DISABLED, one last PDU each, then silence
            for port in self._order:
                frame = port.goodbye_frame(old)
                if frame is not None:
                    self._goodbyes.append((port.name, frame))
        self._settings = settings
        identity_changed = (old.system, old.system_priority, old.key) != (
            settings.system, settings.system_priority, settings.key,
        )  # fmt: skip
        for port in self._order:
            if identity_changed and port.rx_state is not RxState.PORT_DISABLED:
                # The partner's view of us is now stale: not matched, so no partner Sync, and
                # re-selection as for a changed partner.
                port.selected = Selected.UNSELECTED
                port.partner = port.partner.with_state(port.partner.state & ~SYNC)
            port.periodic_update(now, settings)
        self._converge(now)
        for port in self._order:
            if port.actor(settings) != before[port.name]:
                port.ntt = True
        self._update_carrier()

    # ---- events ------------------------------------------------------------------------

    def set_link(self, name: str, up: bool, now: float) -> None:
        port = self._ports[name]
        self._run_timers(now)
        if port.link_up == up:
            return
        port.link_up = up
        if up:
            port.enter_expired(now)
        else:
            port.down_count += 1
            port.enter_port_disabled()
            port.selected = Selected.UNSELECTED
        port.periodic_update(now, self._settings)
        self._converge(now)

    def receive(self, name: str, frame: bytes, now: float) -> bool:
        """Process one received Slow Protocols frame; False if it was dropped."""
        port = self._ports[name]
        self._run_timers(now)
        try:
            _src, pdu = decode_frame(frame)
        except NotLacpError as exc:
            if exc.subtype == 2:
                port.rx_marker += 1
            else:
                port.rx_bad += 1
            return False
        except PduError:
            port.rx_bad += 1
            return False
        if not port.link_up:
            return False  # like OVS: no carrier, no PDU
        cfg = self._settings
        port.rx_pdus += 1
        port.record_pdu(pdu, port.actor(cfg), now, cfg)
        port.periodic_update(now, cfg)
        self._converge(now)
        # update_NTT, teamd-style: any difference in the 15 bytes echoing us gets an answer.
        if pdu.partner != port.actor(cfg):
            port.ntt = True
        return True

    def on_timer(self, now: float) -> None:
        self._run_timers(now)

    def next_deadline(self) -> float | None:
        """Earliest absolute deadline of any timer (rx, wait_while, periodic TX, rate hold)."""
        best: float | None = None
        for port in self._order:
            for t in (port.current_while, port.wait_while, port.next_tx, port.tx_hold):
                if t is not None and (best is None or t < best):
                    best = t
        return best

    def frames_to_send(self, now: float) -> list[tuple[str, bytes]]:
        """Frames due now (NTT, including periodic); records last_tx/last_tx_frame per port.

        A pending NTT blocked by the 3-per-second limit stays pending and sets ``tx_hold``, a
        deadline reported by next_deadline. Sends never move the periodic schedule.
        """
        self._run_timers(now)
        cfg = self._settings
        out: list[tuple[str, bytes]] = [(n, f) for n, f in self._goodbyes if n in self._ports]
        self._goodbyes = []
        for port in self._order:
            if not port.ntt:
                continue
            if not port.can_transmit(cfg):
                port.ntt = False
                port.tx_hold = None
                continue
            release = port.tx_release()
            if release is not None and now < release:
                port.tx_hold = release
                continue
            frame = port.frame(cfg)
            port.transmitted(frame, now)
            out.append((port.name, frame))
        return out

    def send_failed(self, name: str, frame: bytes, now: float) -> bool:
        """The I/O layer could not send a frame that frames_to_send/refresh returned at `now`:
        it is not recorded as transmitted (see Port.untransmitted)."""
        port = self._ports.get(name)
        return port is not None and port.untransmitted(frame, now)

    def refresh(self, now: float) -> list[tuple[str, bytes]]:
        """Send on every port now and restart each periodic schedule from now.

        teamd's SIGUSR1 "refresh ports": before yielding to a standby, every port gets a fresh
        PDU so the new owner has a whole period for its first one. An early PDU is invisible to
        a partner (nobody rate-limits receive); a late one is what makes a flap.
        """
        self._run_timers(now)
        cfg = self._settings
        for port in self._order:
            if port.can_transmit(cfg) and port.tx_period is not None:
                port.ntt = True
                port.tx_times = []  # a deliberate send: the 3-per-second budget starts over
        out = self.frames_to_send(now)
        for name, _ in out:
            port = self._ports[name]
            if port.tx_period is not None:
                port.next_tx = now + port.tx_period
        return out

    def would_send(self, name: str) -> bytes:
        """The frame this port would transmit now; no side effects (standby READY check)."""
        return self._ports[name].frame(self._settings)

    def pop_intents(self) -> list[Intent]:
        intents, self._intents = self._intents, []
        return intents

    # ---- views -------------------------------------------------------------------------

    @property
    def carrier(self) -> bool:
        return self._carrier

    @property
    def ports(self) -> tuple[str, ...]:
        return tuple(p.name for p in self._order)

    def port_enabled(self, name: str) -> bool:
        return self._ports[name].enabled

    def port_view(self, name: str) -> dict[str, Any]:
        """A teamdctl-like per-port summary for state dumps."""
        port = self._ports[name]
        if _eligible(port, self._settings):
            key = _aggregator_key(port)
            agg_id = min(p.port_number for p in self._order if _eligible(p, self._settings) and
                         _aggregator_key(p) == key)  # fmt: skip
        else:
            agg_id = port.port_number
        return {
            "state": TEAMD_STATE_NAME[port.rx_state],
            "selected": port.selected is Selected.SELECTED,
            "selection": port.selected.value,
            "aggregator_id": agg_id,
            "aggregator_selected": port.selected is Selected.SELECTED,
            "enabled": port.enabled,
            "rx_state": port.rx_state.value,
            "mux_state": port.mux_state.value,
            "actor": port.actor(self._settings).to_dict(),
            "partner": port.partner.to_dict(),
            **{c: getattr(port, c) for c in COUNTERS},
        }

    # ---- state transfer ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON types. Pending intents are outputs, not state: not included."""
        return {
            "format": FORMAT_VERSION,
            "settings": self._settings.to_dict(),
            "carrier": self._carrier,
            "ports": {p.name: p.to_dict(self._settings) for p in self._order},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Lag:
        """Rebuild a Lag that continues exactly where the dumped one was; emits no intents."""
        try:
            if d["format"] != FORMAT_VERSION:
                raise ValueError(f"unsupported state format {d['format']!r}")
            lag = cls(LagSettings.from_dict(d["settings"]))
            for name, pd in d["ports"].items():
                lag._ports[name] = Port.from_dict(name, pd)
            lag._order = sorted(lag._ports.values(), key=lambda p: p.port_number)
            lag._carrier = bool(d["carrier"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed LAG state: {exc!r}") from exc
        if len({p.port_number for p in lag._order}) != len(lag._order):
            raise ValueError("malformed LAG state: duplicate port numbers")
        return lag

    # ---- internals ---------------------------------------------------------------------

    def _run_timers(self, now: float) -> None:
        cfg = self._settings
        for port in self._order:
            if port.tx_hold is not None and now >= port.tx_hold:
                port.tx_hold = None
            if port.wait_while is not None and now >= port.wait_while:
                port.wait_while = None
            if port.rx_timer(now):
                port.periodic_update(now, cfg)
            port.periodic_timer(now)
        self._converge(now)

    def _select(self) -> bool:
        """Aggregator selection: the partner group with most ports wins; ties keep the group
        already selected (no needless flap), then the lowest port number. Other eligible
        ports are STANDBY, like teamd's "not in selected aggregator"."""
        groups: dict[tuple[int, bytes, int], list[Port]] = {}
        for port in self._order:
            if _eligible(port, self._settings):
                groups.setdefault(_aggregator_key(port), []).append(port)
        best: list[Port] = []
        if groups:
            best = min(
                groups.values(),
                key=lambda g: (
                    -len(g),
                    not any(p.selected is Selected.SELECTED for p in g),
                    g[0].port_number,
                ),
            )
        changed = False
        for port in self._order:
            if not _eligible(port, self._settings) or (
                port.selected is Selected.UNSELECTED and port.mux_state is not MuxState.DETACHED
            ):
                # A deselected port must detach from its old aggregator before it may join
                # one again, so a partner change is always seen as disable, then re-enable.
                sel = Selected.UNSELECTED
            elif port in best:
                sel = Selected.SELECTED
            else:
                sel = Selected.STANDBY
            if sel is not port.selected:
                port.selected = sel
                changed = True
        return changed

    def _converge(self, now: float) -> None:
        """Run mux steps and selection until nothing moves; emit intents per transition."""
        aggregate_wait = self._settings.aggregate_wait
        for _ in range(_MAX_CONVERGE_ROUNDS):
            # Ready: no SELECTED port of the same aggregator is still inside its wait_while.
            waiting = {
                _aggregator_key(p)
                for p in self._order
                if p.mux_state is MuxState.WAITING
                and p.selected is Selected.SELECTED
                and p.wait_while is not None
            }
            moved = False
            for port in self._order:
                ready = _aggregator_key(port) not in waiting
                if port.mux_step(now, ready, aggregate_wait):
                    moved = True
                    self._sync_enabled(port)
            if not self._select() and not moved:
                return
        raise AssertionError("LACP mux/selection did not converge")  # pragma: no cover

    def _sync_enabled(self, port: Port) -> None:
        want = port.mux_state is MuxState.COLLECTING_DISTRIBUTING
        if want != port.enabled:
            port.enabled = want
            self._intents.append(PortEnable(self._settings.name, port.name, want))
            self._update_carrier()

    def _update_carrier(self) -> None:
        enabled = sum(1 for p in self._order if p.enabled)
        up = enabled >= max(1, self._settings.min_links)
        if up != self._carrier:
            self._carrier = up
            self._intents.append(Carrier(self._settings.name, up))

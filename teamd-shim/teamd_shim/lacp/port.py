"""Per-port LACP machines: receive, periodic transmit, mux, plus NTT and the rate limit.

A ``Port`` is plain mutable data plus the transitions that only need the port itself and the
LAG's settings. Anything that looks across ports (aggregator selection, Ready, carrier) lives in
``lag.py``. All timers are absolute deadlines in CLOCK_MONOTONIC seconds; ``None`` means "not
running" (for wait_while it also means "expired", which is what the mux asks about).

Actor state bits are derived from machine states rather than stored, so they can never
disagree with the machines, and a restored port advertises exactly what the original did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from teamd_shim.lacp.constants import (
    ACTIVITY,
    AGGREGATION,
    COLLECTING,
    DEFAULT_RETRY_COUNT,
    DEFAULTED,
    DISTRIBUTING,
    EXPIRED,
    FAST_PERIODIC,
    LACP_VERSION,
    RETRY_VERSION,
    SLOW_PERIODIC,
    SYNC,
    TIMEOUT,
    TX_LIMIT,
)
from teamd_shim.lacp.pdu import ZERO_INFO, Lacpdu, PortInfo, encode_frame, mac_str, parse_mac

if TYPE_CHECKING:
    from teamd_shim.lacp.settings import LagSettings


class RxState(StrEnum):
    INITIALIZE = "initialize"
    PORT_DISABLED = "port_disabled"
    EXPIRED = "expired"
    DEFAULTED = "defaulted"
    CURRENT = "current"


class MuxState(StrEnum):
    DETACHED = "detached"
    WAITING = "waiting"
    ATTACHED = "attached"
    COLLECTING_DISTRIBUTING = "collecting_distributing"


class Selected(StrEnum):
    SELECTED = "selected"
    UNSELECTED = "unselected"
    STANDBY = "standby"


# teamd's port state names (teamdctl `state dump`), which tooling greps for.
TEAMD_STATE_NAME = {
    RxState.INITIALIZE: "disabled",
    RxState.PORT_DISABLED: "disabled",
    RxState.EXPIRED: "expired",
    RxState.DEFAULTED: "defaulted",
    RxState.CURRENT: "current",
}

COUNTERS = (
    "rx_pdus",
    "tx_pdus",
    "rx_bad",
    "rx_truncated",
    "rx_marker",
    "rx_marker_response",
    "tx_marker_response",
    "rx_loopback",
    "down_count",
)
# The counters that only move when something is wrong: published to STATE_DB (rx_pdus/tx_pdus
# move every second on every port and would turn the publisher into a per-PDU writer).
ERROR_COUNTERS = ("rx_bad", "rx_truncated", "rx_marker", "rx_loopback")

# What update_Selected and "matched" compare: identity plus the Aggregation bit.
_IDENTITY_STATE_MASK = AGGREGATION


def aggregation_identity(p: PortInfo) -> tuple[int, bytes, int, int]:
    """What decides which aggregator a port belongs to (partner system, priority, key and
    whether it may aggregate at all)."""
    return (p.system_priority, p.system, p.key, p.state & AGGREGATION)


def same_identity(a: PortInfo, b: PortInfo) -> bool:
    """update_Selected / matched comparison: identity fields and the Aggregation bit."""
    return (
        a.port == b.port
        and a.port_priority == b.port_priority
        and a.system == b.system
        and a.system_priority == b.system_priority
        and a.key == b.key
        and (a.state & _IDENTITY_STATE_MASK) == (b.state & _IDENTITY_STATE_MASK)
    )


@dataclass(slots=True, eq=False)
class Port:
    """One member port's LACP state; see the module docstring for the conventions."""

    name: str
    port_number: int
    mac: bytes
    port_priority: int
    link_up: bool
    rx_state: RxState = RxState.INITIALIZE
    mux_state: MuxState = MuxState.DETACHED
    selected: Selected = Selected.UNSELECTED
    partner: PortInfo = ZERO_INFO
    ntt: bool = False
    current_while: float | None = None
    wait_while: float | None = None
    # Periodic machine: None period = NO_PERIODIC. next_tx is the drift-free schedule.
    tx_period: float | None = None
    next_tx: float | None = None
    # A pending NTT held back by the rate limit may go out at this instant.
    tx_hold: float | None = None
    # Instants of the last (up to TX_LIMIT) transmissions, oldest first: the rate-limit window.
    tx_times: list[float] = field(default_factory=list)
    last_tx: float | None = None
    last_tx_frame: bytes | None = None
    # The partner's last accepted LACPDU (whole frame), kept only while CURRENT: what a warm
    # stop saves for the warm start after a reboot (libteam patch 0008, lacp/warm_start.py)
    last_rx_frame: bytes | None = None
    # Dataplane view: True while mux is COLLECTING_DISTRIBUTING (the LAG emits the intents).
    enabled: bool = False
    rx_pdus: int = 0
    tx_pdus: int = 0
    rx_bad: int = 0
    rx_truncated: int = 0
    rx_marker: int = 0
    rx_marker_response: int = 0
    tx_marker_response: int = 0
    rx_loopback: int = 0
    down_count: int = 0
    # The last LACPDU carried our own system id (two of our ports cabled together, or a port
    # hearing itself): such PDUs are dropped, so the port is never selected (hld §12).
    loopback: bool = False
    # Aggregator id shown by state dumps; sticky while the port stays in its aggregator, so a
    # port leaving for another partner does not renumber the others (Lag._number_aggregators).
    aggregator_id: int | None = None
    # Instants of the last marker responses: the responder's own 3-per-second window.
    marker_times: list[float] = field(default_factory=list)
    # SONiC's retry-count extension (hld §13.7): the count the partner announced (receive
    # expiry = periodic interval x this) and the version of its last accepted LACPDU (we answer
    # 0xf1 only to a partner that speaks it)
    partner_retry_count: int = DEFAULT_RETRY_COUNT
    rx_version: int = LACP_VERSION
    # the pending NTT was raised by the periodic machine (not by an event): what a yielded
    # owner's keepalive goes by (Lag.keepalive_due); transient, not handed over
    periodic_pending: bool = field(default=False, compare=False, repr=False)
    # (actor, partner, retry counts or None, frame) of the last encoding: a steady-state PDU
    # is not re-encoded.
    _frame_cache: tuple[PortInfo, PortInfo, tuple[int, int] | None, bytes] | None = None
    # last_tx / last_tx_frame before the most recent transmission, so a send the socket refused
    # can be taken back (transient: not part of the state that crosses a handover)
    _before_tx: tuple[float | None, bytes | None] | None = field(
        default=None, compare=False, repr=False
    )

    # ---- what we advertise -------------------------------------------------------------

    def actor_state(self, cfg: LagSettings) -> int:
        state = AGGREGATION
        if cfg.active:
            state |= ACTIVITY
        if cfg.fast_rate:
            state |= TIMEOUT
        mux = self.mux_state
        if mux is MuxState.ATTACHED:
            state |= SYNC
        elif mux is MuxState.COLLECTING_DISTRIBUTING:
            state |= SYNC | COLLECTING | DISTRIBUTING
        if self.rx_state is RxState.DEFAULTED:
            state |= DEFAULTED
        elif self.rx_state is RxState.EXPIRED:
            state |= EXPIRED
        return state

    def actor(self, cfg: LagSettings) -> PortInfo:
        return PortInfo(
            cfg.system_priority,
            cfg.system,
            cfg.key,
            self.port_priority,
            self.port_number,
            self.actor_state(cfg),
        )

    def speaks_retry(self, own_retry: int, feature: bool) -> bool:
        """Patched teamd's rule (hld §13.7): 0xf1 iff the feature is on, a count is not the
        default, and the partner's last accepted PDU was 0xf1 (a partner that does not speak
        it would drop 0xf1 PDUs as malformed, as stock teamd does)."""
        return (
            feature
            and self.rx_version == RETRY_VERSION
            and (
                own_retry != DEFAULT_RETRY_COUNT or self.partner_retry_count != DEFAULT_RETRY_COUNT
            )
        )

    def frame(
        self, cfg: LagSettings, own_retry: int = DEFAULT_RETRY_COUNT, feature: bool = True
    ) -> bytes:
        """The PDU this port would transmit now; cached while its content is unchanged.

        Per-PDU path: the cache is checked on (actor, partner, retry counts) before any
        Lacpdu is built, so a steady-state PDU costs one PortInfo and a comparison.
        """
        actor = self.actor(cfg)
        retry = (
            (own_retry, self.partner_retry_count) if self.speaks_retry(own_retry, feature) else None
        )
        cache = self._frame_cache
        if (
            cache is not None
            and cache[0] == actor
            and cache[1] == self.partner
            and cache[2] == retry
        ):
            return cache[3]
        if retry is None:
            pdu = Lacpdu(actor, self.partner)
        else:
            pdu = Lacpdu(actor, self.partner, 0, RETRY_VERSION, *retry)
        frame = encode_frame(self.mac, pdu)
        self._frame_cache = (actor, self.partner, retry, frame)
        return frame

    def receive_timeout(self, cfg: LagSettings) -> float:
        """current_while: the periodic interval we asked for x the partner's retry count
        (3 s / 90 s by default; patched teamd's rule, hld §13.7)."""
        return (FAST_PERIODIC if cfg.fast_rate else SLOW_PERIODIC) * self.partner_retry_count

    def goodbye_frame(self, cfg: LagSettings) -> bytes | None:
        """The last PDU of a port that is really leaving (teamd's lacp_port_removed: the port
        goes DISABLED and one LACPDU goes out): our info with Synchronization, Collecting and
        Distributing cleared, so the partner stops using the link at once instead of after its
        receive timeout (3 s fast, 90 s slow). None if the port could not transmit anyway."""
        if not self.can_transmit(cfg):
            return None
        actor = self.actor(cfg)
        leaving = actor.with_state(actor.state & ~(SYNC | COLLECTING | DISTRIBUTING))
        return encode_frame(self.mac, Lacpdu(leaving, self.partner))  # v1: the last word

    def can_transmit(self, cfg: LagSettings) -> bool:
        """TX needs the LAG admin up, carrier and at least one active side (no passive-passive
        chatter)."""
        return cfg.admin_up and self.link_up and (cfg.active or bool(self.partner.state & ACTIVITY))

    def partner_sync(self) -> bool:
        return bool(self.partner.state & SYNC)

    # ---- receive machine ---------------------------------------------------------------

    def begin(self, now: float) -> None:
        """BEGIN: INITIALIZE (recordDefault, UNSELECTED), then PORT_DISABLED or EXPIRED."""
        self.rx_state = RxState.INITIALIZE
        self.selected = Selected.UNSELECTED
        self.partner = ZERO_INFO
        self.mux_state = MuxState.DETACHED
        self.ntt = True  # DETACHED entry
        self.enter_port_disabled()
        if self.link_up:
            self.enter_expired(now)

    def enter_port_disabled(self) -> None:
        self.rx_state = RxState.PORT_DISABLED
        self.last_rx_frame = None
        self.partner = self.partner.with_state(self.partner.state & ~SYNC)
        self.current_while = None
        # Nothing can be sent without carrier; link-up raises NTT again via EXPIRED.
        self.ntt = False
        self.tx_hold = None

    def enter_expired(self, now: float) -> None:
        """Partner Sync off (disables the port), ask for fast PDUs, give it the short timeout
        (1 s x the partner's retry count: 3 s by default). teamd also forgets the partner's
        version here, so 0xf1 resumes only when the partner speaks it again."""
        self.rx_state = RxState.EXPIRED
        self.last_rx_frame = None
        self.partner = self.partner.with_state((self.partner.state & ~SYNC) | TIMEOUT)
        self.current_while = now + FAST_PERIODIC * self.partner_retry_count
        self.rx_version = LACP_VERSION
        self.ntt = True  # our Expired bit changed; teamd sends every state change at once

    def enter_defaulted(self) -> None:
        """teamd's recordDefault: partner zeroed except the Timeout bit; unselectable."""
        self.rx_state = RxState.DEFAULTED
        self.last_rx_frame = None
        self.partner = ZERO_INFO.with_state(self.partner.state & TIMEOUT)
        self.selected = Selected.UNSELECTED
        self.current_while = None
        self.ntt = True

    def rx_timer(self, now: float) -> bool:
        """current_while expiry: CURRENT -> EXPIRED -> DEFAULTED."""
        if self.current_while is None or now < self.current_while:
            return False
        if self.rx_state is RxState.CURRENT:
            self.enter_expired(now)
        else:
            self.enter_defaulted()
        return True

    def record_pdu(self, pdu: Lacpdu, actor: PortInfo, now: float, cfg: LagSettings) -> None:
        """CURRENT entry: update_Selected, recordPDU (with matched), restart current_while."""
        received = pdu.actor
        if not same_identity(received, self.partner):
            self.selected = Selected.UNSELECTED
            if aggregation_identity(received) != aggregation_identity(self.partner):
                self.aggregator_id = None  # another aggregator: its id is not ours to keep
        # matched: the partner's view of us is right, or it is an individual link.
        matched = same_identity(pdu.partner, actor) or not received.state & AGGREGATION
        if received.state & SYNC and not matched:
            received = received.with_state(received.state & ~SYNC)
        self.partner = received
        if self.rx_state is not RxState.CURRENT:
            self.ntt = True
        self.rx_state = RxState.CURRENT
        self.current_while = now + self.receive_timeout(cfg)

    # ---- periodic machine --------------------------------------------------------------

    def periodic_update(self, now: float, cfg: LagSettings) -> None:
        """Follow the partner's Timeout bit (and NO_PERIODIC conditions) for the TX period."""
        if not self.can_transmit(cfg):
            period = None
        else:
            period = FAST_PERIODIC if self.partner.state & TIMEOUT else SLOW_PERIODIC
        if period == self.tx_period:
            return
        old, self.tx_period = self.tx_period, period
        if period is None:
            self.next_tx = None
        elif old == SLOW_PERIODIC and period == FAST_PERIODIC:
            # SLOW_PERIODIC -> PERIODIC_TX at once when the partner starts asking for fast.
            self.ntt = True
            self.next_tx = now + period
        else:
            self.next_tx = now + period

    def periodic_timer(self, now: float) -> None:
        """PERIODIC_TX: raise NTT and advance the schedule without drift."""
        if self.next_tx is None or self.tx_period is None or now < self.next_tx:
            return
        self.ntt = True
        self.periodic_pending = True
        nxt = self.next_tx + self.tx_period
        self.next_tx = nxt if nxt > now else now + self.tx_period

    # ---- transmit machine --------------------------------------------------------------

    def tx_release(self) -> float | None:
        """When the rate limit next allows a send (None: it allows one now)."""
        if len(self.tx_times) < TX_LIMIT:
            return None
        return self.tx_times[-TX_LIMIT] + FAST_PERIODIC

    def transmitted(self, frame: bytes, now: float) -> None:
        self.ntt = False
        self.periodic_pending = False
        self.tx_hold = None
        self.tx_times = [*self.tx_times[-(TX_LIMIT - 1) :], now]
        self._before_tx = (self.last_tx, self.last_tx_frame)
        self.last_tx = now
        self.last_tx_frame = frame
        self.tx_pdus += 1

    def untransmitted(self, frame: bytes, now: float) -> bool:
        """The frame handed out at `now` never left (the socket refused it): it must not count
        as our last PDU, whose instant and bytes a handover hands on (a new owner would place its
        first PDU one period after a PDU the partner never got). The NTT is not re-armed: the
        periodic machine sends again on schedule."""
        if self._before_tx is None or self.last_tx != now or self.last_tx_frame != frame:
            return False
        self.last_tx, self.last_tx_frame = self._before_tx
        self._before_tx = None
        if self.tx_times and self.tx_times[-1] == now:
            self.tx_times = self.tx_times[:-1]
        self.tx_pdus -= 1
        return True

    # ---- mux machine (coupled control) -------------------------------------------------

    def in_sync(self, fallback: bool) -> bool:
        """The partner's Sync, or (SONiC's fallback) no partner at all: a DEFAULTED port."""
        return self.partner_sync() or (fallback and self.rx_state is RxState.DEFAULTED)

    def mux_step(
        self, now: float, ready: bool, aggregate_wait: float, fallback: bool = False
    ) -> bool:
        """Take at most one mux transition; True if one was taken."""
        mux, sel = self.mux_state, self.selected
        if mux is MuxState.DETACHED:
            if sel is Selected.UNSELECTED:
                return False
            self.mux_state = MuxState.WAITING
            self.wait_while = now + aggregate_wait if aggregate_wait > 0 else None
            return True
        if mux is MuxState.WAITING:
            if sel is Selected.UNSELECTED:
                self.mux_state = MuxState.DETACHED
            elif sel is Selected.SELECTED and ready:
                self.mux_state = MuxState.ATTACHED
            else:
                return False
            self.wait_while = None
            self.ntt = True
            return True
        if mux is MuxState.ATTACHED:
            if sel is not Selected.SELECTED:
                self.mux_state = MuxState.DETACHED
            elif self.in_sync(fallback):
                self.mux_state = MuxState.COLLECTING_DISTRIBUTING
            else:
                return False
            self.ntt = True
            return True
        # COLLECTING_DISTRIBUTING
        if sel is not Selected.SELECTED or not self.in_sync(fallback):
            self.mux_state = MuxState.ATTACHED
            self.ntt = True
            return True
        return False

    # ---- serialisation -----------------------------------------------------------------

    def to_dict(self, cfg: LagSettings) -> dict[str, Any]:
        return {
            "port_number": self.port_number,
            "mac": mac_str(self.mac),
            "port_priority": self.port_priority,
            "link_up": self.link_up,
            "rx_state": self.rx_state.value,
            "mux_state": self.mux_state.value,
            "selected": self.selected.value,
            # Derived from the states above; informative (from_dict recomputes it).
            "actor": self.actor(cfg).to_dict(),
            "partner": self.partner.to_dict(),
            "ntt": self.ntt,
            "current_while": self.current_while,
            "wait_while": self.wait_while,
            "tx_period": self.tx_period,
            "next_tx": self.next_tx,
            "tx_hold": self.tx_hold,
            "tx_times": list(self.tx_times),
            "last_tx": self.last_tx,
            "last_tx_frame": None if self.last_tx_frame is None else self.last_tx_frame.hex(),
            "last_rx_frame": None if self.last_rx_frame is None else self.last_rx_frame.hex(),
            "enabled": self.enabled,
            "loopback": self.loopback,
            "aggregator_id": self.aggregator_id,
            "partner_retry_count": self.partner_retry_count,
            "rx_version": self.rx_version,
            "counters": {c: getattr(self, c) for c in COUNTERS},
            # the marker responder's rate limit: a new owner must not answer a fourth marker
            # within the second the old one answered three
            "marker_times": list(self.marker_times),
        }

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> Port:
        def opt_float(key: str) -> float | None:
            v = d[key]
            return None if v is None else float(v)

        frame = d["last_tx_frame"]
        rx_frame = d.get("last_rx_frame")
        counters = d["counters"]
        port = cls(
            name=name,
            port_number=int(d["port_number"]),
            mac=parse_mac(d["mac"]),
            port_priority=int(d["port_priority"]),
            link_up=_bool(d["link_up"]),
            rx_state=RxState(d["rx_state"]),
            mux_state=MuxState(d["mux_state"]),
            selected=Selected(d["selected"]),
            partner=PortInfo.from_dict(d["partner"]),
            ntt=_bool(d["ntt"]),
            current_while=opt_float("current_while"),
            wait_while=opt_float("wait_while"),
            tx_period=opt_float("tx_period"),
            next_tx=opt_float("next_tx"),
            tx_hold=opt_float("tx_hold"),
            tx_times=[float(t) for t in d["tx_times"]][-TX_LIMIT:],
            last_tx=opt_float("last_tx"),
            last_tx_frame=None if frame is None else bytes.fromhex(frame),
            # absent in snapshots of older versions: nothing saved for a warm start
            last_rx_frame=None if rx_frame is None else bytes.fromhex(rx_frame),
            enabled=_bool(d["enabled"]),
            loopback=_bool(d["loopback"]),
            aggregator_id=None if d["aggregator_id"] is None else int(d["aggregator_id"]),
            partner_retry_count=int(d["partner_retry_count"]),
            rx_version=int(d["rx_version"]),
            # absent in snapshots of older versions: no marker answered recently
            marker_times=[float(t) for t in d.get("marker_times", [])][-TX_LIMIT:],
        )
        for c in COUNTERS:  # one list of counters for to_dict and from_dict
            setattr(port, c, int(counters[c]))
        if port.enabled != (port.mux_state is MuxState.COLLECTING_DISTRIBUTING):
            raise ValueError(f"port {name}: enabled disagrees with mux state {port.mux_state}")
        return port


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected a bool, got {v!r}")
    return v

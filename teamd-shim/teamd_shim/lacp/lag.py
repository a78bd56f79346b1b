"""One PortChannel: its ports, carrier, intents and the state dict (selection: selection.py).

``Lag`` is the sans-IO connection object (h11/aioquic style): the caller feeds it events
(``receive``, ``set_link``, ``on_timer`` ...) with the current CLOCK_MONOTONIC time, then drains
its outputs (``frames_to_send``, ``pop_intents``) and sleeps until ``next_deadline()``.

Every entry point first runs the timers that are due at ``now``, so behaviour does not depend on
whether the caller called ``on_timer`` exactly on time, and the whole state round-trips through
``to_dict``/``from_dict`` so another process can continue exactly where this one stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from teamd_shim.lacp import selection
from teamd_shim.lacp.constants import (
    FAST_PERIODIC,
    SUBTYPE_MARKER,
    SYNC,
    TX_LIMIT,
)
from teamd_shim.lacp.pdu import (
    MARKER_INFORMATION,
    NotLacpError,
    PduError,
    PortInfo,
    TruncatedPduError,
    decode_frame,
    decode_marker,
    encode_marker_response,
)
from teamd_shim.lacp.port import (
    COUNTERS,
    TEAMD_STATE_NAME,
    MuxState,
    Port,
    RxState,
    Selected,
)
from teamd_shim.lacp.retry_count import RetryCount
from teamd_shim.lacp.settings import LagSettings
from teamd_shim.lacp.views import PortView
from teamd_shim.lacp.warm_start import WarmStart

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


@dataclass(frozen=True, slots=True)
class LoopbackDetected:
    """A port started hearing LACPDUs with our own system id (reported once per episode)."""

    lag: str
    port: str


# Something the operator should hear about; not a dataplane change (those are intents).
Notice = LoopbackDetected

# A one-shot frame outside the periodic machine (goodbye, marker response) that is not sent by
# this instant is dropped: an instance that does not transmit (a standby shadowing the owner)
# must not pile them up and flush stale ones when it takes over.
ONESHOT_TTL = FAST_PERIODIC


@dataclass(frozen=True, slots=True)
class _Oneshot:
    port: str
    frame: bytes
    until: float
    marker_response: bool = False


def _intent_key(it: Intent) -> tuple[str, str]:
    return ("port", it.port) if isinstance(it, PortEnable) else ("carrier", "")


def _intent_value(it: Intent) -> bool:
    return it.enabled if isinstance(it, PortEnable) else it.up


def net_intents(intents: list[Intent]) -> list[Intent]:
    """Keep, per member and for the carrier, only the last intent, and none where the last
    value equals the one before the first (each intent is a change, so the value before it is
    the opposite of its own). Order: by each kept intent's position."""
    if len(intents) < 2:  # the common case on the per-PDU path: nothing can net out
        return intents
    before: dict[tuple[str, str], bool] = {}
    last: dict[tuple[str, str], int] = {}
    for i, it in enumerate(intents):
        key = _intent_key(it)
        before.setdefault(key, not _intent_value(it))
        last[key] = i
    return [
        it
        for i, it in enumerate(intents)
        if last[_intent_key(it)] == i and _intent_value(it) != before[_intent_key(it)]
    ]


class Lag:
    """A PortChannel's LACP speaker, pure and deterministic; see the module docstring."""

    def __init__(self, settings: LagSettings) -> None:
        self._settings = settings
        self._ports: dict[str, Port] = {}
        self._order: list[Port] = []  # by port number: the order of frames and intents
        self._carrier = False
        self._intents: list[Intent] = []
        self._notices: list[Notice] = []
        # frames outside the periodic machine (goodbyes queued by an admin down, marker
        # responses), sent by the next frames_to_send
        self._oneshots: list[_Oneshot] = []
        self._retry = RetryCount()  # SONiC's retry-count extension (retry_count.py)
        self._warm: WarmStart | None = None  # teamd's warm-start mode (warm_start.py)
        self._selected_for: object = None  # selection's inputs after its last run (_select)

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
        self._warm_step(now)

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
        # what it still owed goes with it (a port re-added under its name starts afresh)
        self._oneshots = [o for o in self._oneshots if o.port != name]
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
        before = {
            p.name: p.frame(old, self.own_retry_count, self._retry.feature) for p in self._order
        }
        if old.admin_up and not settings.admin_up:
            # teamd on admin down: every port DISABLED, one last PDU each, then silence
            for port in self._order:
                frame = port.goodbye_frame(old)
                if frame is not None:
                    self._queue(_Oneshot(port.name, frame, now + ONESHOT_TTL), now)
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
        if settings.retry_count != old.retry_count and self._retry.override is None:
            self._retry.announce(self._order)
        for port in self._order:
            if port.frame(settings, self.own_retry_count, self._retry.feature) != before[port.name]:
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
            self._retry.end_override()
        else:
            port.down_count += 1
            port.enter_port_disabled()
            port.selected = Selected.UNSELECTED
        port.periodic_update(now, self._settings)
        self._converge(now)
        self._warm_step(now)

    def receive(self, name: str, frame: bytes, now: float) -> bool:
        """Process one received Slow Protocols frame; False if it was dropped."""
        port = self._ports[name]
        self._run_timers(now)
        return self._accept(port, frame, now)

    def _accept(self, port: Port, frame: bytes, now: float) -> bool:
        name = port.name
        try:
            _src, pdu = decode_frame(frame)
        except NotLacpError as exc:
            if exc.subtype == SUBTYPE_MARKER:
                self._on_marker(port, frame, now)
            else:
                port.rx_bad += 1
            return False
        except TruncatedPduError:
            port.rx_truncated += 1
            return False
        except PduError:
            port.rx_bad += 1
            return False
        if not port.link_up:
            return False  # like OVS: no carrier, no PDU
        cfg = self._settings
        if pdu.actor.system == cfg.system:
            # Our own PDU came back (Linux: "An illegal loopback occurred"; OVS: "Loopback
            # detected"): dropped, so the port never becomes current on it and is not selected.
            port.rx_loopback += 1
            if not port.loopback:
                port.loopback = True
                self._notices.append(LoopbackDetected(cfg.name, name))
            return False
        port.loopback = False
        if not self._retry.received(port, pdu, now):
            port.rx_bad += 1
            return False
        port.rx_pdus += 1
        port.record_pdu(pdu, port.actor(cfg), now, cfg)
        port.last_rx_frame = frame
        port.periodic_update(now, cfg)
        self._converge(now)
        # update_NTT, teamd-style: any difference in the 15 bytes echoing us gets an answer, and
        # so does a partner with the wrong idea of our retry count
        if pdu.partner != port.actor(cfg) or self._retry.partner_wrong(pdu, cfg):
            port.ntt = True
        return True

    def on_timer(self, now: float) -> None:
        self._run_timers(now)

    def next_deadline(self) -> float | None:
        """Earliest absolute deadline of any timer (rx, wait_while, periodic TX, rate hold)."""
        best = self._retry.deadline()
        if self._warm is not None and (best is None or self._warm.until < best):
            best = self._warm.until
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
        out: list[tuple[str, bytes]] = []
        for shot in self._oneshots:
            if shot.port in self._ports and now <= shot.until:
                out.append((shot.port, shot.frame))
                if shot.marker_response:
                    self._ports[shot.port].tx_marker_response += 1
        self._oneshots = []
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
            frame = port.frame(cfg, self.own_retry_count, self._retry.feature)
            port.transmitted(frame, now)
            out.append((port.name, frame))
        return out

    def keepalive_due(self, now: float) -> bool:
        """Some port that can transmit has a periodic PDU pending. A yielded owner transmits
        only then (hld §7): it keeps the partner's timers fed while nobody else does, but
        never answers events, which the new owner (restored from the final snapshot) will.

        Judged by what raised the pending NTT (the periodic machine, `periodic_pending`), after
        running the timers due at `now` like every entry point: judging by the last send's
        instant made a late send hide the next keepalive (a port went 1.46 s without a PDU),
        and judging by the schedule before the timers ran lost the keepalive whenever a
        received PDU ran them first (3.0 s without a PDU on one LAG).
        """
        self._run_timers(now)
        cfg = self._settings
        for port in self._order:
            # a port that never sent (a LAG configured after the yield) has nothing to keep
            # alive: the new owner negotiates it
            if (
                port.ntt
                and port.periodic_pending
                and port.last_tx is not None
                and port.can_transmit(cfg)
            ):
                return True
        return False

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
                # Within the 3-per-second limit like any PDU: a port whose window is full keeps
                # its NTT (and tx_hold), which a snapshot carries to the new owner.
                port.ntt = True
        out = self.frames_to_send(now)
        for name, _ in out:
            port = self._ports[name]
            if port.tx_period is not None:
                port.next_tx = now + port.tx_period
        return out

    def adopt_wire_tx(self, name: str, at: float, frame: bytes) -> bool:
        """A promotion (hld §14): the previous owner's last PDU on `name` as the wire showed it,
        newer than the state we restored. Our schedule continues from it, so our first PDU is
        one period after the last one the partner really got, not after one a dead owner's
        snapshot last recorded. A pending NTT that this PDU already answered is dropped; if
        our PDU would differ from it, one goes out at once (early is invisible, late is not).
        False (nothing changed) when the wire PDU is not newer than our own record."""
        port = self._ports.get(name)
        if port is None or (port.last_tx is not None and at <= port.last_tx):
            return False
        port.last_tx, port.last_tx_frame = at, frame
        port.tx_times = [*port.tx_times[-(TX_LIMIT - 1) :], at]
        if port.tx_period is not None:
            port.next_tx = at + port.tx_period
        if self.would_send(name) == frame:
            port.ntt = port.periodic_pending = False
        elif port.can_transmit(self._settings):
            port.ntt = True
        return True

    def can_transmit(self, name: str) -> bool:
        """Whether this port may send at all now (carrier, admin up, an active side)."""
        return self._ports[name].can_transmit(self._settings)

    def would_send(self, name: str) -> bytes:
        """The frame this port would transmit now; no side effects (standby READY check)."""
        return self._ports[name].frame(self._settings, self.own_retry_count, self._retry.feature)

    def pop_intents(self) -> list[Intent]:
        """The net dataplane changes since the last call: a member (or the carrier) that went
        off and on again within them is left out, so a partner's identity change that
        re-selects the same ports at once is no change at all for the kernel (as with stock
        teamd), never a disable/carrier-down/enable/up blip inside one PDU."""
        intents, self._intents = self._intents, []
        return net_intents(intents)

    # ---- SONiC retry count (hld §13.7) --------------------------------------------------

    @property
    def own_retry_count(self) -> int:
        """The count we announce: one set at run time while it lasts, else the configured one."""
        return self._retry.own(self._settings)

    @property
    def retry_count_feature(self) -> bool:
        return self._retry.feature

    def set_retry_count(self, count: int, now: float) -> None:
        """teamdctl `state item set runner.retry_count N`: announce N on every selected port
        at once (as 0xf1, trusting that whoever sets it checked the partner speaks it); it
        lapses after N x 3 min or when any port expires; 3 ends it."""
        self._retry.check(count)
        self._run_timers(now)
        if self._retry.set(count, now, self._settings):
            self._retry.announce(self._order)

    def set_retry_count_feature(self, enabled: bool, now: float) -> None:
        """teamdctl `runner.enable_retry_count_feature`: off means plain LACP only (0xf1 PDUs
        are read like any version, every count back to 3)."""
        self._run_timers(now)
        self._retry.set_feature(enabled, self._order)

    # ---- warm reboot (warm_start.py) -----------------------------------------------------

    def warm_saved(self) -> tuple[bool, dict[str, bool], dict[str, bytes]]:
        """What a warm stop saves: the carrier, each member's `enabled`, and the partner's last
        PDU of each member that is current (libteam patch 0008's dump)."""
        return (
            self._carrier,
            {p.name: p.enabled for p in self._order},
            {p.name: p.last_rx_frame for p in self._order if p.last_rx_frame is not None},
        )

    def warm_start(
        self, members: Mapping[str, bool], pdus: Mapping[str, bytes], now: float
    ) -> None:
        """Start in teamd's warm mode from a saved carrier that was up (the caller has told the
        dataplane: the carrier is up already, so no intent): each saved member's PDU is fed as
        its link is up, now or later, within 3 s."""
        self._run_timers(now)
        self._warm = WarmStart.begin(members, pdus, now)
        self._carrier = True
        self._warm_step(now)

    @property
    def warm_starting(self) -> bool:
        return self._warm is not None

    def _warm_step(self, now: float) -> None:
        warm = self._warm
        if warm is None:
            return
        for name, frame in warm.due(p.name for p in self._order if p.link_up):
            self._accept(self._ports[name], frame, now)
        if warm.done(now):
            self._warm = None
            self._update_carrier()

    def pop_notices(self) -> list[Notice]:
        notices, self._notices = self._notices, []
        return notices

    # ---- views -------------------------------------------------------------------------

    @property
    def carrier(self) -> bool:
        return self._carrier

    @property
    def ports(self) -> tuple[str, ...]:
        return tuple(p.name for p in self._order)

    def port_enabled(self, name: str) -> bool:
        return self._ports[name].enabled

    def port_view(self, name: str) -> PortView:
        """A teamdctl-like per-port summary for state dumps, READY and tests."""
        port = self._ports[name]
        agg_id = port.port_number if port.aggregator_id is None else port.aggregator_id
        return PortView(
            state=TEAMD_STATE_NAME[port.rx_state],
            selected=port.selected is Selected.SELECTED,
            selection=port.selected.value,
            aggregator_id=agg_id,
            aggregator_selected=port.selected is Selected.SELECTED,
            enabled=port.enabled,
            rx_state=port.rx_state.value,
            mux_state=port.mux_state.value,
            actor=port.actor(self._settings),
            partner=port.partner,
            loopback=port.loopback,
            partner_retry_count=port.partner_retry_count,
            counters={c: getattr(port, c) for c in COUNTERS},
        )

    # ---- state transfer ----------------------------------------------------------------

    def shadow_key(self) -> tuple[object, ...]:
        """Equal while nothing but clocks and counters changed: the hot standby's shadow
        re-sends a LAG at once when this moves, and otherwise only on its refresh round (the
        standby's replay of the frames after the cut brings clocks and counters up to date,
        hld §14.4). Cheap on purpose: it runs for every LAG on every shadow round."""
        return (
            self._settings,
            self._carrier,
            self._retry,
            self._warm is None,
            len(self._oneshots),
            len(self._notices),
            tuple(
                (
                    p.name,
                    p.link_up,
                    p.rx_state,
                    p.mux_state,
                    p.selected,
                    p.ntt,
                    p.enabled,
                    p.loopback,
                    p.aggregator_id,
                    p.partner_retry_count,
                    p.last_rx_frame,
                    p.last_tx_frame,
                )  # fmt: skip
                for p in self._order
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON types. Pending intents are outputs that the dataplane view
        (re)derives, not state: not included."""
        return {
            "format": FORMAT_VERSION,
            "settings": self._settings.to_dict(),
            "carrier": self._carrier,
            "ports": {p.name: p.to_dict(self._settings) for p in self._order},
            "retry": self._retry.to_dict(),
            # frames owed outside the periodic machine (an admin down's goodbyes, marker
            # responses) and notices not yet reported: a new owner sends and says them
            "oneshots": [
                {
                    "port": o.port,
                    "frame": o.frame.hex(),
                    "until": o.until,
                    "marker_response": o.marker_response,
                }
                for o in self._oneshots
            ],
            "notices": [{"kind": "loopback", "port": n.port} for n in self._notices],
            "warm": None if self._warm is None else self._warm.to_dict(),
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
            lag._retry = RetryCount.from_dict(d["retry"])
            # absent in snapshots of older versions: nothing owed
            lag._oneshots = [
                _Oneshot(
                    str(o["port"]),
                    bytes.fromhex(o["frame"]),
                    float(o["until"]),
                    bool(o["marker_response"]),
                )
                for o in d.get("oneshots", [])
                if o["port"] in lag._ports
            ]
            name = lag._settings.name
            lag._notices = [
                LoopbackDetected(name, str(n["port"]))
                for n in d.get("notices", [])
                if n.get("kind") == "loopback"
            ]
            warm = d.get("warm")  # absent in snapshots of older versions: not warm-starting
            lag._warm = None if warm is None else WarmStart.from_dict(warm)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed LAG state: {exc!r}") from exc
        if len({p.port_number for p in lag._order}) != len(lag._order):
            raise ValueError("malformed LAG state: duplicate port numbers")
        return lag

    # ---- internals ---------------------------------------------------------------------

    def _on_marker(self, port: Port, frame: bytes, now: float) -> None:
        """Marker responder (802.1AX requires one): a Marker Information is answered with a
        Response carrying the same requester fields, at most TX_LIMIT per second per port
        (more are counted and dropped: a partner cannot make us flood the link)."""
        try:
            marker = decode_marker(frame)
        except TruncatedPduError:
            port.rx_truncated += 1
            return
        except PduError:
            port.rx_bad += 1
            return
        if marker.tlv_type != MARKER_INFORMATION:
            port.rx_marker_response += 1
            return
        port.rx_marker += 1
        if not port.link_up or not self._settings.admin_up:
            return
        recent = [t for t in port.marker_times if t > now - FAST_PERIODIC]
        if len(recent) >= TX_LIMIT:
            port.marker_times = recent
            return
        port.marker_times = [*recent, now]
        self._queue(
            _Oneshot(
                port.name,
                encode_marker_response(port.mac, marker),
                now + ONESHOT_TTL,
                marker_response=True,
            ),
            now,
        )

    def _queue(self, shot: _Oneshot, now: float) -> None:
        self._oneshots = [s for s in self._oneshots if now <= s.until]
        self._oneshots.append(shot)

    def _run_timers(self, now: float) -> None:
        cfg = self._settings
        self._retry.lapse(now)
        for port in self._order:
            if port.tx_hold is not None and now >= port.tx_hold:
                port.tx_hold = None
            if port.wait_while is not None and now >= port.wait_while:
                port.wait_while = None
            if port.rx_timer(now):
                if port.rx_state is RxState.EXPIRED:
                    self._retry.end_override()
                port.periodic_update(now, cfg)
            port.periodic_timer(now)
        self._converge(now)
        self._warm_step(now)

    def _select(self) -> bool:
        """Selection is a pure function of what `selection.inputs` lists; run it only when
        that differs from what the last run left (it is idempotent): a steady-state PDU runs
        it two to four times otherwise, most of the core's time per PDU (issue 19's profile)."""
        before = selection.inputs(self._order, self._settings)
        if before == self._selected_for:
            return False
        changed = selection.select(self._order, self._settings)
        self._selected_for = selection.inputs(self._order, self._settings) if changed else before
        return changed

    def _converge(self, now: float) -> None:
        """Run mux steps and selection until nothing moves; emit intents per transition."""
        aggregate_wait = self._settings.aggregate_wait
        for _ in range(_MAX_CONVERGE_ROUNDS):
            # Ready: no SELECTED port of the same aggregator is still inside its wait_while.
            waiting = {
                selection.aggregator_key(p)
                for p in self._order
                if p.mux_state is MuxState.WAITING
                and p.selected is Selected.SELECTED
                and p.wait_while is not None
            }
            moved = False
            for port in self._order:
                ready = selection.aggregator_key(port) not in waiting
                if port.mux_step(now, ready, aggregate_wait, self._settings.fallback):
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
        # teamd's warm-start mode keeps the carrier up ("don't put the LAG down")
        up = enabled >= max(1, self._settings.min_links) or self._warm is not None
        if up != self._carrier:
            self._carrier = up
            self._intents.append(Carrier(self._settings.name, up))

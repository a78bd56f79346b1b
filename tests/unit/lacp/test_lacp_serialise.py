"""The whole Lag state survives a JSON round trip, and the copy behaves identically after it."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teamd_shim.lacp import (
    Lacpdu,
    Lag,
    LagSettings,
    PortInfo,
    decode_frame,
    encode_frame,
)
from teamd_shim.lacp.pdu import Marker, encode_marker

SYS_A = bytes.fromhex("0200000000aa")
PARTNERS = [(65535, bytes.fromhex("0200000000bb"), 2), (100, bytes.fromhex("0200000000cc"), 7)]
NAMES = ["e0", "e1", "e2"]

ports = st.integers(0, len(NAMES) - 1)
ops = st.one_of(
    st.tuples(st.just("add"), ports, st.booleans()),
    st.tuples(st.just("remove"), ports),
    st.tuples(st.just("link"), ports, st.booleans()),
    st.tuples(
        st.just("pdu"),
        ports,
        st.integers(0, len(PARTNERS) - 1),
        st.integers(0, 255),
        st.booleans(),
    ),  # fmt: skip
    # Well-formed negotiation traffic, so that many histories reach COLLECTING_DISTRIBUTING
    # and STANDBY (two partner systems competing for the aggregator).
    st.tuples(
        st.just("pdu"),
        ports,
        st.sampled_from([0, 0, 0, 1]),
        st.sampled_from([0x3F, 0x3F, 0x3D, 0x37, 0x0F]),
        st.just(True),
    ),  # fmt: skip
    st.tuples(st.just("bad"), ports, st.binary(max_size=130)),
    st.tuples(st.just("advance"), st.floats(0.0, 2.0, allow_nan=False)),
    st.tuples(st.just("advance"), st.floats(0.0, 40.0, allow_nan=False)),
    st.tuples(st.just("send")),
    st.tuples(st.just("settings"), st.booleans(), st.integers(0, 3), st.booleans()),
    # what a snapshot must also carry: marker responses pending and the per-port marker rate
    # limit, an admin down's queued goodbyes, a loopback notice not yet popped
    st.tuples(st.just("marker"), ports, st.integers(0, 2**32 - 1)),
    st.tuples(st.just("admin"), st.booleans()),
    st.tuples(st.just("loop"), ports),
    # a warm start from what a warm stop would save now: its 3 s window crosses snapshots
    st.tuples(st.just("warm"), st.just(False)),
)


def pdu_for(lag: Lag, name: str, partner: int, state: int, echo: bool) -> bytes:
    """A valid PDU from one of two partner systems; optionally echoing our actor exactly."""
    sysprio, system, key = PARTNERS[partner]
    num = NAMES.index(name) + 1
    actor = PortInfo(sysprio, system, key, 255, num, state)
    if echo:
        ours = decode_frame(lag.would_send(name))[1].actor
    else:
        ours = PortInfo(0, bytes(6), 0, 0, 0, 0)
    return encode_frame(system[:5] + bytes([num]), Lacpdu(actor, ours))


def frame_for(lag: Lag, name: str, op: tuple[Any, ...]) -> bytes:
    """The frame of a `bad`, `marker` or `loop` event."""
    if op[0] == "bad":
        return bytes(op[2])
    if op[0] == "marker":
        return encode_marker(PARTNERS[0][1], Marker(1, 7, PARTNERS[0][1], op[2]))
    us = decode_frame(lag.would_send(name))[1].actor  # ourselves: two of our ports cabled
    return encode_frame(SYS_A, Lacpdu(us, us))


def warm_restart_in_place(lag: Lag, now: float) -> None:
    carrier, members, pdus = lag.warm_saved()
    if carrier:
        lag.warm_start(members, pdus, now)


def apply(lag: Lag, op: tuple[Any, ...], now: float) -> tuple[float, list[Any]]:
    """Apply one event; return the new time and everything observable it produced."""
    kind = op[0]
    out: list[Any] = []
    if kind == "advance":
        now += op[1]
        lag.on_timer(now)
    elif kind == "send":
        pass
    elif kind == "settings":
        s = lag.settings
        lag.update_settings(replace(s, fast_rate=op[1], min_links=op[2], active=op[3]), now)
    elif kind == "admin":
        lag.update_settings(replace(lag.settings, admin_up=op[1]), now)
    elif kind == "warm":
        warm_restart_in_place(lag, now)
    else:
        name = NAMES[op[1]]
        present = name in lag.ports
        if kind == "add" and not present:
            lag.add_port(name, port_number=op[1] + 1, mac=bytes([2, 0, 0, 0, 0, op[1]]),
                         link_up=op[2], now=now)  # fmt: skip
        elif kind == "remove" and present:
            lag.remove_port(name, now)
        elif kind == "link" and present:
            lag.set_link(name, op[2], now)
        elif kind == "pdu" and present:
            out.append(lag.receive(name, pdu_for(lag, name, op[2], op[3], op[4]), now))
        elif kind in ("bad", "marker", "loop") and present:
            out.append(lag.receive(name, frame_for(lag, name, op), now))
    if kind == "send" or op[-1] is True:  # sometimes leave NTT pending across a snapshot
        out.append(lag.frames_to_send(now))
    out.append(lag.pop_intents())
    out.append(lag.pop_notices())
    out.append(lag.next_deadline())
    return now, out


def follow(lag: Lag, now: float, horizon: float, echo_partner: bool) -> list[Any]:
    """Drive a Lag through `horizon` seconds of its own deadlines, optionally with a partner
    that answers each frame at once; returns every observable output in order."""
    seen: list[Any] = []
    end = now + horizon
    while True:
        d = lag.next_deadline()
        if d is None or d > end:
            break
        now = max(now, d)
        lag.on_timer(now)
        frames = lag.frames_to_send(now)
        seen.append((now, frames, lag.pop_intents(), lag.pop_notices(), lag.next_deadline()))
        if echo_partner:
            for name, _ in frames:
                lag.receive(name, pdu_for(lag, name, 0, 0x3F, True), now)
                seen.append((now, lag.frames_to_send(now), lag.pop_intents()))
    seen.append(lag.to_dict())
    return seen


def build(history: list[tuple[Any, ...]]) -> tuple[Lag, float]:
    lag = Lag(LagSettings("PortChannel7", SYS_A, 3))
    now = 1000.0
    for op in [("add", 0, True), ("add", 1, True), *history]:
        now, _ = apply(lag, op, now)
    return lag, now


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=st.lists(ops, max_size=40),
    future=st.lists(ops, max_size=15),
    echo_partner=st.booleans(),
)
def test_round_trip_is_lossless_and_behaviour_identical(history, future, echo_partner):
    lag, now = build(history)
    lag.pop_intents()
    d = lag.to_dict()
    wire = json.loads(json.dumps(d))
    assert wire == d
    restored = Lag.from_dict(wire)
    assert restored.to_dict() == d
    # A restored Lag says nothing until its own machines decide something.
    assert restored.pop_intents() == []
    assert restored.carrier == lag.carrier
    for name in lag.ports:
        assert restored.would_send(name) == lag.would_send(name)
        assert restored.port_view(name) == lag.port_view(name)
        assert restored.port_enabled(name) == lag.port_enabled(name)
    assert restored.next_deadline() == lag.next_deadline()
    # Same future events -> same frames, intents and deadlines.
    t1 = t2 = now
    for op in future:
        t1, out1 = apply(lag, op, t1)
        t2, out2 = apply(restored, op, t2)
        assert out1 == out2
    # And the next 10 simulated seconds of their own timers agree too.
    assert follow(lag, t1, 10.0, echo_partner) == follow(restored, t2, 10.0, echo_partner)


@settings(max_examples=100, deadline=None)
@given(history=st.lists(ops, max_size=30))
def test_restored_lag_is_quiet_without_events(history):
    lag, now = build(history)
    lag.pop_intents()
    lag.frames_to_send(now)
    restored = Lag.from_dict(json.loads(json.dumps(lag.to_dict())))
    restored.on_timer(now)
    assert restored.pop_intents() == []
    assert restored.frames_to_send(now) == []


def negotiated() -> tuple[Lag, float]:
    history: list[tuple[Any, ...]] = [("pdu", 0, 0, 0x3F, True), ("pdu", 1, 0, 0x3F, True)] * 2
    history += [("advance", 0.4)]
    return build(history)


def test_top_level_layout():
    lag, now = negotiated()
    d = lag.to_dict()
    assert set(d) == {
        "format", "settings", "carrier", "ports", "retry", "oneshots", "notices", "warm",
    }  # fmt: skip
    assert d["warm"] is None
    assert d["format"] == 1 and d["carrier"] is True
    assert d["settings"]["system"] == "02:00:00:00:00:aa"
    port = d["ports"]["e0"]
    assert port["rx_state"] == "current" and port["mux_state"] == "collecting_distributing"
    assert port["selected"] == "selected" and port["enabled"] is True
    assert port["actor"]["state"] == 0x3F and port["partner"]["system"] == "02:00:00:00:00:bb"
    assert bytes.fromhex(port["last_tx_frame"]) == lag.would_send("e0")
    assert bytes.fromhex(port["last_rx_frame"])[12:14] == b"\x88\x09"  # the partner's PDU
    assert set(port["counters"]) == {
        "rx_pdus",
        "tx_pdus",
        "rx_bad",
        "rx_truncated",
        "rx_marker",
        "rx_marker_response",
        "tx_marker_response",
        "rx_loopback",
        "down_count",
    }


def test_standby_takes_over_phase_continuous():
    """The handover in miniature: the copy sends its first PDU at last_tx + period."""
    active, now = negotiated()
    last = active.to_dict()["ports"]["e0"]["last_tx"]
    standby = Lag.from_dict(json.loads(json.dumps(active.to_dict())))
    assert standby.next_deadline() == pytest.approx(last + 1.0)
    assert standby.frames_to_send(last + 0.999) == []
    first = dict(standby.frames_to_send(last + 1.0))
    assert first["e0"] == active.would_send("e0") and first.keys() == {"e0", "e1"}
    assert standby.pop_intents() == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("ports"),
        lambda d: d.update(format=99),
        lambda d: d["ports"]["e0"].update(rx_state="bogus"),
        lambda d: d["ports"]["e0"].update(enabled=False),
        lambda d: d["ports"]["e0"].update(link_up="yes"),
        lambda d: d["ports"]["e1"].update(port_number=1),
        lambda d: d["settings"].update(system="nonsense"),
        lambda d: d["ports"]["e0"]["partner"].update(key=70000),
    ],
)
def test_from_dict_rejects_malformed_state(mutate):
    lag, _ = negotiated()
    d = json.loads(json.dumps(lag.to_dict()))
    mutate(d)
    with pytest.raises(ValueError):
        Lag.from_dict(d)


def test_rate_limit_hold_survives_round_trip():
    lag, now = negotiated()
    for _ in range(6):  # a disagreeing partner: NTT on every PDU
        now += 0.05
        lag.receive("e0", pdu_for(lag, "e0", 0, 0x3F, echo=False), now)
        lag.frames_to_send(now)
    lag.pop_intents()  # pending outputs are not state
    d = lag.to_dict()
    assert d["ports"]["e0"]["tx_hold"] is not None and d["ports"]["e0"]["ntt"] is True
    restored = Lag.from_dict(json.loads(json.dumps(d)))
    assert follow(lag, now, 10.0, True) == follow(restored, now, 10.0, True)

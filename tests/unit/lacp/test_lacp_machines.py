"""LACP machines driven with a fake clock: two Lags back to back, or a Lag fed crafted PDUs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.lacp_wire import (
    PORTS,
    STEADY_FAST,
    SYS_A,
    SYS_B,
    SYS_C,
    Wire,
    make_lag,
    negotiated_pair,
    state_of,
)

from teamd_shim.lacp import (
    ACTIVITY,
    AGGREGATION,
    COLLECTING,
    DEFAULTED,
    DISTRIBUTING,
    EXPIRED,
    RETRY_VERSION,
    SYNC,
    TIMEOUT,
    Carrier,
    Lacpdu,
    Lag,
    LagSettings,
    LoopbackDetected,
    Marker,
    PortEnable,
    PortInfo,
    decode_frame,
    decode_marker,
    encode_frame,
    encode_marker,
    parse_mac,
)

# ---- negotiation -----------------------------------------------------------------------


def test_back_to_back_reach_collecting_distributing():
    a, b = make_lag(SYS_A, 1), make_lag(SYS_B, 2)
    wire = Wire(a, b)
    wire.run_until(5.0)
    for lag, other in ((a, b), (b, a)):
        assert lag.carrier
        for name in PORTS:
            view = lag.port_view(name)
            assert view.state == "current"
            assert view.mux_state == "collecting_distributing"
            assert view.selected and view.aggregator_id == 1
            assert lag.port_enabled(name)
            assert view.actor.to_dict()["state"] == STEADY_FAST
            # The partner record is the other side's actor block, exactly.
            assert view.partner == other.port_view(name).actor
        intents = lag.pop_intents()
        assert set(intents) == {
            PortEnable("PortChannel1", "e0", True),
            PortEnable("PortChannel1", "e1", True),
            Carrier("PortChannel1", True),
        }
        assert len(intents) == 3
    # Cold start advertises Sync=0 and no partner; steady state 0x3F echoed exactly.
    first = decode_frame(wire.log[0][3])[1]
    assert not first.actor.state & SYNC and first.actor.state & EXPIRED
    assert first.partner.system == bytes(6)
    last = decode_frame(a.would_send("e0"))[1]
    assert last.actor.state == STEADY_FAST and last.partner.state == STEADY_FAST
    # Negotiation needs only a handful of PDUs (rate limit never exceeded).
    assert len(wire.tx_times("a", "e0", since=0.0)) <= 8


def test_negotiates_with_captured_ovs_frames():
    """A Lag whose identity matches the capture accepts OVS's negotiated PDUs at once."""
    capture = json.loads((Path(__file__).parents[2] / "data" / "ovs_lacpdus.json").read_text())
    lag = Lag(LagSettings("PortChannel1", parse_mac(capture["our_system"]), capture["our_key"]))
    for entry in capture["negotiated"]:
        num = decode_frame(bytes.fromhex(entry["hex"]))[1].partner.port
        lag.add_port(f"s{num}", port_number=num, mac=bytes(5) + bytes([num]), link_up=True,
                     now=0.0)  # fmt: skip
    for entry in capture["negotiated"]:
        num = decode_frame(bytes.fromhex(entry["hex"]))[1].partner.port
        assert lag.receive(f"s{num}", bytes.fromhex(entry["hex"]), 0.1)
    assert lag.carrier
    for name in lag.ports:
        frame = dict(lag.frames_to_send(0.1)).get(name) or lag.would_send(name)
        pdu = decode_frame(frame)[1]
        assert pdu.actor.state == STEADY_FAST
        assert pdu.partner.system == SYS_OVS and pdu.partner.system_priority == 65534
    # An unnegotiated OVS PDU (no Sync, zero partner block) does not enable anything.
    lag2 = Lag(LagSettings("PortChannel1", SYS_A, 5))
    lag2.add_port("s1", port_number=1, mac=bytes(6), link_up=True, now=0.0)
    for entry in capture["unnegotiated"]:
        lag2.receive("s1", bytes.fromhex(entry["hex"]), 0.5)
    assert not lag2.port_enabled("s1") and not lag2.carrier


SYS_OVS = bytes.fromhex("0200000000bb")


# ---- timers ----------------------------------------------------------------------------


def test_fast_partner_gets_one_pdu_per_second_drift_free():
    wire = negotiated_pair()
    start = wire.now
    wire.run_until(start + 100.0)
    times = wire.tx_times("a", "e0", since=start + 0.001)
    assert len(times) == 100
    gaps = {round(b - a, 9) for a, b in zip(times, times[1:], strict=False)}
    assert gaps == {1.0}
    # Drift-free: still on the phase of the first periodic send.
    assert (times[-1] - times[0]) == pytest.approx(99.0, abs=1e-9)


def test_slow_partner_gets_one_pdu_per_30_seconds():
    wire = negotiated_pair(fast_rate=False)  # b asks for slow, a still asks for fast
    start = wire.now
    wire.run_until(start + 120.0)
    a_times = wire.tx_times("a", "e0", since=start + 0.001)
    b_times = wire.tx_times("b", "e0", since=start + 0.001)
    assert {round(y - x, 9) for x, y in zip(a_times, a_times[1:], strict=False)} == {30.0}
    assert len(a_times) == 4
    assert {round(y - x, 9) for x, y in zip(b_times, b_times[1:], strict=False)} == {1.0}
    assert decode_frame(wire.b.would_send("e0"))[1].actor.state == STEADY_FAST & ~TIMEOUT
    assert wire.a.carrier and wire.b.carrier


def expire_and_default(fast_rate: bool, timeout: float) -> None:
    wire = Wire(make_lag(SYS_A, 1, fast_rate=fast_rate), make_lag(SYS_B, 2))
    wire.run_until(100.0)
    a = wire.a
    a.pop_intents()
    last_rx = max(wire.tx_times("b", "e0"))
    wire.cut.add("b")  # a no longer hears b
    wire.run_until(last_rx + timeout - 0.01)
    assert a.port_view("e0").state == "current" and a.carrier and a.pop_intents() == []
    wire.run_until(last_rx + timeout)
    assert a.port_view("e0").state == "expired"
    assert not a.port_enabled("e0") and not a.carrier
    assert a.pop_intents() == [
        PortEnable("PortChannel1", "e0", False),
        PortEnable("PortChannel1", "e1", False),
        Carrier("PortChannel1", False),
    ]
    pdu = decode_frame(a.would_send("e0"))[1]
    assert pdu.actor.state & EXPIRED and pdu.actor.state & SYNC  # still ATTACHED
    assert not pdu.actor.state & (COLLECTING | DISTRIBUTING)
    assert not pdu.partner.state & SYNC and pdu.partner.state & TIMEOUT
    assert a.next_deadline() == pytest.approx(last_rx + timeout + 1.0)  # next periodic
    wire.run_until(last_rx + timeout + 2.99)
    assert a.port_view("e0").state == "expired"
    wire.run_until(last_rx + timeout + 3.0)
    view = a.port_view("e0")
    assert view.state == "defaulted" and not view.selected
    assert view.partner.to_dict()["system"] == "00:00:00:00:00:00"
    assert decode_frame(a.would_send("e0"))[1].actor.state & DEFAULTED
    assert a.pop_intents() == []  # already disabled
    # The partner comes back: re-selected and enabled again.
    wire.cut.clear()
    wire.run_until(wire.now + 3.0)
    assert a.carrier and a.port_enabled("e0") and a.port_enabled("e1")


def test_partner_expiry_fast():
    expire_and_default(fast_rate=True, timeout=3.0)


def test_partner_expiry_slow():
    expire_and_default(fast_rate=False, timeout=90.0)


def test_on_timer_far_late_reschedules_from_now():
    wire = negotiated_pair()
    a = wire.a
    nxt = a.next_deadline()
    a.on_timer(nxt + 1.5)  # missed more than one period
    assert a.port_view("e0").state == "current"
    sent = a.frames_to_send(nxt + 1.5)
    assert [p for p, _ in sent] == ["e0", "e1"]
    assert a.to_dict()["ports"]["e0"]["next_tx"] == pytest.approx(nxt + 2.5)


# ---- partner changes -------------------------------------------------------------------


def crafted(lag: Lag, port: str, *, system: bytes = SYS_B, key: int = 2,
            state: int = STEADY_FAST, echo: bool = True) -> bytes:  # fmt: skip
    """A PDU from a partner with the given identity, echoing what `lag` would send."""
    ours = decode_frame(lag.would_send(port))[1].actor
    actor = PortInfo(65535, system, key, 255, PORTS[port], state)
    partner = ours if echo else PortInfo(0, bytes(6), 0, 0, 0, 0)
    return encode_frame(system[:4] + b"\x20" + bytes([PORTS[port]]), Lacpdu(actor, partner))


@pytest.mark.parametrize("change", [{"system": SYS_C}, {"key": 9}])
def test_partner_identity_change_deselects_and_reselects(change):
    wire = negotiated_pair()
    a = wire.a
    a.pop_intents()
    t = wire.now + 0.5
    assert a.receive("e0", crafted(a, "e0", **change), t)
    # e0 left the old aggregator (disabled), and e1 keeps the carrier up; a new aggregator
    # with one port does not beat the established one with two: e0 is STANDBY.
    assert a.pop_intents() == [PortEnable("PortChannel1", "e0", False)]
    view = a.port_view("e0")
    # e0 is an aggregator of its own now; the established one keeps its id (it is not
    # renumbered because its lowest-numbered port left)
    assert view.selection == "standby" and view.aggregator_id == 2
    assert a.port_view("e1").aggregator_id == 1
    assert not decode_frame(a.would_send("e0"))[1].actor.state & SYNC
    assert a.carrier
    # The partner moves e1 too: the new aggregator is selected and e0 is enabled again; e1
    # detached and re-attached inside that one receive, which nets out to no change at all
    assert a.receive("e1", crafted(a, "e1", **change), t + 0.1)
    assert a.pop_intents() == [PortEnable("PortChannel1", "e0", True)]
    assert a.carrier and a.port_enabled("e0") and a.port_enabled("e1")
    assert a.port_view("e0").partner.to_dict()["key"] == change.get("key", 2)


def test_identity_change_on_single_port_lag_reselects_with_aggregate_wait():
    lag = Lag(LagSettings("PortChannel1", SYS_A, 1, aggregate_wait=2.0))
    lag.add_port("e0", port_number=1, mac=bytes(6), link_up=True, now=0.0)
    lag.receive("e0", crafted(lag, "e0"), 0.1)
    assert lag.port_view("e0").mux_state == "waiting"
    assert lag.next_deadline() == pytest.approx(1.0)  # periodic TX comes first
    lag.on_timer(2.0)
    assert lag.port_view("e0").mux_state == "waiting"
    lag.receive("e0", crafted(lag, "e0"), 2.05)
    lag.on_timer(2.1)
    assert lag.port_view("e0").mux_state == "collecting_distributing"
    assert lag.pop_intents() == [
        PortEnable("PortChannel1", "e0", True),
        Carrier("PortChannel1", True),
    ]
    lag.receive("e0", crafted(lag, "e0", system=SYS_C), 3.0)
    assert lag.pop_intents() == [
        PortEnable("PortChannel1", "e0", False), Carrier("PortChannel1", False)]  # fmt: skip
    assert lag.port_view("e0").mux_state == "waiting"
    lag.receive("e0", crafted(lag, "e0", system=SYS_C), 4.0)
    assert not lag.carrier
    lag.on_timer(5.0)
    lag.receive("e0", crafted(lag, "e0", system=SYS_C), 5.0)
    assert lag.carrier and lag.port_view("e0").partner.to_dict()["system"] == "02:00:00:00:00:cc"


def test_unmatched_partner_sync_is_not_trusted():
    lag = Lag(LagSettings("PortChannel1", SYS_A, 1))
    lag.add_port("e0", port_number=1, mac=bytes(6), link_up=True, now=0.0)
    lag.frames_to_send(0.0)
    lag.receive("e0", crafted(lag, "e0", echo=False), 0.2)
    view = lag.port_view("e0")
    assert view.selected and view.mux_state == "attached"
    assert not view.partner.to_dict()["state"] & SYNC and not lag.carrier
    assert [p for p, _ in lag.frames_to_send(0.2)] == ["e0"]  # update_NTT answers at once
    lag.receive("e0", crafted(lag, "e0"), 0.3)
    assert lag.carrier


def test_partner_sync_drop_disables_port():
    wire = negotiated_pair()
    a = wire.a
    a.pop_intents()
    a.receive("e1", crafted(a, "e1", state=STEADY_FAST & ~SYNC), wire.now + 0.2)
    assert a.pop_intents() == [PortEnable("PortChannel1", "e1", False)]
    assert a.carrier and a.port_view("e1").mux_state == "attached"


# ---- links and min_links -----------------------------------------------------------------


def test_min_links_two_with_one_port_down():
    wire = Wire(make_lag(SYS_A, 1, min_links=2), make_lag(SYS_B, 2))
    wire.run_until(5.0)
    a = wire.a
    assert a.carrier
    a.pop_intents()
    t = wire.now + 0.3
    a.set_link("e1", False, t)
    wire.b.set_link("e1", False, t)
    assert a.pop_intents() == [
        PortEnable("PortChannel1", "e1", False), Carrier("PortChannel1", False)]  # fmt: skip
    view = a.port_view("e1")
    assert view.state == "disabled" and view.counters["down_count"] == 1 and not view.selected
    # No TX on a down port, no periodic timer for it.
    wire.run_until(t + 10.0)
    assert wire.tx_times("a", "e1", since=t) == []
    assert wire.tx_times("a", "e0", since=t)
    assert not a.carrier and a.port_enabled("e0")
    t2 = wire.now
    a.set_link("e1", True, t2)
    wire.b.set_link("e1", True, t2)
    assert a.port_view("e1").state == "expired"
    wire.run_until(t2 + 2.0)
    assert a.carrier and a.port_enabled("e1")
    assert wire.tx_times("a", "e1", since=t2)[0] == t2  # link up sends at once
    assert a.pop_intents() == [
        PortEnable("PortChannel1", "e1", True), Carrier("PortChannel1", True)]  # fmt: skip


def test_link_down_drops_received_pdus_and_port_comes_back():
    wire = negotiated_pair()
    a = wire.a
    a.set_link("e0", False, wire.now)
    assert not a.receive("e0", crafted(a, "e0"), wire.now + 0.1)
    assert a.port_view("e0").counters["rx_pdus"] == wire.a.port_view("e0").counters["rx_pdus"]
    assert a.frames_to_send(wire.now + 0.1) == []
    a.set_link("e0", True, wire.now + 0.2)
    # Expired with the old partner kept: selected and ATTACHED (Sync=1) at once.
    assert a.port_view("e0").mux_state == "attached"
    assert a.receive("e0", crafted(a, "e0"), wire.now + 0.3)
    assert a.port_enabled("e0")


def test_remove_port_disables_without_goodbye():
    wire = negotiated_pair()
    a = wire.a
    a.pop_intents()
    a.remove_port("e0", wire.now)
    assert a.pop_intents() == [PortEnable("PortChannel1", "e0", False)]
    assert a.ports == ("e1",) and a.carrier
    assert all(p != "e0" for p, _ in a.frames_to_send(wire.now))
    with pytest.raises(KeyError):
        a.port_view("e0")
    a.remove_port("e1", wire.now)
    assert a.pop_intents() == [
        PortEnable("PortChannel1", "e1", False), Carrier("PortChannel1", False)]  # fmt: skip


def test_add_port_rejects_duplicates():
    lag = make_lag(SYS_A, 1)
    with pytest.raises(ValueError):
        lag.add_port("e0", port_number=7, mac=bytes(6), link_up=True, now=0.0)
    with pytest.raises(ValueError):
        lag.add_port("e7", port_number=1, mac=bytes(6), link_up=True, now=0.0)


# ---- robustness ------------------------------------------------------------------------


def test_malformed_frame_changes_nothing():
    wire = negotiated_pair()
    a = wire.a
    a.pop_intents()
    t = wire.now + 0.1
    before = a.to_dict()
    good = crafted(a, "e0")
    for bad in (b"", good[:100], good[:16] + b"\x13" + good[17:], b"\xff" * 300):
        assert a.receive("e0", bad, t) is False
    not_a_marker = good[:14] + b"\x02" + good[15:]  # subtype 2 with a LACPDU's TLVs
    assert a.receive("e0", not_a_marker, t) is False
    after = a.to_dict()
    c0, c1 = before["ports"]["e0"]["counters"], after["ports"]["e0"]["counters"]
    assert (c1["rx_bad"], c1["rx_truncated"]) == (c0["rx_bad"] + 3, c0["rx_truncated"] + 2)
    assert c1["rx_marker"] == 0
    after["ports"]["e0"]["counters"] = before["ports"]["e0"]["counters"]
    assert after == before
    assert a.pop_intents() == [] and a.frames_to_send(t) == []


def test_ntt_sends_are_rate_limited_to_three_per_second():
    wire = negotiated_pair()
    a = wire.a
    t0 = a.next_deadline()
    assert a.frames_to_send(t0)  # periodic send at t0
    sent = [t0]
    t = t0
    for _ in range(12):  # a partner that keeps disagreeing: NTT every 50 ms
        t += 0.05
        a.receive("e0", crafted(a, "e0", echo=False), t)
        if any(p == "e0" for p, _ in a.frames_to_send(t)):
            sent.append(t)
    assert len(sent) == 3
    hold = a.to_dict()["ports"]["e0"]["tx_hold"]
    assert hold == pytest.approx(t0 + 1.0)
    assert a.next_deadline() == pytest.approx(t0 + 1.0)
    a.on_timer(hold)
    assert [p for p, _ in a.frames_to_send(hold) if p == "e0"] == ["e0"]
    # Any window of one second holds at most three.
    for x in sent:
        assert sum(1 for y in sent if x <= y < x + 1.0) <= 3


def test_ntt_sends_do_not_move_the_periodic_schedule():
    wire = negotiated_pair()
    a = wire.a
    nxt = a.next_deadline()
    a.receive("e0", crafted(a, "e0", echo=False), nxt - 0.4)
    assert [p for p, _ in a.frames_to_send(nxt - 0.4)] == ["e0"]
    assert a.next_deadline() == nxt
    assert a.to_dict()["ports"]["e0"]["next_tx"] == nxt
    assert sorted(p for p, _ in a.frames_to_send(nxt)) == ["e0", "e1"]


def test_partner_timeout_change_switches_rate():
    wire = negotiated_pair()
    a = wire.a
    t = wire.now + 0.3
    a.receive("e0", crafted(a, "e0", state=STEADY_FAST & ~TIMEOUT), t)
    assert a.to_dict()["ports"]["e0"]["next_tx"] == pytest.approx(t + 30.0)
    a.frames_to_send(t)
    a.receive("e0", crafted(a, "e0"), t + 5)
    assert a.to_dict()["ports"]["e0"]["next_tx"] == pytest.approx(t + 6)
    assert "e0" in dict(a.frames_to_send(t + 5))  # PERIODIC_TX at once


def test_passive_pair_is_silent_and_passive_answers_active():
    a = make_lag(SYS_A, 1, active=False)
    b = make_lag(SYS_B, 2, active=False)
    wire = Wire(a, b)
    wire.run_until(20.0)
    assert wire.log == [] and a.next_deadline() is None
    b.update_settings(replace(b.settings, active=True), 20.0)
    wire.run_until(25.0)
    assert a.carrier and b.carrier
    assert not state_of(a.would_send("e0")) & ACTIVITY


def test_update_settings_key_change_and_min_links():
    wire = negotiated_pair()
    a = wire.a
    a.pop_intents()
    t = wire.now + 0.1
    a.update_settings(replace(a.settings, min_links=3), t)
    assert a.pop_intents() == [Carrier("PortChannel1", False)]
    a.update_settings(replace(a.settings, min_links=2), t)
    assert a.pop_intents() == [Carrier("PortChannel1", True)]
    a.update_settings(replace(a.settings, key=77), t)
    assert not a.carrier
    sent = dict(a.frames_to_send(t))
    assert decode_frame(sent["e0"])[1].actor.key == 77
    wire.now = t
    wire.run_until(t + 3.0)
    assert a.carrier and wire.b.port_view("e0").partner.to_dict()["key"] == 77
    with pytest.raises(ValueError):
        a.update_settings(replace(a.settings, name="PortChannel2"), t)


def test_would_send_has_no_side_effects_and_matches_next_frame():
    wire = negotiated_pair()
    a = wire.a
    before = a.to_dict()
    frame = a.would_send("e1")
    assert a.to_dict() == before
    nxt = a.next_deadline()
    assert dict(a.frames_to_send(nxt))["e1"] == frame
    assert a.to_dict()["ports"]["e1"]["last_tx_frame"] == frame.hex()
    assert a.to_dict()["ports"]["e1"]["last_tx"] == nxt


def test_refresh_sends_on_every_port_and_restarts_the_schedule() -> None:
    from teamd_shim.lacp import Lag, LagSettings

    a = Lag(LagSettings(name="PortChannel0001", system=bytes.fromhex("020000000001"), key=1))
    b = Lag(LagSettings(name="PortChannel0001", system=bytes.fromhex("020000000002"), key=2))
    now = 100.0
    for lag, mac in ((a, "0200000000a"), (b, "0200000000b")):
        for i in range(2):
            lag.add_port(
                f"p{i}", port_number=i + 1, mac=bytes.fromhex(mac + str(i)), link_up=True, now=now
            )
    for _ in range(60):  # back to back until both negotiate
        for x, y in ((a, b), (b, a)):
            for port, frame in x.frames_to_send(now):
                y.receive(port, frame, now)
        now += 0.1
    assert a.carrier and b.carrier
    t = now + 0.37
    out = a.refresh(t)
    assert sorted(p for p, _ in out) == ["p0", "p1"]
    assert a.next_deadline() is not None
    # the next periodic send on every port is exactly one period after the refresh
    assert a.frames_to_send(t + 0.999) == []
    due = a.frames_to_send(t + 1.0)
    assert sorted(p for p, _ in due) == ["p0", "p1"]


def test_goodbye_clears_sync_collecting_distributing_and_the_partner_lets_go_at_once():
    wire = negotiated_pair()
    a, b = wire.a, wire.b
    assert b.port_enabled("e0")
    before = a.would_send("e0")
    bye = a.goodbye("e0")
    assert bye is not None
    s = state_of(bye)
    assert not s & (SYNC | COLLECTING | DISTRIBUTING) and s & AGGREGATION and s & ACTIVITY
    # everything else is the frame we would have sent: same partner echo, same identity
    assert decode_frame(bye)[1].partner == decode_frame(before)[1].partner
    assert a.would_send("e0") == before  # goodbye() changes nothing by itself
    b.pop_intents()
    b.receive("e0", bye, wire.now)
    assert not b.port_enabled("e0") and b.port_enabled("e1")  # the partner stops using it now
    assert PortEnable("PortChannel1", "e0", False) in b.pop_intents()


def test_no_goodbye_from_a_port_that_cannot_transmit():
    wire = negotiated_pair()
    wire.a.set_link("e0", False, wire.now)
    assert wire.a.goodbye("e0") is None


def test_a_send_the_socket_refused_is_not_recorded_as_transmitted():
    wire = negotiated_pair()
    a = wire.a
    before = a.to_dict()["ports"]["e0"]
    t = before["last_tx"] + 1.0  # the next periodic PDU is due
    out = dict(a.frames_to_send(t))
    assert "e0" in out and a.to_dict()["ports"]["e0"]["last_tx"] == t
    assert a.send_failed("e0", out["e0"], t)
    after = a.to_dict()["ports"]["e0"]
    # the last TX instant and bytes are what a handover hands on: the PDU that really left
    assert (after["last_tx"], after["last_tx_frame"]) == (
        before["last_tx"],
        before["last_tx_frame"],
    )
    assert after["counters"]["tx_pdus"] == before["counters"]["tx_pdus"]
    assert not a.send_failed("e0", out["e0"], t)  # only once, and only for that frame


def test_admin_down_says_goodbye_then_is_silent_and_admin_up_renegotiates():
    wire = negotiated_pair()
    a, b = wire.a, wire.b
    a.pop_intents()
    n0 = len(wire.log)
    down = replace(a.settings, admin_up=False)
    a.update_settings(down, wire.now)
    assert a.pop_intents() == [
        PortEnable("PortChannel1", "e0", False),
        PortEnable("PortChannel1", "e1", False),
        Carrier("PortChannel1", False),
    ]
    t0 = wire.now
    wire.run_until(t0 + 5.0)
    sent = [(t, p, f) for t, s, p, f in wire.log[n0:] if s == "a"]
    assert sorted(p for _, p, _ in sent) == ["e0", "e1"]  # one goodbye per port, then silence
    assert all(not state_of(f) & (SYNC | COLLECTING | DISTRIBUTING) for _, _, f in sent)
    assert not b.port_enabled("e0") and not b.port_enabled("e1") and not b.carrier
    assert not a.carrier and a.next_deadline() is not None  # still receiving, timers alive
    a.update_settings(replace(down, admin_up=True), wire.now)
    wire.run_until(wire.now + 5.0)
    assert a.port_enabled("e0") and a.port_enabled("e1") and a.carrier
    assert b.port_enabled("e0") and b.port_enabled("e1")


def test_admin_state_crosses_a_handover_and_a_snapshot_without_it_is_malformed():
    """Nothing has shipped that wrote snapshots without it: no fallback guesses 'up'."""
    wire = negotiated_pair()
    a = wire.a
    a.update_settings(replace(a.settings, admin_up=False), wire.now)
    d = a.to_dict()
    assert Lag.from_dict(d).settings.admin_up is False
    del d["settings"]["admin_up"]
    with pytest.raises(ValueError, match="malformed LAG state"):
        Lag.from_dict(d)


# ---- conformance (hld §12) -------------------------------------------------------------


def test_loopback_pdus_are_dropped_counted_reported_once_and_never_select() -> None:
    lag = make_lag(SYS_A, 1)
    # e0 and e1 cabled to each other: each hears the other's PDUs, actor system = ours
    now = 0.0
    for _ in range(50):
        for port, frame in lag.frames_to_send(now):
            other = "e1" if port == "e0" else "e0"
            assert lag.receive(other, frame, now) is False
        now += 0.1
        lag.on_timer(now)
    for p in ("e0", "e1"):
        view = lag.port_view(p)
        assert view.loopback is True and view.counters["rx_loopback"] > 3
        assert view.selected is False and view.state in ("expired", "defaulted")
    assert not lag.carrier
    assert sorted(lag.pop_notices(), key=lambda n: n.port) == [
        LoopbackDetected("PortChannel1", "e0"),
        LoopbackDetected("PortChannel1", "e1"),
    ]
    # a real partner afterwards clears the flag; a new loop would be reported again
    lag.receive("e0", crafted(lag, "e0"), now)
    assert lag.port_view("e0").loopback is False
    assert lag.pop_notices() == []
    assert Lag.from_dict(lag.to_dict()).port_view("e1").loopback is True


def marker_information(port: int = 7, tid: int = 0x01020304) -> bytes:
    """A Marker Information PDU from SYS_B (the layout is pinned in test_lacp_pdu.py)."""
    return encode_marker(SYS_B, Marker(1, port, SYS_B, tid))


def test_marker_information_gets_a_response_with_the_same_fields_rate_limited() -> None:
    wire = negotiated_pair()
    a = wire.a
    t = wire.now + 0.01
    a.frames_to_send(t)
    before = a.to_dict()["ports"]["e0"]
    assert a.receive("e0", marker_information(), t) is False  # not a LACPDU
    sent = a.frames_to_send(t)
    out = [(p, f) for p, f in sent if f[14] == 2]
    assert len(out) == 1 and out[0][0] == "e0"
    resp = decode_marker(out[0][1])
    assert (resp.tlv_type, resp.requester_port, resp.requester_system, resp.transaction_id) == (
        2,
        7,
        SYS_B,
        0x01020304,
    )
    frame = out[0][1]
    assert len(frame) == 124 and frame[:6] == bytes.fromhex("0180c2000002")
    assert frame[6:12] == SYS_A[:4] + bytes([0x10, 1])  # from e0's own MAC
    # a flood: at most three answers in any second, the rest counted and dropped
    answered = 1
    for i in range(20):
        a.receive("e0", marker_information(tid=i), t + 0.01 * (i + 1))
        batch = a.frames_to_send(t + 0.01 * (i + 1))
        sent += batch
        answered += sum(1 for _, f in batch if f[14] == 2)
    assert answered == 3
    view = a.port_view("e0")
    assert view.counters["rx_marker"] == 21 and view.counters["tx_marker_response"] == 3
    # the LACP side is untouched: a marker response is never our last PDU (which a handover
    # hands on), and answering moved no LACP timer
    after = a.to_dict()["ports"]["e0"]
    lacpdus = [f for p, f in sent if p == "e0" and f[14] == 1]
    assert after["last_tx_frame"] == (lacpdus[-1].hex() if lacpdus else before["last_tx_frame"])
    if not lacpdus:
        assert (after["last_tx"], after["next_tx"], after["tx_times"]) == (
            before["last_tx"],
            before["next_tx"],
            before["tx_times"],
        )
    assert decode_frame(bytes.fromhex(after["last_tx_frame"]))


def test_a_marker_response_not_sent_in_time_is_dropped_not_flushed_later() -> None:
    """A standby shadows the owner (receives, never transmits): its queue must not pile up."""
    wire = negotiated_pair()
    a = wire.a
    t = wire.now
    for i in range(3):
        a.receive("e1", marker_information(tid=i), t + i * 2.0)
    sent = a.frames_to_send(t + 5.5)
    assert [f for _, f in sent if f[14] == 2] == []  # all older than a period: dropped
    assert a.port_view("e1").counters["tx_marker_response"] == 0


def test_truncated_and_bad_markers_are_counted_apart() -> None:
    lag = make_lag(SYS_A, 1)
    good = marker_information()
    lag.receive("e0", good[:60], 0.1)
    lag.receive("e0", good[:16] + b"\x09" + good[17:], 0.1)  # TLV type 9
    view = lag.port_view("e0")
    c = view.counters
    assert (c["rx_truncated"], c["rx_bad"], c["rx_marker"]) == (1, 1, 0)


def test_a_partner_that_says_individual_is_not_aggregated_with_others() -> None:
    lag = make_lag(SYS_A, 1)
    individual = STEADY_FAST & ~AGGREGATION
    t = 0.1
    for _ in range(3):
        lag.receive("e0", crafted(lag, "e0", state=individual), t)
        lag.receive("e1", crafted(lag, "e1", state=individual), t)
        t += 0.5
    views = {p: lag.port_view(p) for p in ("e0", "e1")}
    # same partner system and key, but each is an aggregator of its own: one is selected
    assert views["e0"].aggregator_id != views["e1"].aggregator_id
    assert sorted(v.selection for v in views.values()) == ["selected", "standby"]


def test_selection_is_stable_when_a_larger_aggregator_appears() -> None:
    lag = Lag(LagSettings("PortChannel1", SYS_A, 1))
    for name, num in (("e0", 1), ("e1", 2), ("e2", 3)):
        lag.add_port(
            name, port_number=num, mac=SYS_A[:4] + bytes([0x10, num]), link_up=True, now=0.0
        )

    def pdu(port: str, system: bytes, num: int) -> bytes:
        ours = decode_frame(lag.would_send(port))[1].actor
        actor = PortInfo(65535, system, 2, 255, num, STEADY_FAST)
        return encode_frame(system[:5] + bytes([num]), Lacpdu(actor, ours))

    t = 0.1
    for _ in range(4):  # e0 alone with partner B: selected, carrier up
        lag.receive("e0", pdu("e0", SYS_B, 1), t)
        t += 0.3
    assert lag.carrier and lag.port_view("e0").selection == "selected"
    lag.pop_intents()
    for _ in range(4):  # e1 and e2 hear partner C: a larger group, kept on STANDBY
        lag.receive("e0", pdu("e0", SYS_B, 1), t)
        lag.receive("e1", pdu("e1", SYS_C, 2), t)
        lag.receive("e2", pdu("e2", SYS_C, 3), t)
        t += 0.3
    assert lag.port_view("e0").selection == "selected"
    assert [lag.port_view(p).selection for p in ("e1", "e2")] == ["standby", "standby"]
    assert PortEnable("PortChannel1", "e0", False) not in lag.pop_intents()
    # the selected aggregator loses its last port: only then the larger one takes over
    lag.set_link("e0", False, t)
    for _ in range(4):
        lag.receive("e1", pdu("e1", SYS_C, 2), t)
        lag.receive("e2", pdu("e2", SYS_C, 3), t)
        t += 0.3
    assert [lag.port_view(p).selection for p in ("e1", "e2")] == ["selected", "selected"]
    assert lag.carrier


def test_refresh_stays_within_three_pdus_per_second() -> None:
    wire = negotiated_pair()
    a = wire.a
    t = a.next_deadline()
    assert a.frames_to_send(t)
    for i in (1, 2):  # two answers to a disagreeing partner: the window holds 3 now
        a.receive("e0", crafted(a, "e0", echo=False), t + 0.01 * i)
        assert any(p == "e0" for p, _ in a.frames_to_send(t + 0.01 * i))
    out = a.refresh(t + 0.05)
    assert [p for p, _ in out] == ["e1"]  # e0's window is full: its refresh is held
    port = a.to_dict()["ports"]["e0"]
    assert port["ntt"] is True and port["tx_hold"] == pytest.approx(t + 1.0)
    assert [p for p, _ in a.frames_to_send(t + 1.0)] == ["e0"]


# ---- SONiC retry-count extension (hld §13.7) -------------------------------------------


def retry_pdu(
    lag: Lag, port: str, count: int, partner_count: int = 3, *, system: bytes = SYS_B
) -> bytes:
    """A 0xf1 PDU from a SONiC partner announcing `count`, echoing what `lag` sends."""
    ours = decode_frame(lag.would_send(port))[1].actor
    actor = PortInfo(65535, system, 2, 255, PORTS[port], STEADY_FAST)
    return encode_frame(
        system[:4] + b"\x20" + bytes([PORTS[port]]),
        Lacpdu(actor, ours, 0, RETRY_VERSION, count, partner_count),
    )


@pytest.mark.parametrize(("count", "expiry"), [(3, 3.0), (5, 5.0), (10, 10.0)])
def test_partner_retry_count_scales_the_receive_timeout(count: int, expiry: float) -> None:
    lag = make_lag(SYS_A, 1)
    t = 0.1
    for _ in range(4):
        for p in ("e0", "e1"):
            lag.receive(p, retry_pdu(lag, p, count), t)
        t += 1.0
    last = t - 1.0
    assert lag.carrier and lag.port_view("e0").partner_retry_count == count
    lag.on_timer(last + expiry - 0.5)  # silence: still current just before count x 1 s
    assert lag.port_view("e0").state == "current" and lag.carrier
    lag.on_timer(last + expiry + 0.001)
    assert lag.port_view("e0").state == "expired" and not lag.carrier


def test_we_answer_a_sonic_partner_in_0xf1_with_our_count_and_its_count() -> None:
    wire = negotiated_pair()
    a, b = wire.a, wire.b
    assert decode_frame(a.would_send("e0"))[1].version == 1
    b.set_retry_count(5, wire.now)  # b is a SONiC teamd told `retry-count set 5`
    wire.run_until(wire.now + 2.0)
    from_b = decode_frame(b.would_send("e0"))[1]
    assert (from_b.version, from_b.actor_retry_count, from_b.partner_retry_count) == (
        RETRY_VERSION,
        5,
        3,
    )
    from_a = decode_frame(a.would_send("e0"))[1]
    assert (from_a.version, from_a.actor_retry_count, from_a.partner_retry_count) == (
        RETRY_VERSION,
        3,
        5,
    )
    assert a.port_view("e0").partner_retry_count == 5
    # the counts are LACP state: a new owner restored from the snapshot sends the same bytes
    assert Lag.from_dict(a.to_dict()).would_send("e0") == a.would_send("e0")
    assert Lag.from_dict(b.to_dict()).would_send("e1") == b.would_send("e1")


def test_a_0xf1_probe_with_default_counts_gets_a_plain_answer() -> None:
    lag = make_lag(SYS_A, 1)
    lag.receive("e0", retry_pdu(lag, "e0", 3, 3), 0.1)
    assert decode_frame(lag.would_send("e0"))[1].version == 1


def test_a_plain_pdu_resets_the_partner_count_only_60_s_after_the_last_0xf1() -> None:
    lag = make_lag(SYS_A, 1)
    lag.receive("e0", retry_pdu(lag, "e0", 5), 0.1)
    t = 1.0
    while t < 60.0:  # lag_keepalive-style plain PDUs
        lag.receive("e0", crafted(lag, "e0"), t)
        assert lag.port_view("e0").partner_retry_count == 5, t
        t += 1.0
    lag.receive("e0", crafted(lag, "e0"), 60.2)
    assert lag.port_view("e0").partner_retry_count == 3
    assert decode_frame(lag.would_send("e0"))[1].version == 1


def test_a_retry_count_below_three_is_dropped() -> None:
    lag = make_lag(SYS_A, 1)
    assert lag.receive("e0", retry_pdu(lag, "e0", 2), 0.1) is False
    view = lag.port_view("e0")
    assert view.counters["rx_bad"] == 1 and view.state == "expired"
    assert view.partner_retry_count == 3


def test_a_count_set_at_run_time_lapses_after_count_x_3_min_or_when_a_port_expires() -> None:
    wire = negotiated_pair()
    a = wire.a
    t0 = wire.now
    a.set_retry_count(5, t0)
    assert a.own_retry_count == 5
    assert decode_frame(a.would_send("e0"))[1].actor_retry_count == 5
    with pytest.raises(ValueError):
        a.set_retry_count(2, t0)
    wire.run_until(t0 + 5 * 180.0 + 1.0)
    assert a.own_retry_count == 3 and a.carrier
    a.set_retry_count(6, wire.now)
    wire.cut.add("b")
    wire.run_until(wire.now + 3.5)  # b silent: a's ports expire, the set count ends
    assert a.own_retry_count == 3


def test_the_feature_switched_off_means_plain_lacp() -> None:
    lag = make_lag(SYS_A, 1)
    lag.set_retry_count_feature(False, 0.0)
    assert lag.receive("e0", retry_pdu(lag, "e0", 5), 0.1)
    view = lag.port_view("e0")
    assert view.partner_retry_count == 3 and view.state == "current"
    assert decode_frame(lag.would_send("e0"))[1].version == 1
    with pytest.raises(ValueError, match="disabled"):
        lag.set_retry_count(5, 0.2)
    assert Lag.from_dict(lag.to_dict()).retry_count_feature is False


def test_configured_retry_count_is_announced_on_selected_ports() -> None:
    wire = negotiated_pair()
    a = wire.a
    a.update_settings(replace(a.settings, retry_count=7), wire.now)
    sent = a.frames_to_send(wire.now)
    assert {p for p, _ in sent} == {"e0", "e1"}
    assert {decode_frame(f)[1].actor_retry_count for _, f in sent} == {7}
    assert LagSettings.from_dict(a.settings.to_dict()).retry_count == 7
    with pytest.raises(ValueError):
        LagSettings("x", SYS_A, 1, retry_count=2)


@pytest.mark.parametrize("change", ["key", "aggregation"])
def test_a_partner_change_is_never_disable_then_enable_within_one_receive(change: str) -> None:
    """Production settings (no aggregate wait, as stock teamd): a single-member LAG whose
    partner changes its key or goes Individual re-selects the same port at once, and the
    kernel sees no change at all; the raw machine did disable, carrier down, enable, up."""
    lag = Lag(LagSettings("PortChannel1", SYS_A, 1))
    lag.add_port("e0", port_number=1, mac=bytes.fromhex("020000001001"), link_up=True, now=0.0)
    t = 0.1
    while t < 2.0:
        lag.receive("e0", crafted(lag, "e0"), t)
        t += 0.5
    assert lag.carrier
    lag.pop_intents()
    kw = {"key": 9} if change == "key" else {"state": STEADY_FAST & ~AGGREGATION}
    lag.receive("e0", crafted(lag, "e0", **kw), t)
    raw = list(lag._intents)  # what the machines did inside that one receive
    assert raw == [
        PortEnable("PortChannel1", "e0", False),
        Carrier("PortChannel1", False),
        PortEnable("PortChannel1", "e0", True),
        Carrier("PortChannel1", True),
    ]
    assert lag.pop_intents() == []
    assert lag.carrier and lag.port_enabled("e0")
    assert lag.port_view("e0").partner.to_dict()["key"] == kw.get("key", 2)


def test_net_intents_keeps_only_real_changes() -> None:
    from teamd_shim.lacp.lag import net_intents

    off, on = PortEnable("L", "e0", False), PortEnable("L", "e0", True)
    down, up = Carrier("L", False), Carrier("L", True)
    assert net_intents([off, down, on, up]) == []
    assert net_intents([off, down, on, up, off, down]) == [off, down]
    e1 = PortEnable("L", "e1", True)
    assert net_intents([off, e1, on]) == [e1]


def test_keepalive_is_due_only_once_a_whole_period_passed_without_a_pdu() -> None:
    """What a yielded owner goes by (hld §7): periodic PDUs yes, answers to events no."""
    wire = negotiated_pair()
    a = wire.a
    t = wire.now + 0.01
    a.refresh(t)  # the yield's refresh
    assert not a.keepalive_due(t + 0.5)
    a.receive("e0", crafted(a, "e0", echo=False), t + 0.5)  # an event: NTT, not a keepalive
    assert not a.keepalive_due(t + 0.5)
    assert a.keepalive_due(t + 1.0)
    a.frames_to_send(t + 1.007)  # the keepalive left 7 ms late (a busy loop)
    assert not a.keepalive_due(t + 1.5)
    assert a.keepalive_due(t + 2.0)  # by the schedule, not by the late send's instant
    a.update_settings(replace(a.settings, admin_up=False), t + 2.0)
    a.frames_to_send(t + 2.0)
    assert not a.keepalive_due(t + 5.0)  # nothing may transmit: nothing is due


def test_a_pdu_received_at_the_keepalive_instant_does_not_hide_it() -> None:
    """receive() runs the due timers first; the keepalive must still be seen as due after it
    (before: the schedule had moved on, and a yielded owner skipped that PDU)."""
    wire = negotiated_pair()
    a = wire.a
    t = wire.now + 0.01
    a.refresh(t)
    a.receive("e0", crafted(a, "e0"), t + 1.002)  # the partner's PDU, 2 ms after ours was due
    assert a.keepalive_due(t + 1.002)
    assert {p for p, _ in a.frames_to_send(t + 1.002)} == {"e0", "e1"}
    assert not a.keepalive_due(t + 1.1)


def test_fallback_lets_a_port_with_no_lacp_partner_run_as_sonics_patch_does():
    """libteam patch 0003 (SONiC): with runner.fallback a DEFAULTED port is selectable and is
    enabled without the partner's Sync: a PortChannel facing a server without LACP comes up.
    Without fallback the same port stays down; a real partner turning up takes over as usual."""
    for fallback in (False, True):
        lag = make_lag(SYS_A, 1, fallback=fallback)
        peer = make_lag(SYS_B, 2)
        wire = Wire(lag, peer)
        wire.cut.add("b")  # a server without LACP: nothing ever arrives
        wire.run_until(10.0)
        view = lag.port_view("e0")
        assert view.state == "defaulted"
        assert view.selected is fallback, fallback
        assert lag.carrier is fallback
        # one aggregator: each DEFAULTED port is on its own, so one of them runs
        assert sum(lag.port_enabled(p) for p in PORTS) == (1 if fallback else 0)
        wire.cut.clear()  # LACP appears on the far side
        wire.run_until(wire.now + 5.0)
        assert lag.port_view("e0").state == "current"
        assert lag.carrier and all(lag.port_enabled(p) for p in PORTS)

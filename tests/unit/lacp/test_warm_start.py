"""teamd's warm start after a whole-switch warm reboot (lacp/warm_start.py, hld §6.2), on real
LACP cores with a fake clock: what a warm stop saves, and a fresh core started from it."""

from __future__ import annotations

from helpers.lacp_wire import PORTS, STEADY_FAST, SYS_A, Wire, make_lag, negotiated_pair, state_of

from teamd_shim.lacp import COLLECTING, DISTRIBUTING, SYNC, Lag
from teamd_shim.lacp.lag import Carrier, PortEnable
from teamd_shim.lacp.warm_start import WARM_START_CARRIER_TIMEOUT_S

FULL = SYNC | COLLECTING | DISTRIBUTING


def saved() -> tuple[Wire, bool, dict[str, bool], dict[str, bytes]]:
    wire = negotiated_pair()
    carrier, members, pdus = wire.a.warm_saved()
    return wire, carrier, members, pdus


def test_a_warm_stop_saves_carrier_enabled_and_the_partners_last_pdus() -> None:
    wire, carrier, members, pdus = saved()
    assert carrier is True and members == {"e0": True, "e1": True}
    assert set(pdus) == set(PORTS)
    # the partner's PDU, whole frame: its actor is the partner, its partner is us
    assert all(len(f) >= 124 and f[12:14] == b"\x88\x09" for f in pdus.values())
    assert all(state_of(f) == STEADY_FAST for f in pdus.values())


def test_the_first_pdu_after_a_warm_start_carries_the_state_the_partner_last_heard() -> None:
    _, _, members, pdus = saved()
    now = 500.0  # another boot, a later clock
    lag = make_lag(SYS_A, 1, now=now)
    lag.pop_intents()
    lag.warm_start(members, pdus, now)
    frames = dict(lag.frames_to_send(now))
    assert set(frames) == set(PORTS), "sent at once"
    assert all(state_of(f) & FULL == FULL for f in frames.values())
    intents = lag.pop_intents()
    assert [i for i in intents if isinstance(i, PortEnable)] == [
        PortEnable("PortChannel1", p, True) for p in PORTS
    ]
    assert not [i for i in intents if isinstance(i, Carrier)], "the carrier was never down"
    assert lag.carrier and not lag.warm_starting  # every saved member handled


def test_a_cold_start_instead_renegotiates_from_nothing() -> None:
    """The contrast: without the saved PDUs the first PDU says nothing of Sync or Collecting,
    which a partner takes as our side going out of sync."""
    lag = make_lag(SYS_A, 1, now=500.0)
    frames = dict(lag.frames_to_send(500.0))
    assert all(state_of(f) & FULL == 0 for f in frames.values())
    assert not lag.carrier


def test_a_member_whose_link_comes_up_later_is_restored_then_and_the_carrier_held() -> None:
    _, _, members, pdus = saved()
    now = 500.0
    lag = make_lag(SYS_A, 1, now=now, link_up=False)
    lag.warm_start(members, pdus, now)
    assert lag.carrier and lag.warm_starting  # held up: nothing enabled yet
    lag.set_link("e1", True, now + 1.0)
    assert lag.port_enabled("e1") and not lag.port_enabled("e0")
    assert lag.carrier
    lag.on_timer(now + WARM_START_CARRIER_TIMEOUT_S)  # e0 never came up: warm mode ends
    assert not lag.warm_starting and lag.carrier  # e1 enabled: min_links 1 met
    assert not [i for i in lag.pop_intents() if isinstance(i, Carrier)]


def test_warm_mode_ends_after_3_s_and_then_the_carrier_follows_the_members() -> None:
    _, _, members, pdus = saved()
    now = 500.0
    lag = make_lag(SYS_A, 1, now=now, link_up=False)
    lag.pop_intents()
    lag.warm_start(members, pdus, now)
    assert lag.next_deadline() == now + WARM_START_CARRIER_TIMEOUT_S
    lag.on_timer(now + WARM_START_CARRIER_TIMEOUT_S - 0.01)
    assert lag.carrier
    lag.on_timer(now + WARM_START_CARRIER_TIMEOUT_S)
    assert not lag.carrier and lag.pop_intents() == [Carrier("PortChannel1", False)]


def test_a_port_leaving_current_forgets_its_saved_pdu() -> None:
    """teamd keeps the last PDU only while the port is current: an expired partner must not
    be restored after the reboot."""
    wire = negotiated_pair()
    wire.cut.add("b")
    wire.run_until(wire.now + 3.5)  # the partner silent: e0, e1 expire
    _, members, pdus = wire.a.warm_saved()
    assert pdus == {} and members == {"e0": False, "e1": False}


def test_the_warm_window_survives_a_handover_snapshot() -> None:
    _, _, members, pdus = saved()
    now = 500.0
    lag = make_lag(SYS_A, 1, now=now, link_up=False)
    lag.warm_start(members, pdus, now)
    copy = Lag.from_dict(lag.to_dict())
    assert copy.warm_starting and copy.next_deadline() == lag.next_deadline()
    copy.set_link("e0", True, now + 0.5)
    assert copy.port_enabled("e0")

"""The pure READY rules (roles/readiness.py) on real LACP cores and a fake clock."""

from __future__ import annotations

from helpers.lacp_wire import CFG, PORTS, SYS_A, SYS_B, SYS_C, Wire, make_lag, partner_frame

from teamd_shim.model.running_lag import RunningLag
from teamd_shim.roles import readiness
from teamd_shim.roles.readiness import HEARD_S
from teamd_shim.roles.replay import Received


def converged(partner_system: bytes = SYS_B):
    a, b = make_lag(SYS_A, 1, fast_rate=True), make_lag(partner_system, 2, fast_rate=True)
    Wire(a, b).run_until(5.0)
    return a, b


def heard(partner, at: float, ports=tuple(PORTS)) -> list[Received]:
    return [Received(p, partner_frame(partner, p, 5.5), at, 10 + i) for i, p in enumerate(ports)]


def test_the_same_partner_heard_recently_on_every_port_is_ready() -> None:
    a, b = converged()
    assert readiness.own_view_differs({"PortChannel1": a.to_dict()}, heard(b, 9.5), 10.0) == []


def test_a_port_we_did_not_hear_or_heard_too_long_ago_is_named() -> None:
    a, b = converged()
    rx = heard(b, 10.0 - HEARD_S - 0.1, ports=("e1",)) + heard(b, 9.9, ports=("e0",))
    assert readiness.own_view_differs({"PortChannel1": a.to_dict()}, rx, 10.0) == [
        "PortChannel1/e1: not heard the partner ourselves yet"
    ]


def test_another_partner_than_the_active_hears_is_named() -> None:
    a, _b = converged(SYS_B)
    _a2, other = converged(SYS_C)
    out = readiness.own_view_differs({"PortChannel1": a.to_dict()}, heard(other, 9.5), 10.0)
    assert len(out) == 2 and "we hear partner 02:00:00:00:00:cc" in out[0]


def test_slow_rate_lags_are_not_judged_by_our_own_view() -> None:
    a, b = make_lag(SYS_A, 1, fast_rate=False), make_lag(SYS_B, 2, fast_rate=False)
    Wire(a, b).run_until(5.0)
    assert readiness.own_view_differs({"PortChannel1": a.to_dict()}, [], 10.0) == []


def test_our_pdus_must_be_the_actives() -> None:
    a, _b = converged()
    own = make_lag(SYS_A, 1, fast_rate=True)  # never converged: its PDUs differ
    running = {"PortChannel1": RunningLag(cfg=CFG, lacp=own)}
    out = readiness.pdu_mismatches(running, {"PortChannel1": a.to_dict()})
    assert out == [f"PortChannel1/{p}: our PDU differs from the active's" for p in PORTS]


def test_a_stale_or_empty_snapshot_is_not_ready() -> None:
    running = {"PortChannel1": RunningLag(cfg=CFG, lacp=make_lag(SYS_A, 1))}
    assert readiness.snapshot_problems(running, 8.5, 10.0) == []
    assert readiness.snapshot_problems(running, 7.0, 10.0) == ["active's state is 3.0 s old"]
    assert readiness.snapshot_problems({}, 10.0, 10.0) == ["no LAG configured yet"]


def test_the_detail_names_at_most_three_problems() -> None:
    assert readiness.Readiness.of([]) == readiness.Readiness(True, readiness.READY_DETAIL)
    assert readiness.Readiness.of(list("abcd")).detail == "a; b; c"


def test_a_final_snapshot_with_this_boxs_identity_and_the_partner_we_hear_is_adoptable() -> None:
    a, b = converged()
    running = {"PortChannel1": RunningLag(cfg=CFG, lacp=make_lag(SYS_A, 1, fast_rate=True))}
    snap = {"PortChannel1": a.to_dict(), "PortChannel9": a.to_dict()}  # 9: removed meanwhile
    assert readiness.adoption_problems(running, snap, heard(b, 9.5), 10.0) == []


def test_a_forged_actor_identity_or_partner_is_named() -> None:
    a, b = converged()
    running = {"PortChannel1": RunningLag(cfg=CFG, lacp=make_lag(SYS_A, 1, fast_rate=True))}
    forged = a.to_dict()
    forged["settings"] = {**forged["settings"], "system": "02:00:00:00:00:66", "key": 7}
    out = readiness.adoption_problems(running, {"PortChannel1": forged}, heard(b, 9.5), 10.0)
    assert any("actor system 02:00:00:00:00:66 is not this box's" in p for p in out), out
    assert any("actor key 7" in p for p in out), out
    _a2, other = converged(SYS_C)
    out = readiness.adoption_problems(
        running, {"PortChannel1": a.to_dict()}, heard(other, 9.5), 10.0
    )
    assert out and "we hear partner 02:00:00:00:00:cc" in out[0]
    broken = {"PortChannel1": {"format": "nonsense"}}
    assert "unreadable state" in readiness.adoption_problems(running, broken, [], 10.0)[0]


def test_a_final_snapshot_from_before_a_partner_change_is_adoptable() -> None:
    """The partner changed its info after the yield: the snapshot names the partner from
    before, which we heard too, a moment earlier; the takeover replays the newer frame."""
    a, b = converged(SYS_B)
    _a2, other = converged(SYS_C)
    running = {"PortChannel1": RunningLag(cfg=CFG, lacp=make_lag(SYS_A, 1, fast_rate=True))}
    rx = heard(b, 9.0) + heard(other, 9.5)
    assert readiness.adoption_problems(running, {"PortChannel1": a.to_dict()}, rx, 10.0) == []

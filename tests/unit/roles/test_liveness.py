"""A hot standby's judgement of the owner and its promotion rules (hld §14), with a fake clock;
the role machine's promotion row; a promoted core's schedule taken from the wire."""

from __future__ import annotations

import pytest
from helpers.lacp_wire import SYS_A, SYS_B, Wire, make_lag

from teamd_shim.lacp import FAST_PERIODIC
from teamd_shim.roles.liveness import (
    HANG_AFTER_S,
    Beat,
    Loss,
    Target,
    Watch,
    plan_promotion,
)
from teamd_shim.roles.machine import Confirmed, Event, Role, RoleMachine

T = Target(name="teamd", ctl="/x.sock", pid=10, pidns="pid:[1]", starttime="5", epoch=3)


def beat(role: str = "active", final: bool = False) -> Beat:
    return Beat(name="teamd", role=role, epoch=3, final_written=final, pid=10)


def test_a_hang_is_silence_beyond_the_threshold_counted_from_the_last_heartbeat() -> None:
    w = Watch(T, now=100.0)
    assert not w.hung(100.0 + HANG_AFTER_S)  # no heartbeat yet: counted from the connection
    assert w.hung(100.0 + HANG_AFTER_S + 0.01)
    w.beat(beat(), 100.3)
    assert w.left_in(100.4) == pytest.approx(HANG_AFTER_S - 0.1)
    assert not w.hung(100.3 + HANG_AFTER_S) and w.hung(100.31 + HANG_AFTER_S)
    assert w.last_role == "active"
    w.beat(beat("yielded", final=True), 100.5)
    assert w.last_role == "yielded"


def test_a_heartbeat_line_round_trips() -> None:
    b = Beat(name="teamd", role="yielded", epoch=3, final_written=True, pid=10, t=12.5)
    assert Beat.from_json(b.to_json()) == b


def test_the_last_sign_of_life_is_the_last_heartbeats_send_time() -> None:
    w = Watch(T, now=100.0)
    assert w.last_seen == 100.0  # none yet: when we connected
    w.beat(Beat(name="teamd", role="active", epoch=3, final_written=False, pid=10, t=100.2), 100.21)
    assert w.last_seen == 100.2


def plan(loss: Loss = Loss.DIED, **kw: object):  # type: ignore[no-untyped-def]
    args = {
        "ready": True,
        "ready_detail": "",
        "last_role": "active",
        "final_written": False,
        "redis_up": True,
        "can_kill": True,
        **kw,
    }
    return plan_promotion(loss, **args)  # type: ignore[arg-type]


def test_a_death_with_redis_moves_the_epoch_then_kills_then_promotes() -> None:
    p = plan()
    assert p.promote and p.cas and p.kill and not p.from_final


def test_a_standby_that_is_not_ready_never_promotes() -> None:
    p = plan(ready=False, ready_detail="not heard the partner ourselves yet")
    assert not p.promote and "not READY (not heard the partner" in p.why


def test_a_hang_outside_our_pid_namespace_is_fenced_by_the_epoch_alone() -> None:
    # a paused container cannot be killed from here: the moved epoch fences it (the owner's
    # self-fence: woken, it confirms with Redis before sending or writing anything)
    p = plan(Loss.HUNG, can_kill=False)
    assert p.promote and p.cas and not p.kill and "self-fence" in p.why
    assert plan(Loss.DIED, can_kill=False).promote  # a death needs no kill


def test_redis_down_certain_death_promotes_without_the_epoch() -> None:
    p = plan(Loss.DIED, redis_up=False)
    assert p.promote and not p.cas and "certain death" in p.why
    p = plan(Loss.HUNG, redis_up=False)
    assert p.promote and p.kill and not p.cas  # killed first: then it is a death
    assert not plan(Loss.HUNG, redis_up=False, can_kill=False).promote  # possible hang


def test_redis_down_and_a_yielded_owner_lost_is_not_promoted_on() -> None:
    # a takeover may have moved the epoch before redis went away
    assert not plan(redis_up=False, last_role="yielded", final_written=True).promote


def test_a_yielded_owner_lost_is_taken_over_from_its_final_snapshot() -> None:
    p = plan(last_role="yielded", final_written=True)
    assert p.promote and p.from_final and p.cas
    assert not plan(last_role="standby").promote


def test_the_promotion_row_takes_the_epoch_and_waits_for_first_pdus() -> None:
    m = RoleMachine(Role.STANDBY)
    assert m.handle(Event.PROMOTED, 5.0, epoch=8, ports=frozenset({"e1"})) == []
    assert m.role is Role.ACTIVE and m.epoch == 8 and m.owns_dataplane and m.confirming
    assert m.note_tx("e1", 5.5) == [Confirmed()]


def converged():  # type: ignore[no-untyped-def]
    a, b = make_lag(SYS_A, 1, fast_rate=True), make_lag(SYS_B, 2, fast_rate=True)
    Wire(a, b).run_until(5.0)
    return a


def test_a_promoted_core_sends_one_period_after_the_last_pdu_the_wire_showed() -> None:
    a = converged()
    port = a.ports[0]
    ours = a.to_dict()["ports"][port]["last_tx"]
    wire_at = ours + 0.4  # the dead owner sent once more after the snapshot we restored
    assert a.adopt_wire_tx(port, wire_at, a.would_send(port))
    # without the wire, the restored schedule would have sent at ours + 1 s
    assert port not in [p for p, _ in a.frames_to_send(wire_at + FAST_PERIODIC - 0.001)]
    assert port in [p for p, _ in a.frames_to_send(wire_at + FAST_PERIODIC)]


def test_a_wire_pdu_older_than_our_record_changes_nothing() -> None:
    a = converged()
    port = a.ports[0]
    d = a.to_dict()["ports"][port]
    assert not a.adopt_wire_tx(port, d["last_tx"] - 0.5, a.would_send(port))


def test_a_wire_pdu_that_differs_from_ours_makes_us_send_at_once() -> None:
    a = converged()
    port = a.ports[0]
    other = bytearray(a.would_send(port))
    other[-20] ^= 0xFF
    assert a.adopt_wire_tx(port, 5.4, bytes(other))
    assert port in [p for p, _ in a.frames_to_send(5.41)]

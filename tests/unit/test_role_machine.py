"""The role machine with a fake clock (hld §6, §7, §9): every row, and the failure matrix."""

from __future__ import annotations

import pytest
from teamd_shim.role_machine import (
    AUTO_RESUME_S,
    RETIRE_WHEN_SUPERSEDED_S,
    TRANSITIONS,
    CompareAndSetSelf,
    Event,
    Exit,
    IllegalTransition,
    ResumeLocal,
    Role,
    RoleMachine,
)


def yielded(now: float = 10.0, epoch: int = 4) -> RoleMachine:
    m = RoleMachine(Role.ACTIVE, epoch)
    assert m.handle(Event.YIELD, now) == []
    assert m.handle(Event.FINAL_WRITTEN, now + 0.01) == []
    return m


def test_plain_handover_old_side_is_superseded_then_retired() -> None:
    m = yielded()
    assert m.role is Role.YIELDED and m.final_written
    assert m.next_deadline() == pytest.approx(10.01 + AUTO_RESUME_S)
    assert m.on_timer(10.5) == []  # not yet
    assert m.on_timer(10.01 + AUTO_RESUME_S) == [CompareAndSetSelf(4)]
    assert m.handle(Event.SUPERSEDED, 10.8) == []  # the standby holds the epoch
    assert m.superseded and not m.transmits(keepalive_due=True)
    assert m.handle(Event.RETIRE, 11.0) == [Exit()]  # the orchestrator's retire
    assert m.role is Role.RETIRED and m.next_deadline() is None


def test_nobody_took_over_auto_resume_wins_the_epoch() -> None:
    m = yielded()
    assert m.on_timer(11.0) == [CompareAndSetSelf(4)]
    assert m.handle(Event.RESUMED, 11.01, epoch=5) == [ResumeLocal()]
    assert m.role is Role.ACTIVE and m.epoch == 5 and m.owns_dataplane


def test_superseded_and_never_told_retires_by_itself() -> None:
    m = yielded()
    m.on_timer(11.0)
    m.handle(Event.SUPERSEDED, 11.0)
    assert m.next_deadline() == pytest.approx(11.0 + RETIRE_WHEN_SUPERSEDED_S)
    assert m.on_timer(11.0 + RETIRE_WHEN_SUPERSEDED_S) == [Exit()]
    assert m.role is Role.RETIRED


def test_final_snapshot_not_written_resumes_at_once() -> None:
    m = RoleMachine(Role.ACTIVE, 2)
    m.handle(Event.YIELD, 1.0)
    assert m.handle(Event.FINAL_FAILED, 1.1) == [ResumeLocal()]
    assert m.role is Role.ACTIVE and m.epoch == 2 and m.next_deadline() is None


def test_redis_unreachable_keeps_the_periodic_pdus_and_waits() -> None:
    """PDU liveness: the yielded owner keeps its due PDUs going while nothing is decided."""
    m = yielded()
    assert m.transmits(keepalive_due=True) and not m.transmits(keepalive_due=False)
    assert not m.owns_dataplane
    m.on_timer(11.0)
    assert m.handle(Event.UNREACHABLE, 13.0) == []
    assert m.role is Role.YIELDED and m.transmits(keepalive_due=True)
    # the orchestrator's forced resume once Redis answers again
    assert m.handle(Event.RESUMED, 14.0, epoch=6) == [ResumeLocal()]
    assert m.role is Role.ACTIVE and m.epoch == 6


def test_rollback_resume_cancels_the_auto_resume() -> None:
    m = yielded()
    assert m.handle(Event.RESUMED, 10.2, epoch=5) == [ResumeLocal()]
    assert m.next_deadline() is None and m.on_timer(20.0) == []


def test_standby_takes_over_and_owns() -> None:
    m = RoleMachine(Role.STANDBY)
    assert not m.transmits(keepalive_due=True) and not m.owns_dataplane
    assert m.handle(Event.TAKEN_OVER, 5.0, epoch=7) == []
    assert m.role is Role.ACTIVE and m.epoch == 7 and m.transmits(keepalive_due=False)


def test_a_stale_answer_after_resuming_changes_nothing() -> None:
    m = yielded()
    m.handle(Event.RESUMED, 10.2, epoch=5)
    for late in (Event.SUPERSEDED, Event.UNREACHABLE, Event.RESUMED, Event.AUTO_RESUME_DUE):
        assert m.handle(late, 10.3) == []
        assert m.role is Role.ACTIVE and m.epoch == 5


@pytest.mark.parametrize(("role", "event"), [
    (Role.ACTIVE, Event.RETIRE),  # an active never retires: yield first
    (Role.STANDBY, Event.YIELD),
    (Role.RETIRED, Event.YIELD),
    (Role.YIELDED, Event.YIELD),
    (Role.RETIRED, Event.TAKEN_OVER),
    (Role.ACTIVE, Event.TAKEN_OVER),
])
def test_illegal_transitions_raise_naming_what_is_legal(role: Role, event: Event) -> None:
    m = RoleMachine(role, 1)
    with pytest.raises(IllegalTransition, match=f"{event.value} is not legal for a {role.value}"):
        m.handle(event, 0.0)
    assert m.role is role


def test_every_row_is_reachable_and_leads_to_a_role() -> None:
    for (role, event), after in TRANSITIONS.items():
        m = RoleMachine(role, 1)
        if role is Role.YIELDED:
            m = yielded(epoch=1)
        m.handle(event, 100.0, epoch=2)
        assert m.role is after, (role, event)
        assert m.history[-1][1:] == (role, event, after)

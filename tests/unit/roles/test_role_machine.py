"""The role machine with a fake clock (hld §6, §7, §9): every row, and the failure matrix."""

from __future__ import annotations

from pathlib import Path

import pytest

from teamd_shim.roles.machine import (
    AUTO_RESUME_S,
    RETIRE_WHEN_SUPERSEDED_S,
    SHADOW_EVERY_S,
    STALL_S,
    TRANSITIONS,
    CompareAndSetSelf,
    ConfirmAlive,
    Confirmed,
    Event,
    Exit,
    IllegalTransition,
    PublishShadow,
    ResumeAfterStall,
    ResumeLocal,
    Role,
    RoleMachine,
    WriteFinal,
)


def yielded(now: float = 10.0, epoch: int = 4) -> RoleMachine:
    m = RoleMachine(Role.ACTIVE, epoch)
    assert m.handle(Event.YIELD, now) == [WriteFinal()]
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
    assert m.handle(Event.TAKEN_OVER, 5.0, epoch=7, ports=frozenset({"e1", "e2"})) == []
    assert m.role is Role.ACTIVE and m.epoch == 7 and m.transmits(keepalive_due=False)
    assert m.confirming and not m.confirmed and m.takeover_at == 5.0
    assert m.note_tx("e1", 5.9) == []
    assert m.note_tx("e1", 5.95) == []  # a second PDU on a port changes nothing
    assert m.note_tx("e2", 6.0) == [Confirmed()]
    assert m.confirmed and not m.confirming
    assert m.confirmation is not None and m.confirmation.first_tx == {"e1": 5.9, "e2": 6.0}
    assert m.note_tx("e2", 6.1) == []  # once


def test_takeover_with_nothing_able_to_transmit_is_confirmed_at_once() -> None:
    m = RoleMachine(Role.STANDBY)
    assert m.handle(Event.TAKEN_OVER, 5.0, epoch=7) == [Confirmed()]


def test_a_port_gone_silent_is_not_waited_for() -> None:
    m = RoleMachine(Role.STANDBY)
    m.handle(Event.TAKEN_OVER, 5.0, epoch=7, ports=frozenset({"e1", "e2"}))
    assert m.note_tx("e1", 5.9) == []
    assert m.note_port_silent("e3") == []  # never awaited
    assert m.note_port_silent("e2") == [Confirmed()]
    assert m.confirmation is not None and set(m.confirmation.first_tx) == {"e1"}


def test_shadow_publishing_is_a_deadline_of_the_active_only() -> None:
    m = RoleMachine(Role.ACTIVE, 3)
    assert m.request_shadow(1.0, seconds=2.0) == [PublishShadow()]
    assert m.request_shadow(1.1, seconds=2.0) == []  # renewed, already scheduled
    assert m.next_deadline() == pytest.approx(1.0 + SHADOW_EVERY_S)
    assert m.on_timer(1.5) == [PublishShadow()]
    assert m.on_timer(2.0) == [PublishShadow()]
    assert m.on_timer(3.2) == [] and m.next_deadline() is None  # the lease (1.1 + 2) ended
    assert m.request_shadow(4.0) == [PublishShadow()]
    m.handle(Event.YIELD, 4.2)
    assert m.on_timer(4.5) == [] and m.next_deadline() is None  # a yielded one never shadows
    assert RoleMachine(Role.STANDBY).request_shadow(1.0) == []


def test_a_stale_answer_after_resuming_changes_nothing() -> None:
    m = yielded()
    m.handle(Event.RESUMED, 10.2, epoch=5)
    for late in (Event.SUPERSEDED, Event.UNREACHABLE, Event.RESUMED, Event.AUTO_RESUME_DUE):
        assert m.handle(late, 10.3) == []
        assert m.role is Role.ACTIVE and m.epoch == 5


@pytest.mark.parametrize(
    ("role", "event"),
    [
        (Role.ACTIVE, Event.RETIRE),  # an active never retires: yield first
        (Role.STANDBY, Event.YIELD),
        (Role.RETIRED, Event.YIELD),
        (Role.YIELDED, Event.YIELD),
        (Role.RETIRED, Event.TAKEN_OVER),
        (Role.ACTIVE, Event.TAKEN_OVER),
    ],
)
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


# ---- the role side of every row of the HLD failure matrix (hld §9) ---------------------------
class Epoch:
    """The owner record's compare-and-set, as the Lua script does it (pure stand-in)."""

    def __init__(self, epoch: int, owner: str) -> None:
        self.epoch, self.owner = epoch, owner

    def cas(self, expected: int, owner: str, new: str) -> int | None:
        if self.epoch != expected or owner not in ("*", self.owner):
            return None
        self.epoch, self.owner = self.epoch + 1, new
        return self.epoch


def handover_until_takeover(
    ports: frozenset[str] = frozenset({"e1", "e2"}),
) -> tuple[RoleMachine, RoleMachine, Epoch]:
    """old yields at 10.0, new wins the CAS and takes over at 10.1."""
    db = Epoch(4, "old")
    old, new = yielded(epoch=4), RoleMachine(Role.STANDBY)
    won = db.cas(4, "old", "new")
    assert new.handle(Event.TAKEN_OVER, 10.1, epoch=won, ports=ports) == []
    return old, new, db


def auto_resume(m: RoleMachine, db: Epoch, now: float, name: str = "old") -> list[object]:
    """The yielded owner's deadline and its CAS answer, as the driver runs them."""
    (cas,) = m.on_timer(now)
    assert isinstance(cas, CompareAndSetSelf)
    won = db.cas(cas.epoch, name, name)
    return list(
        m.handle(Event.RESUMED, now, epoch=won)
        if won is not None
        else m.handle(Event.SUPERSEDED, now)
    )


def refused_before_anything() -> None:
    m = RoleMachine(Role.ACTIVE, 4)  # a refused run sends the active nothing at all
    assert m.history == [] and m.owns_dataplane and m.next_deadline() is None


def standby_dies_before_ready() -> None:
    m = RoleMachine(Role.ACTIVE, 4)
    assert m.request_shadow(0.0, 5.0) == [PublishShadow()]  # ctl shadow, then the standby dies
    while (d := m.next_deadline()) is not None:
        m.on_timer(d)  # the shadow lease runs out by itself
    assert m.role is Role.ACTIVE and m.history == [] and m.shadow_until == 5.0


def standby_killed_after_takeover_before_confirmation() -> None:
    old, new, db = handover_until_takeover()
    assert new.confirming  # killed here: never confirmed
    assert auto_resume(old, db, 10.76) == []  # the standby won the epoch: superseded
    assert old.superseded and not old.transmits(keepalive_due=True)
    won = db.cas(db.epoch, "*", "old")  # kill first, then the forced resume
    assert old.handle(Event.RESUMED, 11.2, epoch=won) == [ResumeLocal()]
    assert old.role is Role.ACTIVE and old.epoch == 6 and old.next_deadline() is None
    assert old.transmits(keepalive_due=False) and not old.superseded


def standby_stopped_after_takeover() -> None:
    old, new, db = handover_until_takeover()
    won = db.cas(db.epoch, "*", "old")  # the forced resume comes before the auto-resume
    assert old.handle(Event.RESUMED, 10.5, epoch=won) == [ResumeLocal()]
    assert old.next_deadline() is None and old.on_timer(11.0) == []
    assert old.role is Role.ACTIVE and not new.confirmed


def old_killed_after_yield() -> None:
    _old, new, _db = handover_until_takeover()
    assert new.note_tx("e1", 11.0) == [] and new.note_tx("e2", 11.0) == [Confirmed()]
    assert new.role is Role.ACTIVE and new.owns_dataplane and new.confirmed


def orchestrator_killed() -> None:
    db = Epoch(4, "old")
    m = yielded(epoch=4)  # killed after SIGUSR1, before SIGRTMIN
    assert auto_resume(m, db, 10.76) == [ResumeLocal()] and m.role is Role.ACTIVE
    old, _new, db = handover_until_takeover()  # killed after SIGRTMIN
    assert auto_resume(old, db, 10.76) == []
    assert old.on_timer(10.76 + RETIRE_WHEN_SUPERSEDED_S) == [Exit()]


def redis_killed_mid_run() -> None:
    m = yielded(epoch=4)
    (cas,) = m.on_timer(10.76)
    assert m.handle(Event.UNREACHABLE, 10.8) == []  # the CAS raised: still yielded, still hot
    assert m.role is Role.YIELDED and m.transmits(keepalive_due=True) and not m.owns_dataplane
    assert m.handle(Event.RESUMED, 12.0, epoch=5) == [ResumeLocal()]  # recover, forced


def link_down_while_standby_gets_ready() -> None:
    new = RoleMachine(Role.STANDBY)  # e2 went down: only e1 can transmit, only e1 awaited
    assert new.handle(Event.TAKEN_OVER, 10.1, epoch=5, ports=frozenset({"e1"})) == []
    assert new.note_tx("e1", 11.0) == [Confirmed()]


def config_changed_during_handover() -> None:
    old, new, _db = handover_until_takeover()
    assert not old.owns_dataplane and not RoleMachine(Role.STANDBY).owns_dataplane
    assert new.note_tx("e1", 11.0) == []
    assert new.note_port_silent("e2") == [Confirmed()]  # e2 removed from CONFIG_DB


def redis_stalled() -> None:
    m = yielded(epoch=4)
    (cas,) = m.on_timer(10.76)  # the CAS hangs for 4 s: no answer, no event
    for t in (11.0, 12.0, 13.0, 14.0):
        assert m.on_timer(t) == []
        assert m.transmits(keepalive_due=True) and not m.transmits(keepalive_due=False)
    assert m.handle(Event.SUPERSEDED, 14.8) == []  # Redis answers: the standby had taken over
    assert not m.transmits(keepalive_due=True)  # from here one instance transmits


def member_link_down_mid_handover() -> None:
    _old, new, _db = handover_until_takeover()
    assert new.note_port_silent("e1") == []
    assert new.note_tx("e2", 11.0) == [Confirmed()]


def partner_changes_mid_handover() -> None:
    old, new, _db = handover_until_takeover()
    assert not old.transmits(keepalive_due=False)  # never answers an event once yielded
    assert new.transmits(keepalive_due=False)


def stale_owner_writes() -> None:
    old, new, db = handover_until_takeover()
    auto_resume(old, db, 10.76)
    assert not old.owns_dataplane and new.owns_dataplane  # the fence is epoch-if-owner


def redis_restarted_from_older_dump() -> None:
    m = RoleMachine(Role.ACTIVE, 9)
    for late in (Event.RESUMED, Event.SUPERSEDED, Event.UNREACHABLE):
        assert m.handle(late, 1.0, epoch=3) == []
    assert m.role is Role.ACTIVE and m.epoch == 9  # never moved backwards


def link_change_between_snapshot_and_takeover() -> None:
    _old, new, _db = handover_until_takeover()  # the state side: test_replay.py
    assert new.note_port_silent("e2") == []
    assert new.note_tx("e1", 11.0) == [Confirmed()]


def link_change_while_yielded_then_rollback() -> None:
    m = yielded(epoch=4)
    assert not m.owns_dataplane  # the link change is decided, not written
    assert m.handle(Event.RESUMED, 10.5, epoch=5) == [ResumeLocal()]  # ResumeLocal syncs it


FAILURE_MATRIX = {
    "Redis unreachable before a run": refused_before_anything,
    "lock held by a live run": refused_before_anything,
    "`--exec` not executable": refused_before_anything,
    "standby dies before READY": standby_dies_before_ready,
    "standby SIGKILLed after SIGRTMIN, before confirmation": (
        standby_killed_after_takeover_before_confirmation
    ),
    "standby SIGSTOPped after SIGRTMIN": standby_stopped_after_takeover,
    "old active SIGKILLed after yielding": old_killed_after_yield,
    "orchestrator SIGKILLed at any stage": orchestrator_killed,
    "Redis killed mid-run": redis_killed_mid_run,
    "a member link goes down while the standby gets READY": link_down_while_standby_gets_ready,
    "CONFIG_DB changes between the final snapshot and the takeover (a LAG added, a LAG "
    "removed)": config_changed_during_handover,
    "Redis stalled (SIGSTOP) 4 s at the yield, the takeover or the confirmation": redis_stalled,
    "member link down mid-handover": member_link_down_mid_handover,
    "partner changes its info mid-handover": partner_changes_mid_handover,
    "a stale owner writes APPL_DB": stale_owner_writes,
    "Redis restarted from an older dump loses the owner record": redis_restarted_from_older_dump,
    "link change between the final snapshot and the takeover": (
        link_change_between_snapshot_and_takeover
    ),
    "link change while yielded, then rollback": link_change_while_yielded_then_rollback,
}


def hld_failure_matrix_rows() -> list[str]:
    text = (Path(__file__).resolve().parents[3] / "hld" / "teamd-hitless-hld.md").read_text()
    section = text.split("## 9. Failure matrix", 1)[1].split("\n## ", 1)[0]
    rows = [
        line.split("|")[1].strip()
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| fault")
    ]
    return rows


def test_every_row_of_the_hld_failure_matrix_has_a_role_scenario() -> None:
    rows = hld_failure_matrix_rows()
    assert len(rows) >= 18
    assert sorted(rows) == sorted(FAILURE_MATRIX), "hld §9 and FAILURE_MATRIX disagree"


@pytest.mark.parametrize("fault", sorted(FAILURE_MATRIX))
def test_failure_matrix_row(fault: str) -> None:
    FAILURE_MATRIX[fault]()


# ---- the self-fence after a stall of our own loop (hld §14.3) --------------------------------
def test_a_stalled_active_sends_and_writes_nothing_until_redis_confirms_it() -> None:
    m = RoleMachine(Role.ACTIVE, 5)
    m.note_beat(10.0)
    assert m.check_stall(10.0 + STALL_S) == []  # not beyond the limit
    assert m.check_stall(10.0 + STALL_S + 0.01) == [ConfirmAlive(5)]
    assert m.suspect and not m.transmits(keepalive_due=True) and not m.owns_dataplane
    assert m.check_stall(11.0) == []  # asked once
    assert m.handle(Event.ALIVE_CONFIRMED, 11.0) == [ResumeAfterStall()]
    assert not m.suspect and m.transmits(keepalive_due=False) and m.owns_dataplane
    assert m.check_stall(11.0 + STALL_S) == []  # the confirmation counts as a heartbeat


def test_a_fenced_active_exits_without_touching_anything() -> None:
    m = RoleMachine(Role.ACTIVE, 5)
    m.note_beat(10.0)
    m.check_stall(12.0)
    assert m.handle(Event.FENCED, 12.01) == [Exit()]
    assert m.role is Role.RETIRED and not m.owns_dataplane and not m.transmits(True)


def test_only_an_active_judges_its_own_stalls() -> None:
    for role in (Role.STANDBY, Role.YIELDED, Role.RETIRED):
        m = RoleMachine(role, 5)
        m.note_beat(0.0)
        assert m.check_stall(100.0) == [] and not m.suspect
    assert RoleMachine(Role.ACTIVE, 5).check_stall(100.0) == []  # no heartbeat yet


def test_the_stall_limit_is_below_the_standbys_hang_limit() -> None:
    # a standby that declared us hung saw no heartbeat for HANG_AFTER_S: by then we are suspect
    from teamd_shim.roles.liveness import HANG_AFTER_S

    assert STALL_S < HANG_AFTER_S

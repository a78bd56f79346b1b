"""What the supervisor does next (hld §14.4), with a fake clock: adopt, keep one READY hot
standby, no duplicates, crash-loop back-off, cold start only when nobody can take over."""

from __future__ import annotations

import dataclasses

from orchestrator.supervise_policy import (
    BACKOFF_S,
    CRASH_LIMIT,
    PROMOTE_GRACE_S,
    READY_LIMIT_S,
    ColdStart,
    InstanceView,
    Kill,
    Observation,
    StartStandby,
    SupervisorState,
    decide,
)

ACTIVE = InstanceView("teamd", "active", ready=False, hot=False)


def sb(name: str = "teamd~s1", ready: bool = True, refused: str = "") -> InstanceView:
    return InstanceView(name, "standby", ready=ready, hot=True, promotion_refused=refused)


def obs(
    now: float, *live: InstanceView, owner: str = "teamd", owner_alive: bool = True, **kw: object
) -> Observation:
    return Observation(
        now=now,
        owner=owner,
        owner_alive=owner_alive,
        live=live,
        taken=frozenset(i.name for i in live),
        **kw,
    )  # type: ignore[arg-type]


def test_adopts_the_active_and_starts_exactly_one_standby_while_it_starts() -> None:
    st, acts = decide(obs(0.0, ACTIVE), SupervisorState(), "teamd")
    assert acts == [StartStandby("teamd~s1")] and st.standby == "teamd~s1"
    # the standby's process runs but has no record yet: nothing more is started
    st, acts = decide(obs(0.2, ACTIVE, starting=frozenset({"teamd~s1"})), st, "teamd")
    assert acts == []
    st, acts = decide(obs(1.5, ACTIVE, sb(ready=False)), st, "teamd")
    assert acts == [] and "waiting for teamd~s1" in st.note
    st, acts = decide(obs(2.0, ACTIVE, sb()), st, "teamd")
    assert acts == [] and st.standby_was_ready and "pair whole" in st.note


def test_a_restarted_supervisor_adopts_the_running_standby_and_starts_none() -> None:
    persisted = SupervisorState(standby="teamd~s4", seq=4, standby_was_ready=True)
    again = SupervisorState.from_fields(persisted.to_fields())
    assert again == persisted
    st, acts = decide(obs(50.0, ACTIVE, sb("teamd~s4")), again, "teamd")
    assert acts == [] and st.standby == "teamd~s4"
    # one it did not know of is adopted too
    st, acts = decide(obs(50.0, ACTIVE, sb("teamd~s9")), SupervisorState(), "teamd")
    assert acts == [] and st.standby == "teamd~s9"


def test_a_second_hot_standby_is_stopped() -> None:
    st, acts = decide(
        obs(0.0, ACTIVE, sb("teamd~s1", ready=False), sb("teamd~s2")),
        SupervisorState(standby="teamd~s1"),
        "teamd",
    )
    assert acts == [Kill("teamd~s1", "a second hot standby")] and st.standby == "teamd~s2"


def test_a_standby_names_no_instance_that_exists() -> None:
    st, acts = decide(
        obs(0.0, ACTIVE, InstanceView("teamd~s1", "active", False, False), owner="teamd~s1"),
        SupervisorState(),
        "teamd",
    )
    assert acts == [StartStandby("teamd~s2")]


def test_after_a_promotion_a_new_standby_is_started_and_the_promotion_recorded() -> None:
    st = SupervisorState(standby="teamd~s1", standby_was_ready=True, last_owner="teamd", seq=1)
    new_owner = InstanceView("teamd~s1", "active", ready=False, hot=True)
    promo = {"from": "teamd", "why": "died", "at": "7.0", "epoch": "3"}
    st, acts = decide(obs(7.1, new_owner, owner="teamd~s1", owner_promotion=promo), st, "teamd")
    assert acts == [StartStandby("teamd~s2")]
    assert st.last_promotion == {**promo, "to": "teamd~s1"} and st.last_owner == "teamd~s1"


def test_a_promotion_record_written_after_the_owner_moved_is_still_recorded() -> None:
    """The owner record moves at the fence; the promoted instance writes its promoted_* fields
    a few ms later. A look in between (seen in the docker tier: the container was never renamed
    teamd, then removed as a stale standby) must not lose the promotion."""
    st = SupervisorState(standby="teamd~s1", standby_was_ready=True, last_owner="teamd", seq=1)
    new_owner = InstanceView("teamd~s1", "active", ready=False, hot=True)
    st, _ = decide(obs(7.01, new_owner, owner="teamd~s1"), st, "teamd")
    assert st.last_owner == "teamd~s1" and st.last_promotion == {}
    promo = {"from": "teamd", "why": "died", "at": "7.0", "epoch": "3"}
    st, _ = decide(obs(7.2, new_owner, owner="teamd~s1", owner_promotion=promo), st, "teamd")
    assert st.last_promotion == {**promo, "to": "teamd~s1"}
    # and only once
    again, _ = decide(obs(7.4, new_owner, owner="teamd~s1", owner_promotion=promo), st, "teamd")
    assert again.last_promotion is st.last_promotion


def test_a_standby_that_keeps_dying_at_start_is_backed_off_and_said_so() -> None:
    st = SupervisorState()
    now = 0.0
    for _ in range(CRASH_LIMIT):
        st, acts = decide(obs(now, ACTIVE), st, "teamd")
        assert [type(a) for a in acts] == [StartStandby]
        now += 2.0  # died 2 s after its start, never READY
    st, acts = decide(obs(now, ACTIVE), st, "teamd")
    assert acts == [] and st.crashes == CRASH_LIMIT
    assert st.backoff_until == now + BACKOFF_S and "backing off" in st.note
    st, acts = decide(obs(now + BACKOFF_S - 1, ACTIVE), st, "teamd")
    assert acts == []
    st, acts = decide(obs(now + BACKOFF_S + 0.1, ACTIVE), st, "teamd")
    assert [type(a) for a in acts] == [StartStandby]


def test_a_healthy_standby_that_dies_is_replaced_at_once_and_counts_no_crash() -> None:
    st = SupervisorState(
        standby="teamd~s1", standby_started=0.0, standby_was_ready=True, crashes=2, seq=1
    )
    st, acts = decide(obs(100.0, ACTIVE), st, "teamd")
    assert acts == [StartStandby("teamd~s2")] and st.crashes == 0


def test_a_standby_never_ready_is_replaced() -> None:
    st = SupervisorState(standby="teamd~s1", standby_started=0.0, seq=1)
    st, acts = decide(obs(READY_LIMIT_S + 1, ACTIVE, sb(ready=False)), st, "teamd")
    assert acts == [Kill("teamd~s1", f"not READY after {READY_LIMIT_S:.0f} s")]


def test_no_owner_a_ready_standby_gets_its_grace_then_a_cold_start_says_why() -> None:
    st = SupervisorState(standby="teamd~s1", standby_was_ready=True)
    st, acts = decide(obs(10.0, sb(), owner_alive=False), st, "teamd")
    assert acts == [] and "is promoting" in st.note
    st, acts = decide(obs(10.0 + PROMOTE_GRACE_S + 0.1, sb(), owner_alive=False), st, "teamd")
    assert acts == [ColdStart("no live owner and no READY hot standby")]
    assert st.cold == "teamd" and st.cold_starts == 1 and "cold start" in st.note


def test_a_live_active_the_owner_record_does_not_name_yet_is_never_cold_started_over() -> None:
    """A standby that promoted while Redis was down: its instance record (role active) can be
    seen before its epoch reaches the owner record, which still names the dead owner. Seen in
    the integration tier: the supervisor cold-started a second active over it."""
    promoted = InstanceView("teamd~s19", "active", ready=True, hot=True)
    st = SupervisorState(standby="teamd~s19", standby_was_ready=True)
    for t in (10.0, 10.0 + PROMOTE_GRACE_S + 5.0):
        st, acts = decide(obs(t, promoted, owner="teamd~s18", owner_alive=False), st, "teamd")
        assert acts == [] and "teamd~s19 is active" in st.note, st.note


def test_no_owner_and_a_refused_promotion_cold_starts_at_once_naming_the_refusal() -> None:
    refused = sb(ready=False, refused="teamd died: not READY (no snapshot from the active yet)")
    st, acts = decide(obs(10.0, refused, owner_alive=False), SupervisorState(), "teamd")
    assert len(acts) == 1 and isinstance(acts[0], ColdStart)
    assert "not READY (no snapshot" in acts[0].why
    assert st.last_cold_start["why"] == acts[0].why
    # while it starts nothing more is started
    st, acts = decide(
        obs(10.5, refused, owner_alive=False, starting=frozenset({"teamd"})), st, "teamd"
    )
    assert acts == [] and "waiting for teamd" in st.note


def test_a_planned_restart_in_progress_is_left_alone() -> None:
    st, acts = decide(obs(0.0, ACTIVE, planned_run="20261203T1200-1"), SupervisorState(), "teamd")
    assert acts == [] and "planned restart 20261203T1200-1" in st.note
    st, acts = decide(obs(0.0, owner_alive=False, planned_run="r"), SupervisorState(), "teamd")
    assert acts == []


def test_a_field_of_another_shape_starts_that_field_afresh() -> None:
    f = dataclasses.replace(SupervisorState(crashes=2), seq=7).to_fields()
    f["crashes"] = "many"
    f["last_promotion"] = "not json"
    st = SupervisorState.from_fields(f)
    assert st.crashes == 0 and st.seq == 7 and st.last_promotion == {}


def test_a_standby_of_another_version_than_the_owner_is_replaced() -> None:
    old = InstanceView("teamd~s1", "standby", ready=True, hot=True, version="0.1.0")
    st, acts = decide(
        obs(0.0, ACTIVE, old, owner_version="0.1.1"), SupervisorState(standby="teamd~s1"), "teamd"
    )
    assert acts == [Kill("teamd~s1", "it runs version 0.1.0, the owner 0.1.1")]

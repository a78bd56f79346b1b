"""The active's judgement of an owner record that does not name it (roles/owner_guard.py),
on a fake clock."""

from __future__ import annotations

from teamd_shim.roles.owner_guard import GRACE_S, OwnerGuard, Verdict, parse_epoch

LIVE = {"epoch": "8", "role": "active"}


def rec(epoch: str, owner: str) -> dict[str, str]:
    return {"epoch": epoch, "owner": owner, "since": "1.0"}


def test_our_record_and_one_behind_us_are_ours() -> None:
    g = OwnerGuard("teamd")
    assert g.judge(7, rec("7", "teamd"), {}, False, 0.0).verdict is Verdict.OURS
    assert g.judge(7, rec("3", "teamd_bak"), {}, False, 0.0).verdict is Verdict.OURS
    assert g.judge(7, {}, {}, False, 0.0).verdict is Verdict.OURS


def test_a_live_successor_holding_the_epoch_is_a_real_replacement() -> None:
    g = OwnerGuard("teamd")
    j = g.judge(7, rec("8", "teamd_bak"), LIVE, True, 0.0)
    assert j.verdict is Verdict.SUCCESSOR


def test_a_record_nobody_holds_is_forged_only_after_the_grace() -> None:
    g = OwnerGuard("teamd")
    far = rec("1000000000000000", "ghost")
    assert g.judge(7, far, {}, False, 10.0).verdict is Verdict.SUSPECT
    assert g.judge(7, far, {}, False, 10.0 + GRACE_S - 0.01).verdict is Verdict.SUSPECT
    j = g.judge(7, far, {}, False, 10.0 + GRACE_S)
    assert j.verdict is Verdict.FORGED and "'ghost'" in j.why and "no instance record" in j.why


def test_a_successor_whose_record_catches_up_within_the_grace_is_accepted() -> None:
    g = OwnerGuard("teamd")
    assert g.judge(7, rec("8", "teamd_bak"), {"epoch": "7"}, True, 0.0).verdict is Verdict.SUSPECT
    assert g.judge(7, rec("8", "teamd_bak"), LIVE, True, 1.0).verdict is Verdict.SUCCESSOR


def test_a_live_instance_at_another_epoch_does_not_vouch_for_the_record() -> None:
    g = OwnerGuard("teamd")
    standby = {"epoch": "", "role": "standby"}
    assert g.judge(7, rec("99", "teamd_bak"), standby, True, 0.0).verdict is Verdict.SUSPECT
    assert g.judge(7, rec("99", "teamd_bak"), standby, True, GRACE_S).verdict is Verdict.FORGED


def test_a_changed_suspect_restarts_the_grace() -> None:
    g = OwnerGuard("teamd")
    g.judge(7, rec("50", "ghost"), {}, False, 0.0)
    assert g.judge(7, rec("51", "ghost"), {}, False, GRACE_S).verdict is Verdict.SUSPECT


def test_our_name_at_a_foreign_epoch_and_garbage_are_forged_at_once() -> None:
    g = OwnerGuard("teamd")
    assert g.judge(7, rec("9", "teamd"), {}, False, 0.0).verdict is Verdict.FORGED
    assert g.judge(7, rec("1e30", "ghost"), {}, False, 0.0).verdict is Verdict.FORGED
    assert g.judge(7, rec("-1", "ghost"), {}, False, 0.0).verdict is Verdict.FORGED


def test_parse_epoch() -> None:
    assert parse_epoch("0") == 0 and parse_epoch("12") == 12
    assert parse_epoch("") is None and parse_epoch("inf") is None
    assert parse_epoch(str(2**53)) is None and parse_epoch("9" * 17) is None

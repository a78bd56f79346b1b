"""SONiC's checkWarmStart decision for the teammgrd/teamsyncd rows (db/warm_restart.py)."""

from __future__ import annotations

import pytest

from teamd_shim.db.warm_restart import WarmStartDecision, WarmState, decide


@pytest.mark.parametrize(
    ("system", "teamd", "count", "expect"),
    [
        (None, None, "3", WarmStartDecision(False, 0)),  # warm restart not enabled: cold, 0
        ("false", "false", "3", WarmStartDecision(False, 0)),
        ("true", None, "3", WarmStartDecision(True, 4)),  # the system knob is enough
        (None, "true", "0", WarmStartDecision(True, 1)),  # so is teamd's
        (None, "true", None, WarmStartDecision(False, 0)),  # no row: STATE_DB flushed, cold
        (None, "true", "junk", WarmStartDecision(True, 1)),
    ],
)
def test_decide_is_check_warm_start(
    system: str | None, teamd: str | None, count: str | None, expect: WarmStartDecision
) -> None:
    assert decide(system, teamd, count) == expect


def test_states_are_swss_commons_names() -> None:
    assert [s.value for s in WarmState] == ["initialized", "restored", "replayed", "reconciled"]

"""Arguments of the control socket are bounded before anything acts on them (hld §9)."""

from __future__ import annotations

import math

import pytest

from teamd_shim.control.transport import MAX_SHADOW_S, ControlError, shadow_seconds


@pytest.mark.parametrize("bad", [math.inf, "inf", math.nan, "nan", -1, 0, 1e12, "soon", None])
def test_a_shadow_lease_that_is_not_a_finite_bounded_number_is_refused(bad: object) -> None:
    """Seen accepted before (`float()` takes inf and nan): all LAG state to STATE_DB every
    0.5 s for ever."""
    with pytest.raises(ControlError, match="nothing was changed"):
        shadow_seconds(bad)


@pytest.mark.parametrize("ok", [0.5, 30, "50", MAX_SHADOW_S])
def test_a_planned_restarts_lease_is_granted(ok: object) -> None:
    assert shadow_seconds(ok) == float(ok)  # type: ignore[arg-type]

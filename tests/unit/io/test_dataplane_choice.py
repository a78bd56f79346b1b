"""`--dataplane auto` falls back to APPL_DB only where that cannot hide a missing kernel LAG."""

from __future__ import annotations

import logging

import pytest

from teamd_shim.io import dataplane
from teamd_shim.io.dataplane import DataplaneError, NullDataplane, make_dataplane
from teamd_shim.io.dataplane import team as team_mod
from teamd_shim.io.links import LinkWatcher

PROBE_ERROR = "NetlinkError: (2, 'No such file or directory')"


@pytest.fixture
def no_team(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(team_mod, "kernel_team_probe", lambda: PROBE_ERROR)


def test_auto_on_a_sonic_box_refuses_with_the_probes_error(no_team: None) -> None:
    with pytest.raises(DataplaneError) as e:
        make_dataplane("auto", LinkWatcher(), on_sonic=True)
    assert PROBE_ERROR in str(e.value)
    assert "--dataplane appdb" in str(e.value)


def test_auto_elsewhere_falls_back_and_says_so(
    no_team: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        dp = make_dataplane("auto", LinkWatcher(), on_sonic=False)
    assert isinstance(dp, NullDataplane)
    assert dataplane.NO_TEAM_MSG in caplog.text


def test_team_refuses_anywhere_and_appdb_is_the_explicit_way(no_team: None) -> None:
    with pytest.raises(DataplaneError, match="modprobe team"):
        make_dataplane("team", LinkWatcher(), on_sonic=False)
    assert isinstance(make_dataplane("appdb", LinkWatcher(), on_sonic=True), NullDataplane)

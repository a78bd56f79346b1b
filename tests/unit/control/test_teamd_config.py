"""`teamdctl LAG config dump` (control/teamd_config.py): teammgrd's JSON for the accepted
config, served by the control socket for a running LAG and refused by name for another."""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace

import pytest
from helpers.lacp_wire import CFG, SYS_A, make_lag

from teamd_shim.control.teamd_config import teamd_config
from teamd_shim.control.transport import ControlError, ControlServer
from teamd_shim.model.running_lag import RunningLag


def test_the_config_is_teammgrds_with_the_optional_fields_only_when_set() -> None:
    assert teamd_config(CFG) == {
        "device": "PortChannel1",
        "hwaddr": "02:00:00:00:00:aa",
        "runner": {
            "active": True,
            "name": "lacp",
            "fast_rate": True,
            "tx_hash": ["eth", "ipv4", "ipv6"],
        },
        "ports": {
            "e0": {"lacp_key": 1, "link_watch": {"name": "ethtool"}},
            "e1": {"lacp_key": 1, "link_watch": {"name": "ethtool"}},
        },
    }
    slow = teamd_config(dataclasses.replace(CFG, fast_rate=False, min_links=2, members=()))
    assert slow["runner"] == {
        "active": True,
        "name": "lacp",
        "min_ports": 2,
        "tx_hash": ["eth", "ipv4", "ipv6"],
    }
    assert slow["ports"] == {}


def test_the_control_socket_serves_it_for_a_running_lag_only() -> None:
    """On main: `unknown command 'config_dump'`."""
    lag = RunningLag(cfg=CFG, lacp=make_lag(SYS_A, 1, fast_rate=True))
    server = ControlServer(SimpleNamespace(lags={"PortChannel1": lag}), "/nonexistent/x.sock")  # type: ignore[arg-type]
    got = asyncio.run(server.handle({"cmd": "config_dump", "lag": "PortChannel1"}))
    assert got == teamd_config(CFG)
    with pytest.raises(ControlError, match="no LAG 'PortChannel9' in this shim"):
        asyncio.run(server.handle({"cmd": "config_dump", "lag": "PortChannel9"}))

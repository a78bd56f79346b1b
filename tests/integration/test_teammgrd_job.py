"""What teammgrd does besides starting teamd, done by the shim (sonic-swss `cfgmgr/teammgr.cpp`,
hld §4): a member's APPL_DB PORT_TABLE `mtu` is its LAG's, and follows a runtime MTU change;
a member that leaves gets its own CONFIG_DB PORT admin_status and MTU back in PORT_TABLE;
`tpid` and `learn_mode` reach orchagent in APPL_DB LAG_TABLE. PORT_TABLE is portmgrd's hash:
the shim's fields are merged in, the others never touched.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers.lab_helpers import all_negotiated, wait_for

from swsscommon.swsscommon import ConsumerStateTable, DBConnector
from teamd_lab.lab import Lab
from teamd_lab.shim import shim_command

pytestmark = pytest.mark.integration


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = Lab(Path(tmp_path_factory.mktemp("tm")), prefix="tm")
    lab.up(2, 2, shim_cmd=shim_command(lab))
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "all bonds negotiated")
    yield lab
    lab.down()


def orchagent_view(lab: Lab, key: str) -> dict[str, str]:
    db = DBConnector.from_url("APPL_DB", lab.redis_url)
    for t in ("LAG_TABLE", "LAG_MEMBER_TABLE", "PORT_TABLE"):
        ConsumerStateTable(db, t).pops()
    return dict(lab.redis(0).hgetall(key))


def test_member_port_table_tpid_and_learn_mode_as_teammgrd(lab: Lab) -> None:
    (lag, port, _), (_, other, _) = lab.members()[0], lab.members()[1]
    other_lag = lab.lags()[1]
    other_ports = [p for lg, p, _ in lab.members() if lg == other_lag]
    # portmgrd's fields of the port, which the shim must never touch
    appl = lab.redis(0)
    appl.hset(f"PORT_TABLE:{port}", mapping={"speed": "100000", "admin_status": "up"})
    wait_for(
        lambda: orchagent_view(lab, f"PORT_TABLE:{port}").get("mtu") == "9100",
        3.0,
        "member PORT_TABLE mtu = the LAG's",
    )
    cfg = lab.redis(4)
    cfg.hset(f"PORTCHANNEL|{lag}", mapping={"mtu": "1500", "tpid": "0x9100"})
    cfg.hset(f"PORTCHANNEL|{lag}", "learn_mode", "disable")
    wait_for(
        lambda: all(
            orchagent_view(lab, f"PORT_TABLE:{p}").get("mtu") == "1500" for p in (port, other)
        ),
        3.0,
        "both members follow the LAG's new mtu",
    )
    lag_entry = orchagent_view(lab, f"LAG_TABLE:{lag}")
    assert (lag_entry["mtu"], lag_entry["tpid"], lag_entry["learn_mode"]) == (
        "1500",
        "0x9100",
        "disable",
    ), lag_entry
    assert orchagent_view(lab, f"PORT_TABLE:{port}")["speed"] == "100000"  # portmgrd's kept
    for p in other_ports:  # the other LAG's members untouched
        assert orchagent_view(lab, f"PORT_TABLE:{p}").get("mtu") == "9100"
    # the member leaves: its own PORT settings come back
    cfg.hset(f"PORT|{port}", mapping={"admin_status": "down", "mtu": "9000"})
    cfg.delete(f"PORTCHANNEL_MEMBER|{lag}|{port}")
    wait_for(
        lambda: (lambda e: (e.get("admin_status"), e.get("mtu")) == ("down", "9000"))(
            orchagent_view(lab, f"PORT_TABLE:{port}")
        ),
        3.0,
        "the released member's own admin_status and mtu in PORT_TABLE",
    )
    assert orchagent_view(lab, f"PORT_TABLE:{port}")["speed"] == "100000"
    time.sleep(0.5)
    assert not lab.redis(6).exists(f"LAG_MEMBER_TABLE|{lag}|{port}")


def test_fallback_brings_a_lag_up_facing_a_partner_without_lacp(lab: Lab) -> None:
    """SONiC's LACP fallback (libteam patch 0003), against a real partner that runs no LACP
    (the OVS bond set lacp=off): with `fallback: true` the PortChannel comes up on a member
    with no LACP partner; the LAG without it stays down, as with stock teamd."""
    (with_fb, without) = lab.lags()[0], lab.lags()[1]
    cfg, state = lab.redis(4), lab.redis(6)
    cfg.hset(f"PORTCHANNEL|{with_fb}", "fallback", "true")
    for i in (1, 2):  # the partner stops speaking LACP on both LAGs
        lab.ovs.vsctl("set", "port", f"bond{i}", "lacp=off", "bond_mode=active-backup")

    def oper(lag: str) -> str | None:
        return state.hget(f"LAG_TABLE|{lag}", "oper_status")

    # expired after 3 s, defaulted 3 s later: then fallback lets one member run
    wait_for(lambda: oper(without) == "down", 10.0, f"{without} down without LACP")
    wait_for(lambda: oper(with_fb) == "up", 12.0, f"{with_fb} up by fallback")
    selected = [
        k
        for k in state.keys(f"LAG_MEMBER_TABLE|{with_fb}|*")
        if state.hget(k, "runner.selected") == "true"
    ]
    assert len(selected) == 1, selected  # each DEFAULTED port is an aggregator of its own
    assert state.hget(f"LAG_TABLE|{with_fb}", "runner.fallback") == "true"
    assert oper(without) == "down"
    # the partner speaks LACP again: ordinary LACP takes over, every member in use
    for i in (1, 2):
        lab.ovs.vsctl("set", "port", f"bond{i}", "lacp=active", "bond_mode=balance-tcp")
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "negotiated again")

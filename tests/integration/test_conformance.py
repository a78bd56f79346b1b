"""LACP conformance against Open vSwitch and crafted partner frames (issue 9, hld §12).

Loopback: two of our own ports cabled to each other in one LAG hear PDUs with our own system id;
neither may be selected, STATE_DB says so, and the LAGs negotiated with OVS do not notice.
Marker: OVS, stock teamd and Linux bonding never send a Marker Information, so the test sends
one from the partner's side of a member link and captures our Marker Response there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab_helpers import all_negotiated, wait_for

from orchestrator.lab import netns
from orchestrator.lab.lab import Lab
from orchestrator.lab.shim import shim_command
from orchestrator.lab.slowproto import marker_information
from teamd_shim.control import request
from teamd_shim.lacp import decode_marker, parse_mac

pytestmark = pytest.mark.integration
LOOP_LAG = "PortChannel0099"


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = Lab(Path(tmp_path_factory.mktemp("cf")), prefix="cf")
    lab.up(2, 2, shim_cmd=shim_command(lab))
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "all bonds negotiated")
    time.sleep(0.5)
    yield lab
    lab.down()


def state_db(lab: Lab, key: str) -> dict[str, str]:
    return lab.redis(6).hgetall(key)


def ctl_path(lab: Lab) -> str:
    (name,) = lab.registered_shims()
    return str(lab.redis(6).hget(f"TEAMD_SHIM_INSTANCE|{name}", "ctl"))


def test_two_of_our_ports_cabled_together_are_never_selected(lab: Lab) -> None:
    stats0 = lab.ovs.lacp_stats()
    netns.create_veth(lab.dut_ns, "loopa", lab.dut_ns, "loopb")
    r = lab.redis()
    r.hset(f"PORTCHANNEL|{LOOP_LAG}", mapping={"admin_status": "up", "mtu": "9100",
                                               "min_links": "1", "fast_rate": "true"})
    for port in ("loopa", "loopb"):
        r.hset(f"PORTCHANNEL_MEMBER|{LOOP_LAG}|{port}", "NULL", "NULL")
    looped = wait_for(lambda: all(
        state_db(lab, f"LAG_MEMBER_TABLE|{LOOP_LAG}|{p}").get("runner.loopback") == "true"
        for p in ("loopa", "loopb")), 6.0, "STATE_DB runner.loopback true on both ports")
    assert looped
    time.sleep(3.5)  # long enough for an expired port to be selected if it ever would be
    for p in ("loopa", "loopb"):
        m = state_db(lab, f"LAG_MEMBER_TABLE|{LOOP_LAG}|{p}")
        assert m["runner.selected"] == "false" and m["runner.loopback"] == "true", m
        assert int(m["runner.counters.rx_loopback"]) >= 3, m
    assert state_db(lab, f"LAG_TABLE|{LOOP_LAG}")["oper_status"] == "down"
    assert lab.redis(0).hget(f"LAG_MEMBER_TABLE:{LOOP_LAG}:loopa", "status") != "enabled"
    # the LAGs with a real partner did not notice
    assert all_negotiated(lab.ovs.bond_show())
    stats1 = lab.ovs.lacp_stats()
    for bond, members in stats1.items():
        for member, c in members.items():
            before = stats0[bond][member]
            assert (c["link_expired"], c["link_defaulted"]) == (
                before["link_expired"], before["link_defaulted"]), (bond, member)
    text = (lab.workdir / "shim-active.log").read_text(errors="replace")
    assert text.count(f"{LOOP_LAG}: loopback detected on loopa") == 1, "logged once per port"


def test_marker_information_is_answered_with_a_marker_response(lab: Lab) -> None:
    lag, port, pport = lab.members()[0]
    requester = parse_mac("02:00:00:00:77:01")
    frame = marker_information(requester, 7, requester, 0xC0FFEE)
    out = subprocess.run(
        ["ip", "netns", "exec", lab.partner_ns, sys.executable, "-m",
         "orchestrator.lab.slowproto", "exchange", "--iface", pport, "--send", frame.hex(),
         "--listen-subtype", "2", "--timeout", "1.0"],
        capture_output=True, text=True, check=True, env=lab._ns_env()).stdout
    got = json.loads(out)["received"]
    assert len(got) == 1, got
    resp = bytes.fromhex(got[0]["hex"])
    m = decode_marker(resp)
    assert (m.tlv_type, m.requester_port, m.requester_system, m.transaction_id) == (
        2, 7, requester, 0xC0FFEE)
    print(f"\nmarker response {got[0]['t'] * 1000:.1f} ms after the request")
    assert got[0]["t"] < 0.5
    dump = request(ctl_path(lab), {"cmd": "state_dump", "lag": lag})
    counters = dump["ports"][port]["runner"]["counters"]
    assert counters["rx_marker"] == 1 and counters["tx_marker_response"] == 1, counters
    assert state_db(lab, f"LAG_MEMBER_TABLE|{lag}|{port}")["runner.counters.rx_marker"] == "1"
    assert all_negotiated(lab.ovs.bond_show())

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
from helpers.lab_helpers import all_negotiated, wait_for

from teamd_lab import netns
from teamd_lab.lab import Lab
from teamd_lab.shim import shim_command
from teamd_lab.slowproto import marker_information
from teamd_shim.control.transport import request
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
    r.hset(
        f"PORTCHANNEL|{LOOP_LAG}",
        mapping={"admin_status": "up", "mtu": "9100", "min_links": "1", "fast_rate": "true"},
    )
    for port in ("loopa", "loopb"):
        r.hset(f"PORTCHANNEL_MEMBER|{LOOP_LAG}|{port}", "NULL", "NULL")
    looped = wait_for(
        lambda: all(
            state_db(lab, f"LAG_MEMBER_TABLE|{LOOP_LAG}|{p}").get("runner.loopback") == "true"
            for p in ("loopa", "loopb")
        ),
        6.0,
        "STATE_DB runner.loopback true on both ports",
    )
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
                before["link_expired"],
                before["link_defaulted"],
            ), (bond, member)
    text = (lab.workdir / "shim-active.log").read_text(errors="replace")
    assert text.count(f"{LOOP_LAG}: loopback detected on loopa") == 1, "logged once per port"


def test_marker_information_is_answered_with_a_marker_response(lab: Lab) -> None:
    lag, port, pport = lab.members()[0]
    requester = parse_mac("02:00:00:00:77:01")
    frame = marker_information(requester, 7, requester, 0xC0FFEE)
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            lab.partner_ns,
            sys.executable,
            "-m",
            "teamd_lab.slowproto",
            "exchange",
            "--iface",
            pport,
            "--send",
            frame.hex(),
            "--listen-subtype",
            "2",
            "--timeout",
            "1.0",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=lab._ns_env(),
    ).stdout
    got = json.loads(out)["received"]
    assert len(got) == 1, got
    resp = bytes.fromhex(got[0]["hex"])
    m = decode_marker(resp)
    assert (m.tlv_type, m.requester_port, m.requester_system, m.transaction_id) == (
        2,
        7,
        requester,
        0xC0FFEE,
    )
    print(f"\nmarker response {got[0]['t'] * 1000:.1f} ms after the request")
    assert got[0]["t"] < 0.5
    dump = request(ctl_path(lab), {"cmd": "state_dump", "lag": lag})
    counters = dump["ports"][port]["runner"]["counters"]
    assert counters["rx_marker"] == 1 and counters["tx_marker_response"] == 1, counters
    assert state_db(lab, f"LAG_MEMBER_TABLE|{lag}|{port}")["runner.counters.rx_marker"] == "1"
    assert all_negotiated(lab.ovs.bond_show())


# ---- SONiC's retry-count extension against a crafted SONiC partner (hld §13.7) -----------

SONIC_LAG = "PortChannel0098"
SONIC_PORT = "sonic0"
WARM_RESTART = str(Path(sys.executable).parent / "warm-restart")


@pytest.fixture
def sonic_link(lab: Lab):
    """One more LAG whose only member is cabled to a namespace where a crafted SONiC teamd
    (teamd_lab.slowproto sonic-partner) plays the partner."""
    ns = f"{lab.prefix}-sonic"
    netns.create_ns(ns)
    netns.create_veth(lab.dut_ns, SONIC_PORT, ns, "sp0")
    r = lab.redis()
    r.hset(
        f"PORTCHANNEL|{SONIC_LAG}",
        mapping={"admin_status": "up", "mtu": "9100", "min_links": "1", "fast_rate": "true"},
    )
    r.hset(f"PORTCHANNEL_MEMBER|{SONIC_LAG}|{SONIC_PORT}", "NULL", "NULL")
    yield ns
    netns.delete_ns(ns)


def start_sonic_partner(lab: Lab, ns: str, count: int, duration: float) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            ns,
            sys.executable,
            "-m",
            "teamd_lab.slowproto",
            "sonic-partner",
            "--iface",
            "sp0",
            "--system",
            "02:50:00:00:00:01",
            "--retry-count",
            str(count),
            "--duration",
            str(duration),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=lab._ns_env(),
    )


def our_state(lab: Lab) -> str:
    dump = request(ctl_path(lab), {"cmd": "state_dump", "lag": SONIC_LAG}, timeout=1.0)
    return str(dump["ports"][SONIC_PORT]["runner"]["state"])


@pytest.mark.parametrize(("count", "up_for", "down_by"), [(5, 4.5, 5.5), (3, 2.5, 3.5)])
def test_a_sonic_partner_retry_count_sets_our_receive_timeout(
    lab: Lab, sonic_link: str, count: int, up_for: float, down_by: float
) -> None:
    partner = start_sonic_partner(lab, sonic_link, count, duration=6.0)
    wait_for(lambda: our_state(lab) == "current", 5.0, "our port current with the partner")
    seen: list[tuple[float, str]] = []
    while partner.poll() is None:
        seen.append((time.monotonic(), our_state(lab)))
        time.sleep(0.02)
    out, _ = partner.communicate()
    result = json.loads(out)
    last = result["last_tx"]
    while time.monotonic() < last + down_by + 0.3:
        seen.append((time.monotonic(), our_state(lab)))
        time.sleep(0.02)
    expired = [t for t, st in seen if st != "current"]
    assert expired, seen[-5:]
    took = expired[0] - last
    print(
        f"\nretry count {count}: our port left current {took:.3f} s after the partner's "
        f"last PDU (limits {up_for}..{down_by} s)"
    )
    assert up_for < took <= down_by
    assert all(st == "current" for t, st in seen if t < last + up_for)
    # we answered in the partner's own dialect: 0xf1 carrying its count, once it announced one
    answers = [h for h in result["heard"] if h["t"] > result["started"] + 2.0]
    if count != 3:
        assert answers and all(
            h["version"] == 0xF1 and h["partner_retry_count"] == count for h in answers
        ), answers
    else:  # counts at their default: plain LACP, as patched teamd answers
        assert answers and all(h["version"] == 1 for h in answers), answers
    m = state_db(lab, f"LAG_MEMBER_TABLE|{SONIC_LAG}|{SONIC_PORT}")
    assert m["runner.partner_retry_count"] == str(count), m


def test_a_handover_keeps_the_partner_retry_count(lab: Lab, sonic_link: str) -> None:
    partner = start_sonic_partner(lab, sonic_link, 5, duration=14.0)
    wait_for(lambda: our_state(lab) == "current", 5.0, "our port current with the partner")
    time.sleep(2.0)
    t_run = time.monotonic()
    p = subprocess.run(
        [WARM_RESTART, "--redis", lab.redis_url, "teamd", "--yes", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-2000:])
    t_done = time.monotonic()
    out, _ = partner.communicate(timeout=30)
    heard = json.loads(out)["heard"]
    around = [h for h in heard if t_run - 2.0 <= h["t"] <= t_done + 2.0]
    assert around and all(h["version"] == 0xF1 and h["partner_retry_count"] == 5 for h in around), (
        around
    )
    times = [h["t"] for h in heard if h["t"] > t_run - 2.0]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    print(
        f"\nhandover with retry count 5: {len(around)} PDUs around it, all 0xf1/5; largest "
        f"gap {max(gaps):.3f} s"
    )
    assert max(gaps) <= 1.1
    dump = request(ctl_path(lab), {"cmd": "state_dump", "lag": SONIC_LAG})
    assert dump["ports"][SONIC_PORT]["runner"]["partner_retry_count"] == 5


def test_ctl_state_item_get_and_set_retry_count_like_teamdctl(lab: Lab) -> None:
    from teamd_lab.shim import shim_executable

    lag = lab.lags()[0]

    def ctl(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                shim_executable(),
                "--ctl-dir",
                str(Path(ctl_path(lab)).parent),
                "ctl",
                lag,
                "state",
                "item",
                *words,
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )

    assert ctl("get", "runner.retry_count").stdout.strip() == "3"
    assert ctl("get", "runner.enable_retry_count_feature").stdout.strip() == "true"
    stats0 = lab.ovs.lacp_stats()
    done = ctl("set", "runner.retry_count", "5")
    assert done.returncode == 0 and done.stdout.strip() == "5", done
    bad = ctl("set", "runner.retry_count", "2")
    assert bad.returncode == 1 and "3..255" in bad.stderr, bad
    unknown = ctl("get", "runner.nonsense")
    assert unknown.returncode == 1 and "runner.retry_count" in unknown.stderr, unknown
    time.sleep(3.5)
    # OVS reads our 0xf1 PDUs as plain LACPDUs (hld §13.7): nothing bad, nothing expired
    assert all_negotiated(lab.ovs.bond_show())
    for bond, members in lab.ovs.lacp_stats().items():
        for member, c in members.items():
            b = stats0[bond][member]
            assert (c["rx_bad"], c["link_expired"]) == (b["rx_bad"], b["link_expired"]), member
    assert ctl("get", "runner.retry_count").stdout.strip() == "5"

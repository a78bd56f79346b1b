"""Parsers for OVS text (samples captured from the real OVS 3.1 in tests/data/ovs_*.txt),
the recorder analysis on synthetic data, and the lab's naming / CONFIG_DB plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teamd_lab import record_analysis as ra
from teamd_lab.ovs import read_member_events
from teamd_lab.ovs_text import (
    parse_bond_show,
    parse_lacp_show,
    parse_lacp_stats,
    parse_member_events,
    stats_delta,
)
from teamd_lab.topology import config_db_hashes, dut_port_mac, lag_index, plan

DATA = Path(__file__).resolve().parents[2] / "data"


def sample(name: str) -> str:
    return (DATA / name).read_text()


# -- lacp/show --------------------------------------------------------------------------------


def test_lacp_show_negotiated():
    b = parse_lacp_show(sample("ovs_lacp_show_neg.txt"))["bond1"]
    assert b["status"] == "active" and b["negotiated"] is True
    assert b["sys_id"] == "02:00:00:00:00:bb"
    assert b["sys_priority"] == 65534
    assert b["aggregation_key"] == 1
    assert b["lacp_time"] == "fast"
    assert set(b["members"]) == {"p0", "p1"}
    p0 = b["members"]["p0"]
    assert p0["status"] == "current" and p0["attached"] is True and p0["may_enable"] is True
    assert p0["port_id"] == 2 and p0["port_priority"] == 65535
    assert p0["actor"]["sys_id"] == "02:00:00:00:00:bb"
    assert p0["actor"]["key"] == 1
    assert "synchronized" in p0["actor"]["state"] and "timeout" in p0["actor"]["state"]
    assert p0["partner"] == {
        "sys_id": "02:00:00:00:d0:01",
        "sys_priority": 65535,
        "port_id": 1,
        "port_priority": 255,
        "key": 10001,
        "state": ["activity", "aggregation", "synchronized", "collecting", "distributing"],
    }


def test_lacp_show_expired_member():
    m = parse_lacp_show(sample("ovs_lacp_show_exp.txt"))["bond1"]["members"]
    assert (m["p0"]["status"], m["p0"]["attached"]) == ("current", True)
    assert (m["p1"]["status"], m["p1"]["attached"]) == ("expired", True)
    assert m["p1"]["may_enable"] is False
    # OVS forces the partner Timeout bit and clears Sync when it expires a member.
    assert "timeout" in m["p1"]["partner"]["state"]
    assert "synchronized" not in m["p1"]["partner"]["state"]
    assert "expired" in m["p1"]["actor"]["state"]


def test_lacp_show_defaulted_member_has_empty_partner():
    m = parse_lacp_show(sample("ovs_lacp_show_def.txt"))["bond1"]["members"]
    assert (m["p1"]["status"], m["p1"]["attached"]) == ("defaulted", False)
    assert m["p1"]["partner"]["state"] == []
    assert m["p1"]["partner"]["sys_id"] == "00:00:00:00:00:00"


def test_lacp_show_two_bonds_without_partner():
    d = parse_lacp_show(sample("ovs_lacp_show_two_bonds.txt"))
    assert set(d) == {"bond1", "bond2"}
    assert d["bond1"]["negotiated"] is False and d["bond1"]["status"] == "active"
    assert set(d["bond2"]["members"]) == {"p2"}
    assert all(x["status"] == "defaulted" for b in d.values() for x in b["members"].values())


def test_lacp_show_empty():
    assert parse_lacp_show("") == {}


# -- lacp/show-stats --------------------------------------------------------------------------


def test_lacp_stats_fields():
    s = parse_lacp_stats(sample("ovs_lacp_show_stats_exp.txt"))
    assert s["bond1"]["p1"] == {
        "tx_pdus": 6,
        "rx_pdus": s["bond1"]["p1"]["rx_pdus"],
        "rx_bad": 0,
        "rx_marker_request": 0,
        "link_expired": 2,
        "link_defaulted": 1,
        "carrier_changed": 0,
    }
    assert s["bond1"]["p1"]["rx_pdus"] > 0


def test_lacp_stats_two_bonds():
    s = parse_lacp_stats(sample("ovs_lacp_show_stats_two_bonds.txt"))
    assert set(s) == {"bond1", "bond2"}
    assert set(s["bond1"]) == {"p0", "p1"} and set(s["bond2"]) == {"p2"}
    # A fresh member without partner shows Link Defaulted 1 after ~3 s: normal.
    assert all(
        c["link_defaulted"] == 1 and c["rx_pdus"] == 0 and c["tx_pdus"] > 0
        for b in s.values()
        for c in b.values()
    )


def test_lacp_stats_unknown_label_is_kept():
    text = "---- b ----\n\nmember: x:\n  TX PDUs: 3\n  Some New Counter: 7\n"
    assert parse_lacp_stats(text) == {"b": {"x": {"tx_pdus": 3, "some_new_counter": 7}}}


def test_stats_delta():
    before = parse_lacp_stats(sample("ovs_lacp_show_stats_neg.txt"))
    after = parse_lacp_stats(sample("ovs_lacp_show_stats_exp.txt"))
    d = stats_delta(before, after)
    assert d["bond1"]["p1"]["link_expired"] == 2
    assert d["bond1"]["p0"]["link_expired"] == 1
    assert d["bond1"]["p0"]["carrier_changed"] == 0
    assert stats_delta({}, {"b": {"m": {"tx_pdus": 4}}}) == {"b": {"m": {"tx_pdus": 4}}}


# -- bond/show --------------------------------------------------------------------------------


def test_bond_show_negotiated():
    b = parse_bond_show(sample("ovs_bond_show_neg.txt"))["bond1"]
    assert b["lacp_status"] == "negotiated"
    assert b["bond_mode"] == "balance-tcp"
    assert b["members"] == {"p0": True, "p1": True}
    assert b["may_enable"] == {"p0": True, "p1": True}
    assert b["active_member"] == "p0"
    assert b["lacp_fallback_ab"] is False


def test_bond_show_one_disabled():
    b = parse_bond_show(sample("ovs_bond_show_exp.txt"))["bond1"]
    assert b["members"] == {"p0": True, "p1": False}
    assert b["may_enable"]["p1"] is False


def test_bond_show_configured_and_single_member_port_absent():
    d = parse_bond_show(sample("ovs_bond_show_two_bonds.txt"))
    # A one-interface LACP port is not a bond in OVS: bond/show lists only bond1.
    assert set(d) == {"bond1"}
    assert d["bond1"]["lacp_status"] == "configured"
    assert d["bond1"]["members"] == {"p0": False, "p1": False}
    assert d["bond1"]["active_member"] is None


# -- vswitchd log -----------------------------------------------------------------------------


def test_member_events_from_real_log():
    ev = parse_member_events(sample("ovs_vswitchd_log.txt"))
    assert [(e.member, e.enabled) for e in ev[:4]] == [
        ("p1", True),
        ("p0", True),
        ("p1", False),
        ("p0", False),
    ]
    assert ev[-1].member == "p1" and ev[-1].enabled is False
    assert all("link state" not in e.line for e in ev)
    assert ev[0].timestamp == "2026-11-21T14:05:38.355Z"


def test_member_events_ignore_other_lines():
    text = (
        "2026-01-01T00:00:00.000Z|00001|bond|INFO|member p0: link state down\n"
        "2026-01-01T00:00:00.000Z|00002|bond|INFO|bond bond1: active member is now p0\n"
        "2026-01-01T00:00:00.000Z|00003|bond|INFO|Dropped 4 log messages in last 1 seconds\n"
        "2026-01-01T00:00:00.000Z|00004|lacp|WARN|p0: received an unparsable LACP PDU.\n"
        "2026-01-01T00:00:00.001Z|00005|bond|INFO|member p10: disabled\n"
    )
    ev = parse_member_events(text)
    assert [(e.member, e.enabled) for e in ev] == [("p10", False)]


def test_read_member_events_offsets_and_partial_line(tmp_path):
    log = tmp_path / "ovs-vswitchd.log"
    log.write_text("x|1|bond|INFO|member p0: enabled\n")
    ev, off = read_member_events(log, 0)
    assert [e.member for e in ev] == ["p0"] and off == log.stat().st_size
    with open(log, "a") as f:
        f.write("x|2|bond|INFO|member p1: disabled\nx|3|bond|INFO|member p2: dis")
    ev, off2 = read_member_events(log, off)
    assert [(e.member, e.enabled) for e in ev] == [("p1", False)]
    with open(log, "a") as f:
        f.write("abled\n")
    ev, _ = read_member_events(log, off2)
    assert [(e.member, e.enabled) for e in ev] == [("p2", False)]
    assert read_member_events(tmp_path / "missing.log", 7) == ([], 7)


# -- recorder analysis ------------------------------------------------------------------------

LACP = "0180c2000002" + "020000d10000" + "8809" + "01" + "01" + "00" * 108
MARKER = "0180c2000002" + "020000d10000" + "8809" + "02" + "01" + "00" * 108


def _lines(entries: list[tuple[float, str, str]]) -> list[str]:
    return [json.dumps({"t": t, "iface": i, "hex": h}) for t, i, h in entries]


def synthetic() -> list[str]:
    lines = [json.dumps({"t": 0.0, "event": "start", "pid": 1, "ifaces": ["p0", "p1"]})]
    lines += _lines([(10.0 + i, "p0", LACP) for i in range(5)])  # 10..14, regular 1 s
    lines += _lines([(17.5, "p0", LACP), (18.5, "p0", LACP)])  # a 3.5 s gap after 14
    lines += _lines(
        [(10.2, "p1", LACP), (11.2, "p1", LACP), (11.3, "p1", MARKER), (12.2, "p1", LACP)]
    )
    lines.append(json.dumps({"t": 13.0, "event": "error", "iface": "p1", "error": "x"}))
    lines.append('{"t": 19.0, "iface": "p1", "he')  # torn last line while recording
    return lines


def test_parse_records_skips_events_and_torn_lines():
    frames = ra.parse_records(synthetic())
    assert len(frames) == 11
    assert {f.iface for f in frames} == {"p0", "p1"}
    assert frames[0].subtype == 1 and len(frames[0].data) == 124


def test_inter_arrivals_and_stats():
    frames = ra.parse_records(synthetic())
    ia = ra.inter_arrivals(frames)
    assert ia["p0"] == pytest.approx([1, 1, 1, 1, 3.5, 1])
    assert ia["p1"] == pytest.approx([1.0, 0.1, 0.9])
    st = ra.gap_stats(frames)
    assert st["p0"].count == 7
    assert st["p0"].max_gap == pytest.approx(3.5)
    assert st["p0"].median_gap == pytest.approx(1.0)
    assert ra.max_gap(frames)["p1"] == pytest.approx(1.0)
    # Only LACPDUs: the marker does not shorten the p1 gaps.
    assert ra.inter_arrivals(frames, subtype=1)["p1"] == pytest.approx([1.0, 1.0])


def test_gaps_larger_than():
    frames = ra.parse_records(synthetic())
    big = ra.gaps_larger_than(frames, 2.0)
    assert big["p1"] == []
    assert len(big["p0"]) == 1
    assert big["p0"][0] == pytest.approx((14.0, 3.5))
    assert not any(ra.gaps_larger_than(frames, 5.0).values())


def test_window_and_unsorted_input():
    frames = ra.parse_records(synthetic())
    w = ra.window(frames, 11.0, 12.5)
    assert sorted((f.iface, f.t) for f in w) == [
        ("p0", 11.0),
        ("p0", 12.0),
        ("p1", 11.2),
        ("p1", 11.3),
        ("p1", 12.2),
    ]
    shuffled = list(reversed(frames))
    assert ra.arrivals(shuffled) == ra.arrivals(frames)


def test_gap_stats_single_frame_and_empty():
    frames = ra.parse_records(_lines([(1.0, "p3", LACP)]))
    assert ra.gap_stats(frames)["p3"] == ra.GapStats(1, None, None)
    assert ra.gap_stats([]) == {}


def test_load_records_and_events(tmp_path):
    p = tmp_path / "rec.jsonl"
    p.write_text("\n".join(synthetic()) + "\n")
    assert len(ra.load_records(p)) == 11
    assert [e["event"] for e in ra.load_events(p)] == ["start", "error"]


# -- topology ---------------------------------------------------------------------------------


def test_plan_names():
    ms = plan(2, 2)
    assert [(m.lag, m.dut_port, m.partner_port, m.bond) for m in ms] == [
        ("PortChannel0001", "Ethernet0", "p0", "bond1"),
        ("PortChannel0001", "Ethernet4", "p1", "bond1"),
        ("PortChannel0002", "Ethernet8", "p2", "bond2"),
        ("PortChannel0002", "Ethernet12", "p3", "bond2"),
    ]
    assert lag_index("PortChannel0012") == 12
    with pytest.raises(ValueError):
        plan(0, 1)


def test_macs_are_stable_unicast_locally_administered():
    macs = {dut_port_mac(k) for k in range(300)}
    assert len(macs) == 300
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert first & 0x02 and not first & 0x01


def test_config_db_hashes():
    h = config_db_hashes(plan(1, 2), system_mac="02:00:00:00:d0:01")
    assert h["DEVICE_METADATA|localhost"] == {"mac": "02:00:00:00:d0:01"}
    assert h["PORTCHANNEL|PortChannel0001"] == {
        "admin_status": "up",
        "mtu": "9100",
        "min_links": "1",
        "fast_rate": "true",
        "lacp_key": "auto",
    }
    assert h["PORTCHANNEL_MEMBER|PortChannel0001|Ethernet4"] == {"NULL": "NULL"}
    assert h["PORT|Ethernet4"] == {"admin_status": "up", "mtu": "9100"}
    assert len(h) == 6


def test_max_silence_counts_the_tail_and_empty_ports():
    frames = ra.parse_records(
        json.dumps({"t": t, "iface": "p1", "hex": "00" * 14 + "01"}) for t in (10.0, 11.0, 12.0)
    )
    assert ra.max_silence(frames, 9.5, 12.5) == {"p1": pytest.approx(1.0)}
    # the sender stopped at 12.0: by 16.0 that is 4 s of silence, not "largest gap 1.0 s"
    assert ra.max_silence(frames, 9.5, 16.0)["p1"] == pytest.approx(4.0)
    assert ra.max_silence(frames, 9.5, 16.0, ifaces=["p2"])["p2"] == pytest.approx(6.5)

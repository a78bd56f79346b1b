"""The embedded lab itself: namespaces, veths, private OVS partner, recorder, CONFIG_DB, teardown.

No shim here (shim_cmd=None, or a stand-in command): these tests check the test bench, so that
a later failure of a handover test can be trusted to be about the shim.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from teamd_lab import netns
from teamd_lab import record_analysis as ra
from teamd_lab.lab import Lab, LabExistsError
from teamd_lab.ovs import OvsPartner
from teamd_lab.procs import ProcRef
from teamd_lab.topology import DUT_SYSTEM_MAC, dut_port_mac, partner_port_mac

PREFIX = "lt"  # others use wr / lc

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _real_parts() -> None:
    """This tier tests the real thing: missing parts fail it with the reason, never skip it."""
    missing = [
        what
        for what, ok in (
            ("root (netns, veth)", os.geteuid() == 0),
            ("Open vSwitch (ovs-vswitchd)", shutil.which("ovs-vswitchd") is not None),
            ("redis-server", shutil.which("redis-server") is not None),
        )
        if not ok
    ]
    if missing:
        pytest.fail(f"the lab tier needs {', '.join(missing)}: run `make setup` as root")


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory):
    # unix socket paths are limited to 107 bytes: keep it short.
    d = Path(tmp_path_factory.mktemp("lab", numbered=True))
    yield d
    # Safety net: never leave a lab behind, even when an assertion failed mid-way.
    if (d / "lab.json").exists():
        lab = Lab.load(d)
        if lab.state["phase"] != "down":
            lab.down()


def wait_for(pred, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def procs_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (catches daemons we might not have tracked)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            out.append(int(p.name))
    return out


def root_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


SEND = """
import socket, sys
src = bytes.fromhex(sys.argv[2].replace(':', ''))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for i in range(3):
    # Slow Protocols, an unassigned subtype: nothing acts on it, but it is an 0x8809 frame.
    s.send(bytes.fromhex('0180c2000002') + src + b'\\x88\\x09' + bytes([0x0a, 1, i]) + bytes(107))
"""


def test_lab_up_status_down(workdir: Path, tmp_path_factory: pytest.TempPathFactory):
    links_before = root_links()
    lab = Lab(workdir, prefix=PREFIX).up(lags=2, members=2, shim_cmd=None, recorder=True)
    rec = Path(lab.state["recorder"]["out"])

    # --- namespaces and veths, with SONiC names and stable MACs
    assert netns.ns_exists("lt-dut") and netns.ns_exists("lt-ptnr")
    expected = [
        ("PortChannel0001", "Ethernet0", "p0"),
        ("PortChannel0001", "Ethernet4", "p1"),
        ("PortChannel0002", "Ethernet8", "p2"),
        ("PortChannel0002", "Ethernet12", "p3"),
    ]
    assert lab.members() == expected
    assert set(netns.list_links("lt-dut")) == {
        "lo",
        "Ethernet0",
        "Ethernet4",
        "Ethernet8",
        "Ethernet12",
    }
    assert {"p0", "p1", "p2", "p3"} <= set(netns.list_links("lt-ptnr"))
    for k, (_, dut, ptnr) in enumerate(expected):
        d = netns.link_state("lt-dut", dut)
        assert d["mac"] == dut_port_mac(k) and d["admin_up"]
        assert netns.wait_oper("lt-dut", dut, "UP")
        assert netns.link_state("lt-ptnr", ptnr)["mac"] == partner_port_mac(k)

    # --- the DUT-side link toggle is seen on the partner side
    lab.set_member_link("Ethernet0", False)
    assert wait_for(lambda: not netns.link_state("lt-ptnr", "p0")["carrier"], 5, 0.02)
    assert netns.oper_state("lt-ptnr", "p0") == "DOWN"
    lab.set_member_link("Ethernet0", True)
    assert netns.wait_oper("lt-ptnr", "p0", "UP")

    # --- OVS partner: one bond per LAG; with nobody answering it settles on `configured`
    ovs = lab.ovs
    assert ovs is not None
    assert sorted(ovs.bonds()) == ["bond1", "bond2"]
    shown = wait_for(
        lambda: (
            (b := ovs.bond_show())
            and all(v["lacp_status"] == "configured" for v in b.values())
            and b
        ),
        15,
    )
    assert shown, ovs.bond_show()
    assert set(shown) == {"bond1", "bond2"}
    assert set(shown["bond1"]["members"]) == {"p0", "p1"}
    assert set(shown["bond2"]["members"]) == {"p2", "p3"}
    lacp = ovs.lacp_show()
    assert lacp["bond1"]["sys_id"] == "02:00:00:00:00:bb"
    assert lacp["bond1"]["lacp_time"] == "fast"
    assert lacp["bond1"]["negotiated"] is False

    # --- OVS sent PDUs (fast while a member is expired, ~every 1 s), none was recorded:
    # the recorder only sees what arrives at the partner ports.
    stats = ovs.lacp_stats()
    assert all(
        c["tx_pdus"] >= 3 and c["rx_pdus"] == 0 for b in stats.values() for c in b.values()
    ), stats
    assert ra.load_records(rec) == []
    assert {e["event"] for e in ra.load_events(rec)} == {"start"}
    # ... while a frame the DUT side sends is recorded, on the right port only.
    subprocess.run(
        ["ip", "netns", "exec", "lt-dut", sys.executable, "-c", SEND, "Ethernet4", dut_port_mac(1)],
        check=True,
        timeout=30,
    )
    wait_for(lambda: len(ra.load_records(rec)) >= 3, 5, 0.05)
    assert lab.stop_recorder() == rec
    frames = ra.load_records(rec)
    assert [(f.iface, f.data[6:12].hex(":"), f.data[16]) for f in frames] == [
        ("p1", dut_port_mac(1), 0),
        ("p1", dut_port_mac(1), 1),
        ("p1", dut_port_mac(1), 2),
    ]
    assert ra.gap_stats(frames)["p1"].count == 3

    # --- CONFIG_DB (db 4)
    r = lab.redis(4)
    assert set(r.keys("*")) == {
        "CONFIG_DB_INITIALIZED",
        "DEVICE_METADATA|localhost",
        "PORTCHANNEL|PortChannel0001",
        "PORTCHANNEL|PortChannel0002",
        "PORTCHANNEL_MEMBER|PortChannel0001|Ethernet0",
        "PORTCHANNEL_MEMBER|PortChannel0001|Ethernet4",
        "PORTCHANNEL_MEMBER|PortChannel0002|Ethernet8",
        "PORTCHANNEL_MEMBER|PortChannel0002|Ethernet12",
        # every member's PORT entry, as a SONiC box has it (teammgrd reads admin_status)
        "PORT|Ethernet0",
        "PORT|Ethernet4",
        "PORT|Ethernet8",
        "PORT|Ethernet12",
    }
    assert r.get("CONFIG_DB_INITIALIZED") == "1"
    assert r.hgetall("DEVICE_METADATA|localhost") == {"mac": DUT_SYSTEM_MAC}
    assert r.hgetall("PORTCHANNEL|PortChannel0002") == {
        "admin_status": "up",
        "mtu": "9100",
        "min_links": "1",
        "fast_rate": "true",
        "lacp_key": "auto",
    }
    assert r.hgetall("PORTCHANNEL_MEMBER|PortChannel0002|Ethernet12") == {"NULL": "NULL"}
    assert r.config_get("notify-keyspace-events")["notify-keyspace-events"] != ""

    # --- a second lab with the same prefix is refused without side effects
    other = Path(tmp_path_factory.mktemp("lab2")) / "w"
    with pytest.raises(LabExistsError, match="prefix 'lt'"):
        Lab(other, prefix=PREFIX).up(lags=1, members=1)
    assert not other.exists()
    assert netns.ns_exists("lt-dut")

    # --- status from another Lab object (as the CLI would, in another process)
    loaded = Lab.load(workdir)
    st = loaded.status()
    assert st["phase"] == "up" and st["redis_url"] == f"unix://{workdir / 'redis.sock'}"
    assert st["namespaces"] == {"lt-dut": True, "lt-ptnr": True}
    assert [tuple(m) for m in st["members"]] == expected
    assert set(st["processes"]) == {"redis-server", "ovsdb-server", "ovs-vswitchd"}
    assert all(p["alive"] for p in st["processes"].values())
    assert st["ovs"]["bonds"]["bond1"]["lacp_status"] == "configured"
    assert set(st["ovs"]["lacp_stats"]) == {"bond1", "bond2"}
    refs = list(loaded.processes().values())

    # --- down from the loaded object removes everything
    loaded.down()
    assert not netns.ns_exists("lt-dut") and not netns.ns_exists("lt-ptnr")
    assert not any(p.alive() for p in refs)
    assert procs_mentioning(str(workdir)) == []
    assert root_links() == links_before
    assert not (workdir / "redis.sock").exists()
    assert list((workdir / "ovs" / "run").iterdir()) == []
    assert Lab.load(workdir).state["phase"] == "down"
    # down() again is a no-op
    Lab.load(workdir).down()


def test_up_failure_cleans_up(workdir: Path, monkeypatch: pytest.MonkeyPatch):
    def boom(self, bonds, **kw):
        raise RuntimeError("injected failure in add_bonds")

    monkeypatch.setattr(OvsPartner, "add_bonds", boom)
    with pytest.raises(RuntimeError, match="injected"):
        Lab(workdir, prefix=PREFIX).up(lags=1, members=2)
    assert not netns.ns_exists("lt-dut") and not netns.ns_exists("lt-ptnr")
    assert procs_mentioning(str(workdir)) == []
    st = Lab.load(workdir).state
    assert st["phase"] == "down" and st["created_namespaces"] == [] and st["veths"] == []


SHIM = """
import os, socket, sys, time
print('links', sorted(n for _, n in socket.if_nameindex()), flush=True)
print('redis', os.environ['WR_LAB_REDIS_URL'], sys.argv[1], flush=True)
time.sleep(120)
"""


def test_runtime_changes_and_shim(workdir: Path):
    lab = Lab(workdir, prefix=PREFIX).up(
        lags=1, members=2, shim_cmd=[sys.executable, "-c", SHIM, "{redis_url}"]
    )
    shim = lab.shim_proc()
    assert shim is not None and shim.alive()
    log = workdir / "shim-active.log"
    assert wait_for(lambda: "redis" in log.read_text(), 10, 0.05)
    text = log.read_text()
    # It runs inside the DUT namespace and got the redis url both ways.
    assert "links ['Ethernet0', 'Ethernet4', 'lo']" in text
    assert text.count(lab.redis_url) == 2
    assert Lab.load(workdir).status()["processes"]["shim-active"]["alive"]

    r = lab.redis(4)
    ovs = lab.ovs
    assert ovs is not None

    assert lab.add_lag(members=1) == "PortChannel0002"
    assert lab.members()[-1] == ("PortChannel0002", "Ethernet8", "p2")
    assert ovs.bond_members("bond2") == ["p2"]
    assert lab.add_member("PortChannel0002") == ("PortChannel0002", "Ethernet12", "p3")
    assert sorted(ovs.bond_members("bond2")) == ["p2", "p3"]
    assert (
        r.exists(
            "PORTCHANNEL|PortChannel0002",
            "PORTCHANNEL_MEMBER|PortChannel0002|Ethernet8",
            "PORTCHANNEL_MEMBER|PortChannel0002|Ethernet12",
        )
        == 3
    )
    assert netns.link_exists("lt-dut", "Ethernet12")

    lab.remove_member("Ethernet0")
    assert not netns.link_exists("lt-dut", "Ethernet0")
    assert not netns.link_exists("lt-ptnr", "p0")
    assert ovs.bond_members("bond1") == ["p1"]
    assert not r.exists("PORTCHANNEL_MEMBER|PortChannel0001|Ethernet0")

    lab.remove_lag("PortChannel0002")
    assert ovs.bonds() == ["bond1"]
    assert not r.keys("*PortChannel0002*")
    assert set(netns.list_links("lt-dut")) == {"lo", "Ethernet4"}
    assert lab.members() == [("PortChannel0001", "Ethernet4", "p1")]

    # Removing the last member of a LAG removes its OVS port too (no empty ports in OVS).
    lab.remove_member("Ethernet4")
    assert ovs.bonds() == []

    Lab.load(workdir).down()
    assert not ProcRef.from_json(lab.state["shims"]["active"]["proc"]).alive()
    assert not netns.ns_exists("lt-dut")
    assert procs_mentioning(str(workdir)) == []


def test_down_when_parts_are_already_gone(workdir: Path):
    Lab(workdir, prefix=PREFIX).up(lags=1, members=1, recorder=True)
    lab = Lab.load(workdir)
    # Someone killed vswitchd and the recorder, and deleted a veth and the DUT namespace.
    lab.ovs.procs["ovs-vswitchd"].stop()
    ProcRef.from_json(lab.state["recorder"]["proc"]).stop()
    netns.delete_veth(netns.Veth("lt-dut", "Ethernet0", "lt-ptnr", "p0"))
    netns.delete_ns("lt-dut")
    st = lab.status()
    assert st["namespaces"]["lt-dut"] is False
    assert st["processes"]["ovs-vswitchd"]["alive"] is False
    assert "ovs" not in st
    lab.down()
    assert not netns.ns_exists("lt-ptnr")
    assert procs_mentioning(str(workdir)) == []
    assert Lab.load(workdir).state["phase"] == "down"

#!/usr/bin/env python3
"""Capture real LACPDUs sent by Open vSwitch into ``tests/data/ovs_lacpdus.json``.

Not run by the test suite: it needs root, iproute2 and Debian's Open vSwitch. It exists so the
fixture can be regenerated and so its provenance is auditable. Run from the repo root:

    sudo .venv/bin/python tests/data/capture_ovs_lacpdus.py

What it does (hld §13.6):
1. creates netns ``lc-cap`` with veth pairs o1/s1 and o2/s2 (pinned MACs);
2. starts a private ovsdb-server + ovs-vswitchd (own OVS_RUNDIR/DBDIR/LOGDIR in a temp dir)
   inside the namespace; bridge ``br0`` (datapath_type=netdev, hwaddr 02:00:00:00:00:bb) and
   bond ``bond0`` over o1, o2 with ``lacp=active other_config:lacp-time=fast``;
3. phase "unnegotiated": listens on s1/s2 with AF_PACKET sockets and records OVS's PDUs while
   nobody answers (OVS goes expired -> defaulted);
4. phase "negotiated": answers as a partner with PDUs built by ``teamd_shim.lacp.encode_frame``
   (echoing OVS's actor block) and records OVS's PDUs once they carry our identity and Sync;
5. stops both daemons by pid and deletes the namespace and temp dir.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "teamd-shim"))

from teamd_shim.lacp import (  # noqa: E402
    ETH_P_SLOW,
    Lacpdu,
    PduError,
    PortInfo,
    decode_frame,
    encode_frame,
    mac_str,
)

NETNS = "lc-cap"
BRIDGE_HWADDR = "02:00:00:00:00:bb"
OVS_MACS = {"o1": "02:00:00:00:01:01", "o2": "02:00:00:00:01:02"}
OUR_MACS = {"s1": "02:00:00:00:02:01", "s2": "02:00:00:00:02:02"}
PEER = {"s1": "o1", "s2": "o2"}
OUR_SYSTEM = bytes.fromhex("0200000000aa")
OUR_KEY = 17
OUT = Path(__file__).resolve().parent / "ovs_lacpdus.json"
CLONE_NEWNET = 0x40000000


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def in_ns(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", NETNS, *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def enter_netns() -> None:
    """Move this (single-threaded) process into the namespace so AF_PACKET sees the veths."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{NETNS}", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")
    os.close(fd)


def open_sockets() -> dict[str, socket.socket]:
    socks = {}
    for ifname in OUR_MACS:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_SLOW))
        s.bind((ifname, ETH_P_SLOW))
        s.setblocking(False)
        socks[ifname] = s
    return socks


def recv_all(socks: dict[str, socket.socket], timeout: float) -> list[tuple[str, float, bytes]]:
    got: list[tuple[str, float, bytes]] = []
    end = time.monotonic() + timeout
    by_fd = {s.fileno(): name for name, s in socks.items()}
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select(list(socks.values()), [], [], left)
        for s in ready:
            got.append((by_fd[s.fileno()], time.monotonic(), s.recv(2048)))
    return got


def describe(frame: bytes) -> dict[str, object]:
    src, pdu = decode_frame(frame)
    return {"src": mac_str(src), "actor": pdu.actor.to_dict(), "partner": pdu.partner.to_dict()}


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lc-cap-"))
    env = dict(os.environ, OVS_RUNDIR=str(tmp), OVS_DBDIR=str(tmp), OVS_LOGDIR=str(tmp))
    db_sock = f"unix:{tmp}/db.sock"
    pids: list[int] = []
    sh("ip", "netns", "add", NETNS)
    try:
        for o, s in (("o1", "s1"), ("o2", "s2")):
            sh("ip", "link", "add", o, "netns", NETNS, "address", OVS_MACS[o], "type", "veth",
               "peer", "name", s, "netns", NETNS, "address", OUR_MACS[s])  # fmt: skip
        for dev in ("lo", *OVS_MACS, *OUR_MACS):
            in_ns("ip", "link", "set", dev, "up")
        sh("ovsdb-tool", "create", f"{tmp}/conf.db", "/usr/share/openvswitch/vswitch.ovsschema")
        in_ns("ovsdb-server", f"{tmp}/conf.db", f"--remote=punix:{tmp}/db.sock",
              f"--pidfile={tmp}/ovsdb-server.pid", f"--log-file={tmp}/ovsdb-server.log",
              "--detach", env=env)  # fmt: skip
        pids.append(int(Path(f"{tmp}/ovsdb-server.pid").read_text()))
        vsctl = ("ovs-vsctl", f"--db={db_sock}")
        in_ns(*vsctl, "--no-wait", "init", env=env)
        in_ns("ovs-vswitchd", db_sock, f"--pidfile={tmp}/ovs-vswitchd.pid",
              f"--log-file={tmp}/ovs-vswitchd.log", "--detach", env=env)  # fmt: skip
        pids.append(int(Path(f"{tmp}/ovs-vswitchd.pid").read_text()))
        in_ns(*vsctl, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev",
              f"other-config:hwaddr={BRIDGE_HWADDR}", env=env)  # fmt: skip
        in_ns(*vsctl, "add-bond", "br0", "bond0", "o1", "o2", "lacp=active",
              "bond_mode=balance-tcp", "other_config:lacp-time=fast", env=env)  # fmt: skip

        enter_netns()
        socks = open_sockets()

        # Phase 1: nobody answers; OVS starts (expired/defaulted, partner block zero).
        unnegotiated = recv_all(socks, 4.5)

        # Phase 2: answer as a fast, active, in-sync partner, echoing OVS's actor block.
        ovs_actor: dict[str, PortInfo] = {}
        negotiated: list[tuple[str, float, bytes]] = []
        end = time.monotonic() + 5.0
        port_no = {"s1": 1, "s2": 2}
        while time.monotonic() < end:
            for name, s in socks.items():
                actor = PortInfo(65535, OUR_SYSTEM, OUR_KEY, 255, port_no[name], 0x3F)
                partner = ovs_actor.get(name, PortInfo(0, bytes(6), 0, 0, 0, 0))
                s.send(encode_frame(bytes.fromhex(OUR_MACS[name].replace(":", "")),
                                    Lacpdu(actor, partner)))  # fmt: skip
            for name, t, frame in recv_all(socks, 0.3):
                try:
                    _, pdu = decode_frame(frame)
                except PduError:
                    continue
                ovs_actor[name] = pdu.actor
                negotiated.append((name, t, frame))

        show = in_ns("ovs-appctl", "-t", f"{tmp}/ovs-vswitchd.{pids[1]}.ctl", "lacp/show",
                     env=env)  # fmt: skip
    finally:
        for pid in reversed(pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
        subprocess.run(["ip", "netns", "delete", NETNS], check=False)
        shutil.rmtree(tmp, ignore_errors=True)

    def pick(frames: list[tuple[str, float, bytes]], want_sync: bool) -> list[dict[str, object]]:
        seen: set[bytes] = set()
        out = []
        for name, _t, frame in frames:
            _, pdu = decode_frame(frame)
            negotiated_pdu = pdu.partner.system == OUR_SYSTEM and bool(pdu.actor.state & 0x08)
            if negotiated_pdu != want_sync or frame in seen:
                continue
            seen.add(frame)
            out.append({"ovs_port": PEER[name], "hex": frame.hex(), **describe(frame)})
        return out

    data = {
        "note": (
            "LACPDUs sent by Open vSwitch 3.1.0 (Debian 3.1.0-2+deb12u1, datapath_type=netdev) "
            "on veths o1/o2 of bond0 (lacp=active, lacp-time=fast, bond_mode=balance-tcp), "
            f"bridge br0 other-config:hwaddr={BRIDGE_HWADDR}; read with AF_PACKET ETH_P_SLOW "
            "sockets on the peer veths s1/s2 in netns lc-cap. 'unnegotiated': nobody answering. "
            f"'negotiated': after our partner PDUs (system {mac_str(OUR_SYSTEM)}, key {OUR_KEY}, "
            "ports 1/2, state 0x3f) built with teamd_shim.lacp.encode_frame. "
            "Regenerate with tests/data/capture_ovs_lacpdus.py."
        ),
        "ovs_version": "3.1.0",
        "bridge_hwaddr": BRIDGE_HWADDR,
        "ovs_port_macs": OVS_MACS,
        "our_system": mac_str(OUR_SYSTEM),
        "our_key": OUR_KEY,
        "unnegotiated": pick(unnegotiated, want_sync=False),
        "negotiated": pick(negotiated, want_sync=True),
        "ovs_lacp_show_at_end": show,
    }
    OUT.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {OUT}: {len(data['unnegotiated'])} unnegotiated, "
          f"{len(data['negotiated'])} negotiated frames")  # fmt: skip


if __name__ == "__main__":
    main()

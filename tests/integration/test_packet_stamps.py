"""The premise of the replay cut (hld §7, "The replay cut"): two packet sockets on one port,
as the active and the standby hold, get the same kernel receive stamp for each frame, whatever
the order or the delay in which they read it. Real kernel, a veth pair in a namespace of ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, socket, sys, time
sys.path.insert(0, sys.argv[1])
from teamd_shim.io.packets import ANC_SIZE, PortSocket, kernel_stamp
idx = socket.if_nametoindex("stb")
first, second = PortSocket("stb", idx).open(), PortSocket("stb", idx).open()
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
tx.bind(("sta", 0))
frame = (bytes.fromhex("0180c2000002" "020000000001") + b"\x88\x09\x01\x01" + bytes(110))
pairs = []
for i in range(40):
    tx.send(frame)
    time.sleep(0.001)
    got = []
    # the second socket is read first, and late, every other frame
    for s in ((second, first) if i % 2 else (first, second)):
        s.settimeout(2.0)
        _f, anc, _fl, _a = s.recvmsg(2048, ANC_SIZE)
        got.append(kernel_stamp(anc))
        if i % 2:
            time.sleep(0.003)
    pairs.append(got)
print(json.dumps({"pairs": pairs, "now_ns": time.time_ns()}))
"""


def test_both_sockets_on_a_port_see_the_same_kernel_stamp() -> None:
    ns = f"stamp-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for cmd in (
            ["link", "add", "sta", "type", "veth", "peer", "name", "stb"],
            ["link", "set", "sta", "up"],
            ["link", "set", "stb", "up"],
        ):
            subprocess.run(["ip", "-n", ns, *cmd], check=True)
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", PROBE, str(ROOT / "teamd-shim")],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ},
        ).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    got = json.loads(out)
    stamps = [tuple(p) for p in got["pairs"]]
    assert all(a == b for a, b in stamps), f"stamps differ between the sockets: {stamps[:5]}"
    assert all(a > 0 for a, _ in stamps), "the kernel gave no receive stamp"
    assert len({a for a, _ in stamps}) == len(stamps), "two frames with one stamp"
    assert [a for a, _ in stamps] == sorted(a for a, _ in stamps)
    assert 0 < got["now_ns"] - stamps[-1][0] < 10_000_000_000  # CLOCK_REALTIME, ns

"""Raw Slow Protocols frames on a link, for tests that play a partner the real ones cannot.

Open vSwitch, stock teamd and Linux bonding never send a Marker Information and Debian's teamd
does not speak SONiC's retry-count extension, so the tests that judge our marker responder and
our 0xf1 handling send crafted frames from the partner's side of a veth and capture what comes
back. Run inside the partner's namespace:

    ip netns exec NS python -m orchestrator.lab.slowproto exchange --iface p0 --send HEX \
        --listen-subtype 2 --timeout 1

prints one JSON object: the frames received (hex, seconds after the send).
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import time

ETH_P_SLOW = 0x8809


def marker_information(src: bytes, requester_port: int, requester_system: bytes,
                       transaction_id: int) -> bytes:
    """A Marker Information PDU laid out as 802.1AX and Linux bonding do (hld §13.1)."""
    payload = bytes([2, 1, 1, 16]) + requester_port.to_bytes(2, "big") + requester_system
    payload += transaction_id.to_bytes(4, "big") + bytes(2) + bytes([0, 0]) + bytes(90)
    return bytes.fromhex("0180c2000002") + src + ETH_P_SLOW.to_bytes(2, "big") + payload


def open_socket(iface: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_SLOW))
    s.bind((iface, ETH_P_SLOW))
    return s


def exchange(iface: str, frame: bytes, subtype: int | None, timeout: float) -> dict:
    s = open_socket(iface)
    try:
        t0 = time.monotonic()
        s.send(frame)
        got: list[dict] = []
        while (left := t0 + timeout - time.monotonic()) > 0:
            r, _, _ = select.select([s], [], [], left)
            if not r:
                break
            data, addr = s.recvfrom(2048)
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            if subtype is None or (len(data) > 14 and data[14] == subtype):
                got.append({"t": round(time.monotonic() - t0, 4), "hex": data.hex()})
        return {"sent": frame.hex(), "received": got}
    finally:
        s.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="slowproto")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("exchange", help="send one frame, print what comes back")
    ex.add_argument("--iface", required=True)
    ex.add_argument("--send", required=True, help="the frame, hex")
    ex.add_argument("--listen-subtype", type=int, default=None)
    ex.add_argument("--timeout", type=float, default=1.0)
    a = ap.parse_args(argv)
    out = exchange(a.iface, bytes.fromhex(a.send), a.listen_subtype, a.timeout)
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

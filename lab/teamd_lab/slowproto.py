"""Raw Slow Protocols frames on a link, for tests that play a partner the real ones cannot.

Open vSwitch, stock teamd and Linux bonding never send a Marker Information and Debian's teamd
does not speak SONiC's retry-count extension, so the tests that judge our marker responder and
our 0xf1 handling send crafted frames from the partner's side of a veth and capture what comes
back. Run inside the partner's namespace:

    ip netns exec NS python -m teamd_lab.slowproto exchange --iface p0 --send HEX \
        --listen-subtype 2 --timeout 1

prints one JSON object: the frames received (hex, seconds after the send).
`sonic-partner` plays a SONiC teamd that announces a retry count (hld §13.7) and then falls
silent, for the tests of our receive expiry.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import time

from teamd_shim.lacp.constants import ETH_P_SLOW


def marker_information(
    src: bytes, requester_port: int, requester_system: bytes, transaction_id: int
) -> bytes:
    """A Marker Information PDU (802.1AX; hld §13.1), from `src`."""
    from teamd_shim.lacp import Marker, encode_marker
    from teamd_shim.lacp.pdu import MARKER_INFORMATION

    return encode_marker(
        src, Marker(MARKER_INFORMATION, requester_port, requester_system, transaction_id)
    )


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


def listen(iface: str, seconds: float) -> dict:
    """Every Slow Protocols frame arriving on `iface` for `seconds` (src MAC, subtype, time)."""
    s = open_socket(iface)
    got: list[dict] = []
    try:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            r, _, _ = select.select([s], [], [], left)
            if not r:
                break
            data, addr = s.recvfrom(2048)
            if addr[2] == socket.PACKET_OUTGOING or len(data) < 15:
                continue
            got.append({"t": time.monotonic(), "src": data[6:12].hex(), "subtype": data[14]})
        return {"received": got}
    finally:
        s.close()


def sonic_partner(
    iface: str, system: bytes, key: int, port: int, retry_count: int, duration: float, version: int
) -> dict:
    """Play a SONiC teamd with `retry-count set N` on one link for `duration` seconds (or until
    SIGINT): a PDU every second (version 0xf1 announcing N, or plain), in sync once we echo it
    right, echoing our last PDU; then silence. Returns when it stopped and what it heard from
    us (each PDU's time, actor state and retry counts)."""
    from teamd_shim.lacp import (
        ACTIVITY,
        AGGREGATION,
        COLLECTING,
        DISTRIBUTING,
        RETRY_VERSION,
        SYNC,
        TIMEOUT,
        Lacpdu,
        PduError,
        PortInfo,
        decode_frame,
        encode_frame,
    )

    s = open_socket(iface)
    ours: PortInfo = PortInfo(0, bytes(6), 0, 0, 0, 0)
    ours_count = 3
    heard: list[dict] = []
    steady = ACTIVITY | TIMEOUT | AGGREGATION
    src = system[:5] + bytes([port & 0xFF])
    t0 = time.monotonic()
    next_tx = t0
    last_tx = t0
    try:
        while True:
            now = time.monotonic()
            if now >= t0 + duration:
                break
            if now >= next_tx:
                me = PortInfo(65535, system, key, 255, port, steady)
                if ours.system != bytes(6):  # we know our partner: in sync, using the link
                    me = me.with_state(steady | SYNC | COLLECTING | DISTRIBUTING)
                if version == RETRY_VERSION:
                    pdu = Lacpdu(me, ours, 0, RETRY_VERSION, retry_count, ours_count)
                else:
                    pdu = Lacpdu(me, ours, 0, version)
                s.send(encode_frame(src, pdu))
                last_tx = time.monotonic()
                next_tx += 1.0
            r, _, _ = select.select([s], [], [], max(0.0, min(next_tx, t0 + duration) - now))
            if not r:
                continue
            data, addr = s.recvfrom(2048)
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            try:
                _, got = decode_frame(data)
            except PduError:
                continue
            ours = got.actor
            ours_count = got.actor_retry_count or 3
            heard.append(
                {
                    "t": time.monotonic(),
                    "state": got.actor.state,
                    "version": got.version,
                    "actor_retry_count": got.actor_retry_count,
                    "partner_retry_count": got.partner_retry_count,
                }
            )
    except KeyboardInterrupt:  # SIGINT: stop early, and still say what was heard
        pass
    finally:
        s.close()
    return {"started": t0, "last_tx": last_tx, "heard": heard}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="slowproto")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("exchange", help="send one frame, print what comes back")
    ex.add_argument("--iface", required=True)
    ex.add_argument("--send", required=True, help="the frame, hex")
    ex.add_argument("--listen-subtype", type=int, default=None)
    ex.add_argument("--timeout", type=float, default=1.0)
    sp = sub.add_parser(
        "sonic-partner",
        help="play a SONiC teamd (0xf1) for a while, then "
        "fall silent; print when it stopped and what it heard",
    )
    sp.add_argument("--iface", required=True)
    sp.add_argument("--system", required=True, help="its LACP system id, aa:bb:cc:dd:ee:ff")
    sp.add_argument("--key", type=int, default=7)
    sp.add_argument("--port", type=int, default=1)
    sp.add_argument("--retry-count", type=int, default=5)
    sp.add_argument("--version", type=lambda v: int(v, 0), default=0xF1)
    sp.add_argument("--duration", type=float, required=True)
    li = sub.add_parser("listen", help="print the Slow Protocols frames arriving for a while")
    li.add_argument("--iface", required=True)
    li.add_argument("--seconds", type=float, required=True)
    a = ap.parse_args(argv)
    if a.cmd == "listen":
        out = listen(a.iface, a.seconds)
    elif a.cmd == "sonic-partner":
        out = sonic_partner(
            a.iface,
            bytes.fromhex(a.system.replace(":", "")),
            a.key,
            a.port,
            a.retry_count,
            a.duration,
            a.version,
        )
    else:
        out = exchange(a.iface, bytes.fromhex(a.send), a.listen_subtype, a.timeout)
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

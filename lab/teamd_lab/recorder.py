"""Partner-side recorder of the Slow Protocols frames the DUT sends, one JSON line per frame.

Run inside the partner namespace:
    ip netns exec <ns> python -m teamd_lab.recorder --ifaces p0,p1 --out FILE

Why a separate process: OVS's counters say *whether* PDUs arrived, not *when*; the handover
budget is about the largest gap between two PDUs on one port, so every arrival is timestamped
(CLOCK_MONOTONIC, comparable with other processes on the host). One AF_PACKET socket for
ETH_P_SLOW on every interface of the namespace: a socket of one protocol (not ETH_P_ALL) never
sees outgoing frames, so OVS's own PDUs are not recorded and everything in the file came from
the DUT; the kernel names each frame's interface, and only the ports asked for are recorded.
Unbound, it survives links going down and veths deleted and re-created.

Lines: {"t": seconds, "iface": name, "hex": frame} for frames; {"t", "event", ...} for
start/stop/errors (analysis ignores those).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from typing import IO

from teamd_shim.lacp.constants import ETH_P_SLOW

SO_TIMESTAMPNS = 35  # asm-generic/socket.h; ancillary SCM_TIMESTAMPNS carries it


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def realtime_to_monotonic(t_real: float) -> float:
    """Kernel packet timestamps are CLOCK_REALTIME; the analysis works in CLOCK_MONOTONIC.

    The offset is read fresh each time, so only a clock step *between* the two reads (a few
    microseconds) could distort one sample.
    """
    return t_real - (time.clock_gettime(time.CLOCK_REALTIME) - now())


class Recorder:
    """One socket for every port: a 512 x 2 lab has 1024, and a socket each took longer to open
    than the lab waited (issue 19); the kernel names the interface of each frame."""

    def __init__(self, ifaces: list[str], out: IO[str]) -> None:
        self.ifaces = set(ifaces)
        self.out = out
        self.stopping = False
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_SLOW))
        # arrival time stamped by the kernel, not when this process got to read it: on a busy
        # 2-core machine the reader's wake-up jitter would otherwise be measured too
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setblocking(False)

    def write(self, obj: dict) -> None:
        self.out.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def _read(self) -> None:
        while True:
            try:
                frame, anc, _flags, addr = self.sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. ENOBUFS: say so, keep recording
                self.write({"t": now(), "event": "error", "error": e.strerror or str(e)})
                return
            ifname = addr[0]
            if ifname not in self.ifaces:
                continue
            t = now()
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack("qq", data[:16])
                    t = realtime_to_monotonic(sec + nsec / 1e9)
            self.write({"t": t, "iface": ifname, "hex": frame.hex()})

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        self.write(
            {"t": now(), "event": "start", "pid": os.getpid(), "ifaces": sorted(self.ifaces)}
        )
        self.out.flush()
        while not self.stopping:
            if sel.select(timeout=0.1):
                self._read()
            self.out.flush()  # at most once per wake-up, not per frame
        self.sock.close()
        self.write({"t": now(), "event": "stop"})
        self.out.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ifaces", required=True, help="comma-separated interface names")
    ap.add_argument("--out", required=True, help="JSON-lines file to append to")
    args = ap.parse_args(argv)
    ifaces = [i for i in args.ifaces.split(",") if i]
    with open(args.out, "a", encoding="utf-8") as out:
        rec = Recorder(ifaces, out)

        def _stop(_sig: int, _frm: object) -> None:
            rec.stopping = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        rec.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

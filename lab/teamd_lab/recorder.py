"""Partner-side recorder of the Slow Protocols frames the DUT sends, one JSON line per frame.

Run inside the partner namespace:
    ip netns exec <ns> python -m teamd_lab.recorder --ifaces p0,p1 --out FILE

Why a separate process: OVS's counters say *whether* PDUs arrived, not *when*; the handover
budget is about the largest gap between two PDUs on one port, so every arrival is timestamped
(CLOCK_MONOTONIC, comparable with other processes on the host). One AF_PACKET socket bound to
ETH_P_SLOW per port: such a socket never sees outgoing frames, so OVS's own PDUs are not
recorded and everything in the file came from the DUT. A socket error on one port (ENETDOWN
while the link is down, the interface deleted) must not stop the others: the port is reopened.

Lines: {"t": seconds, "iface": name, "hex": frame} for frames; {"t", "event", ...} for
start/stop/errors (analysis ignores those).
"""

from __future__ import annotations

import argparse
import errno
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

REOPEN_INTERVAL = 0.5


SO_TIMESTAMPNS = 35  # asm-generic/socket.h; ancillary SCM_TIMESTAMPNS carries it


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def realtime_to_monotonic(t_real: float) -> float:
    """Kernel packet timestamps are CLOCK_REALTIME; the analysis works in CLOCK_MONOTONIC.

    The offset is read fresh each time, so only a clock step *between* the two reads (a few
    microseconds) could distort one sample.
    """
    return t_real - (time.clock_gettime(time.CLOCK_REALTIME) - now())


class Port:
    """One interface's socket, reopened after errors (for instance a re-created veth)."""

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self.sock: socket.socket | None = None
        self.ifindex: int | None = None
        self.next_try = 0.0
        self.last_error: str | None = None  # report a failing open once, not every retry

    def open(self) -> None:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_SLOW))
        try:
            s.bind((self.ifname, ETH_P_SLOW))
            # arrival time stamped by the kernel, not when this process got to read it: on a
            # busy 2-core machine the reader's wake-up jitter would otherwise be measured too
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.ifindex = socket.if_nametoindex(self.ifname)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def stale(self) -> bool:
        """True if the interface we bound to no longer exists under this name and index."""
        try:
            return socket.if_nametoindex(self.ifname) != self.ifindex
        except OSError:
            return True


class Recorder:
    def __init__(self, ifaces: list[str], out: IO[str]) -> None:
        self.ports = [Port(i) for i in ifaces]
        self.out = out
        self.sel = selectors.DefaultSelector()
        self.stopping = False

    def write(self, obj: dict) -> None:
        self.out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.out.flush()

    def _open(self, port: Port) -> None:
        try:
            port.open()
        except OSError as e:
            port.next_try = now() + REOPEN_INTERVAL
            msg = e.strerror or str(e)
            if msg != port.last_error:
                self.write({"t": now(), "event": "open-error", "iface": port.ifname, "error": msg})
            port.last_error = msg
            return
        port.last_error = None
        assert port.sock is not None
        self.sel.register(port.sock, selectors.EVENT_READ, port)
        self.write({"t": now(), "event": "open", "iface": port.ifname})

    def _drop(self, port: Port, err: OSError) -> None:
        self.write(
            {"t": now(), "event": "error", "iface": port.ifname, "error": err.strerror or str(err)}
        )
        if err.errno == errno.ENETDOWN and not port.stale():
            return  # link went down; the same socket works again after `link set up`
        if port.sock is not None:
            self.sel.unregister(port.sock)
        port.close()
        port.next_try = now() + REOPEN_INTERVAL

    def _read(self, port: Port) -> None:
        assert port.sock is not None
        while True:
            try:
                frame, anc, _flags, _addr = port.sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._drop(port, e)
                return
            t = now()
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack("qq", data[:16])
                    t = realtime_to_monotonic(sec + nsec / 1e9)
            self.write({"t": t, "iface": port.ifname, "hex": frame.hex()})

    def run(self) -> None:
        for p in self.ports:
            self._open(p)
        self.write(
            {
                "t": now(),
                "event": "start",
                "pid": os.getpid(),
                "ifaces": [p.ifname for p in self.ports],
            }
        )
        next_check = now() + 1.0
        while not self.stopping:
            for key, _ in self.sel.select(timeout=0.1):
                self._read(key.data)
            t = now()
            for p in self.ports:
                if p.sock is None and t >= p.next_try:
                    self._open(p)
            if t >= next_check:  # an interface deleted and re-created under the same name
                next_check = t + 1.0
                for p in self.ports:
                    if p.sock is not None and p.stale():
                        self._drop(p, OSError(errno.ENODEV, "interface re-created or gone"))
        for p in self.ports:
            p.close()
        self.write({"t": now(), "event": "stop"})


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

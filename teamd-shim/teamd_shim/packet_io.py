"""One AF_PACKET/ETH_P_SLOW socket per member port, driven by the asyncio loop.

Each port's socket fails alone: ENETDOWN on one member (link down) or a vanished netdev never
stops the others (hld §13.3). Several processes may hold such sockets on
the same port and each receives every PDU, which is what lets a standby listen beside the active.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import time
from collections.abc import Callable

from .lacp.constants import ETH_P_SLOW

log = logging.getLogger(__name__)

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_MULTICAST = 0
SLOW_PROTOCOLS_MAC = bytes.fromhex("0180c2000002")


class PortSocket:
    """The raw socket of one member; reopened on demand after the netdev was re-created."""

    def __init__(self, name: str, ifindex: int) -> None:
        self.name = name
        self.ifindex = ifindex
        self.sock: socket.socket | None = None
        self.tx_errors = 0
        self.rx_errors = 0
        self._last_err_log = 0.0

    def open(self) -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_SLOW))
        try:
            s.bind((self.name, ETH_P_SLOW))
            mreq = struct.pack("iHH8s", self.ifindex, PACKET_MR_MULTICAST, 6, SLOW_PROTOCOLS_MAC)
            s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        self.sock = s
        return s

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def note_error(self, what: str, err: OSError) -> None:
        """Log socket errors at most every 10 s per port: a down link fails every send."""
        now = time.monotonic()
        if now - self._last_err_log > 10.0:
            self._last_err_log = now
            log.warning("%s: %s failed: %s", self.name, what, err)


class PacketIO:
    """Owns the member sockets; calls `on_frame(port, frame, now)` for every received PDU."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 on_frame: Callable[[str, bytes, float], None]) -> None:
        self._loop = loop
        self._on_frame = on_frame
        self.ports: dict[str, PortSocket] = {}

    def add(self, name: str, ifindex: int) -> bool:
        """Open the port's socket; False (logged) when the netdev cannot be opened now."""
        self.remove(name)
        ps = PortSocket(name, ifindex)
        try:
            s = ps.open()
        except OSError as e:
            log.warning("%s: cannot open LACP socket: %s", name, e)
            return False
        self.ports[name] = ps
        self._loop.add_reader(s.fileno(), self._readable, ps)
        return True

    def remove(self, name: str) -> None:
        ps = self.ports.pop(name, None)
        if ps is not None and ps.sock is not None:
            self._loop.remove_reader(ps.sock.fileno())
            ps.close()

    def close(self) -> None:
        for name in list(self.ports):
            self.remove(name)

    def send(self, name: str, frame: bytes) -> bool:
        ps = self.ports.get(name)
        if ps is None or ps.sock is None:
            return False
        try:
            ps.sock.send(frame)
            return True
        except OSError as e:
            ps.tx_errors += 1
            ps.note_error("send", e)
            return False

    def _readable(self, ps: PortSocket) -> None:
        sock = ps.sock
        if sock is None:
            return
        for _ in range(64):  # bounded, so one busy port cannot starve the loop
            try:
                frame = sock.recv(2048)
            except BlockingIOError:
                return
            except OSError as e:
                ps.rx_errors += 1
                if e.errno not in (errno.ENETDOWN, errno.EAGAIN):
                    ps.note_error("recv", e)
                if e.errno in (errno.ENXIO, errno.ENODEV):
                    self.remove(ps.name)
                return
            self._on_frame(ps.name, frame, time.monotonic())

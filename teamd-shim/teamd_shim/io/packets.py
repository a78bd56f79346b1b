"""One AF_PACKET/ETH_P_SLOW socket per member port, driven by the asyncio loop.

Each port's socket fails alone: ENETDOWN on one member (link down) or a vanished netdev never
stops the others (hld §13.3). Several processes may hold such sockets on
the same port and each receives every PDU, which is what lets a standby listen beside the active.

Every frame comes with the kernel's receive stamp (SO_TIMESTAMPNS). The kernel stamps an skb
once, before it is handed to the packet sockets, so the active's copy and the standby's copy of
one PDU carry the same stamp: that is the replay cut of a handover (hld §7, "The replay cut"),
exact whatever either process was doing when it read the frame.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import time
from collections.abc import Callable

from teamd_shim.lacp.constants import ETH_P_SLOW

log = logging.getLogger(__name__)

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_MULTICAST = 0
SO_TIMESTAMPNS = 35  # = SCM_TIMESTAMPNS, asm-generic/socket.h (x86, arm)
TIMESPEC = struct.Struct("qq")
SLOW_PROTOCOLS_MAC = bytes.fromhex("0180c2000002")


class PortSocket:
    """The raw socket of one member; reopened on demand after the netdev was re-created."""

    def __init__(self, name: str, ifindex: int) -> None:
        self.name = name
        self.ifindex = ifindex
        self.sock: socket.socket | None = None
        self._last_err_log = 0.0

    def open(self) -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_SLOW))
        try:
            s.bind((self.name, ETH_P_SLOW))
            mreq = struct.pack("iHH8s", self.ifindex, PACKET_MR_MULTICAST, 6, SLOW_PROTOCOLS_MAC)
            s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
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


def kernel_stamp(ancdata: list[tuple[int, int, bytes]]) -> int:
    """The SCM_TIMESTAMPNS of a recvmsg, in ns (CLOCK_REALTIME); 0 if the kernel gave none."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack_from(data)
            return int(sec) * 1_000_000_000 + int(nsec)
    return 0


ANC_SIZE = socket.CMSG_SPACE(TIMESPEC.size)


class PacketIO:
    """Owns the member sockets; calls `on_frame(port, frame, now, stamp)` for every received
    PDU (`now`: monotonic, when read; `stamp`: the kernel's receive stamp, see above)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_frame: Callable[[str, bytes, float, int], None]
    ) -> None:
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
            ps.note_error("send", e)
            return False

    def _readable(self, ps: PortSocket) -> None:
        """One frame per call: the reader is level-triggered, so the loop calls again while
        more are queued. Draining instead cost a second recvmsg and a BlockingIOError for
        nearly every PDU (one per second per port: the common case), the top of the steady
        state's profile at 512 x 2 (issue 19)."""
        sock = ps.sock
        if sock is None:
            return
        try:
            frame, anc, _flags, _addr = sock.recvmsg(2048, ANC_SIZE)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno not in (errno.ENETDOWN, errno.EAGAIN):
                ps.note_error("recv", e)
            if e.errno in (errno.ENXIO, errno.ENODEV):
                self.remove(ps.name)
            return
        self._on_frame(ps.name, frame, time.monotonic(), kernel_stamp(anc))

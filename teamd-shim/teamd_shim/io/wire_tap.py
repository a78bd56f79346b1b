"""What the owner really sent: every outgoing LACPDU in this network namespace (hld §14.2).

A hot standby shares the owner's network namespace, so the kernel shows it the owner's own
transmissions as PACKET_OUTGOING copies. Only a socket of protocol ETH_P_ALL gets them (the
kernel hands outgoing frames to the "all protocols" taps, not to ETH_P_SLOW sockets like the
member sockets of io/packets.py), so this is one unbound ETH_P_ALL socket with a classic BPF
filter that keeps outgoing slow-protocol LACPDUs only: the kernel drops everything else before
it is copied, so the tap costs nothing per data packet.

What it keeps per port, the instant and bytes of the last LACPDU, is what a promotion needs when
the owner died: a dead process may not have published its last PDUs, the wire has them.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import struct
import time
from dataclasses import dataclass

from teamd_shim.io.packets import ANC_SIZE, SO_TIMESTAMPNS, kernel_stamp
from teamd_shim.lacp.constants import ETH_P_SLOW

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
LACP_SUBTYPE = 1
SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE (linux/filter.h)

# classic BPF (linux/filter.h): A = pkttype; != OUTGOING -> drop; A = ethertype; != 0x8809 ->
# drop; A = subtype; != LACP -> drop; accept the whole frame
_BPF = [
    (0x30, 0, 0, SKF_AD_PKTTYPE),  # ldb [pkttype]
    (0x15, 0, 5, PACKET_OUTGOING),  # jeq OUTGOING ? next : drop
    (0x28, 0, 0, 12),  # ldh [12] ethertype
    (0x15, 0, 3, ETH_P_SLOW),  # jeq 0x8809 ? next : drop
    (0x30, 0, 0, 14),  # ldb [14] subtype
    (0x15, 0, 1, LACP_SUBTYPE),  # jeq 1 ? next : drop
    (0x06, 0, 0, 0x40000),  # ret whole frame
    (0x06, 0, 0, 0),  # ret 0: drop
]


@dataclass(frozen=True, slots=True)
class WireTx:
    at: float  # CLOCK_MONOTONIC of the kernel's stamp
    frame: bytes


def _attach_filter(sock: socket.socket) -> None:
    insns = b"".join(struct.pack("HBBI", *i) for i in _BPF)
    buf = ctypes.create_string_buffer(insns)
    prog = struct.pack("HL", len(_BPF), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)


def _monotonic_of(stamp_ns: int) -> float:
    """A kernel stamp (CLOCK_REALTIME ns) as CLOCK_MONOTONIC seconds, the core's clock."""
    return stamp_ns / 1e9 - (time.time() - time.monotonic())


class WireTap:
    """The last LACPDU sent on each port of this namespace, by any process."""

    def __init__(self) -> None:
        self.last: dict[str, WireTx] = {}
        self.seen = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            _attach_filter(s)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        self._sock, self._loop = s, loop
        loop.add_reader(s.fileno(), self._readable)

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(256):
            try:
                frame, anc, _flags, addr = sock.recvmsg(2048, ANC_SIZE)
            except BlockingIOError:
                return
            except OSError as e:
                log.warning("wire tap: recv failed: %s", e)
                return
            stamp = kernel_stamp(anc)
            at = _monotonic_of(stamp) if stamp else time.monotonic()
            self.last[addr[0]] = WireTx(at, frame)
            self.seen += 1

"""A netdev's speed and duplex, as teamd's ethtool link watch reports them in its state dump.

SIOCETHTOOL with ETHTOOL_GSET on a socket of this process's network namespace (where the
member netdevs are), so it works in a container or `ip netns` alike; no sysfs, whose view may
be of another namespace.
"""

from __future__ import annotations

import array
import fcntl
import socket
import struct

SIOCETHTOOL = 0x8946
ETHTOOL_GSET = 0x1
_CMD = struct.Struct("=IIIHBBBBBBIIHBBI8x")  # struct ethtool_cmd (linux/ethtool.h), 44 bytes
SPEED_UNKNOWN = 0xFFFFFFFF
DUPLEX = {0: "half", 1: "full"}


def speed_duplex(ifname: str) -> tuple[int, str]:
    """(Mb/s, "full"|"half"|"unknown"); (0, "unknown") when the driver cannot tell or the
    call fails (no such netdev, no ethtool support)."""
    buf = array.array("B", _CMD.pack(ETHTOOL_GSET, *([0] * 15)))
    addr, _ = buf.buffer_info()
    ifr = struct.pack("16sP", ifname.encode()[:15], addr)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
    except OSError:
        return 0, "unknown"
    fields = _CMD.unpack(buf.tobytes())
    speed = (fields[12] << 16) | fields[3]
    if speed in (SPEED_UNKNOWN, 0xFFFF):
        speed = 0
    return speed, DUPLEX.get(fields[4], "unknown")

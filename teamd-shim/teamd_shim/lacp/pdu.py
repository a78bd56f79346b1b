"""LACPDU codec: 124-byte Ethernet frames <-> immutable records.

The decoder is the only place untrusted bytes enter the core, so it must reject anything
malformed with ``PduError`` (and nothing else), and it must be cheap: it runs for every PDU of
every port. One precompiled ``struct`` covers the whole fixed layout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from teamd_shim.lacp.constants import (
    ETH_P_SLOW,
    FRAME_LEN,
    LACP_VERSION,
    RETRY_VERSION,
    SLOW_PROTOCOLS_MAC,
    SUBTYPE_LACP,
    SUBTYPE_MARKER,
)

__all__ = [
    "Lacpdu",
    "Marker",
    "NotLacpError",
    "PduError",
    "PortInfo",
    "TruncatedPduError",
    "decode_frame",
    "decode_marker",
    "encode_frame",
    "encode_marker",
    "encode_marker_response",
    "mac_str",
    "parse_mac",
]


class PduError(ValueError):
    """A frame that is not a well-formed LACPDU; the message says which check failed."""


class TruncatedPduError(PduError):
    """A LACPDU or Marker PDU cut short; counted apart from other bad PDUs (a short frame
    usually means a broken link or a bad driver, a wrong field a broken partner)."""


class NotLacpError(PduError):
    """A well-formed Slow Protocols frame of another subtype (e.g. a Marker PDU).

    Kept distinct because partners count markers separately from bad PDUs.
    """

    def __init__(self, subtype: int) -> None:
        super().__init__(f"slow protocols subtype {subtype} is not LACP")
        self.subtype = subtype


def mac_str(mac: bytes) -> str:
    """Render a MAC the way teamdctl and OVS print it (lower-case, colon separated)."""
    return ":".join(f"{b:02x}" for b in mac)


def parse_mac(text: str) -> bytes:
    """Parse ``aa:bb:cc:dd:ee:ff`` (or ``-`` separated); raises ValueError otherwise."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"not a MAC address: {text!r}") from None


def _check_u16(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} out of range: {value}")


@dataclass(frozen=True, slots=True)
class PortInfo:
    """One actor or partner information block (the 15 bytes both sides compare)."""

    system_priority: int
    system: bytes
    key: int
    port_priority: int
    port: int
    state: int

    def __post_init__(self) -> None:
        # Validate at construction so an out-of-range value fails where it is made, not later
        # inside struct.pack on the transmit path.
        if type(self.system) is not bytes or len(self.system) != 6:
            raise ValueError(f"system must be 6 bytes, got {self.system!r}")
        _check_u16("system_priority", self.system_priority)
        _check_u16("key", self.key)
        _check_u16("port_priority", self.port_priority)
        _check_u16("port", self.port)
        if not 0 <= self.state <= 0xFF:
            raise ValueError(f"state out of range: {self.state}")

    def with_state(self, state: int) -> PortInfo:
        return PortInfo(
            self.system_priority, self.system, self.key, self.port_priority, self.port, state
        )

    def to_dict(self) -> dict[str, Any]:
        """teamdctl's ``*_lacpdu_info`` field names, so dumps read like teamd's."""
        return {
            "system_priority": self.system_priority,
            "system": mac_str(self.system),
            "key": self.key,
            "port_priority": self.port_priority,
            "port": self.port,
            "state": self.state,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PortInfo:
        return cls(
            system_priority=int(d["system_priority"]),
            system=parse_mac(d["system"]),
            key=int(d["key"]),
            port_priority=int(d["port_priority"]),
            port=int(d["port"]),
            state=int(d["state"]),
        )


ZERO_INFO = PortInfo(0, bytes(6), 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Lacpdu:
    """The decoded content of a LACPDU (everything a receiver acts on).

    ``version`` is what the frame said (any value is accepted, as Linux and OVS do).
    ``RETRY_VERSION`` (0xf1) is SONiC's retry-count extension (hld §13.7): the two counts are
    set exactly when the version is 0xf1.
    """

    actor: PortInfo
    partner: PortInfo
    collector_max_delay: int = 0
    version: int = LACP_VERSION
    actor_retry_count: int | None = None
    partner_retry_count: int | None = None

    def __post_init__(self) -> None:
        _check_u16("collector_max_delay", self.collector_max_delay)
        if not 0 <= self.version <= 0xFF:
            raise ValueError(f"version out of range: {self.version}")
        counts = (self.actor_retry_count, self.partner_retry_count)
        if self.version == RETRY_VERSION:
            if not all(c is not None and 0 <= c <= 0xFF for c in counts):
                raise ValueError(f"a 0xf1 LACPDU needs both retry counts (0..255), got {counts}")
        elif counts != (None, None):
            raise ValueError(f"retry counts only exist in version 0xf1, got version {self.version}")


# dst, src, ethertype, subtype, version,
# actor tlv type/len, actor info, 3 reserved,
# partner tlv type/len, partner info, 3 reserved,
# collector tlv type/len, max delay, 12 reserved,
# then (v1) terminator type/len, 50 reserved
# or (0xf1) actor retry tlv 0x80/4, count, 1 reserved, partner retry tlv 0x81/4, count,
#           1 reserved, terminator type/len, 42 reserved.
_HEAD = "!6s6sHBB BBH6sHHHB3x BBH6sHHHB3x BBH12x"
_FRAME = struct.Struct(_HEAD + " BB50x")
_FRAME_F1 = struct.Struct(_HEAD + " BBBx BBBx BB42x")
assert _FRAME.size == FRAME_LEN == _FRAME_F1.size
_HEAD_FIELDS = 24  # fields of _HEAD

_ACTOR_TLV = (1, 20)
_PARTNER_TLV = (2, 20)
_COLLECTOR_TLV = (3, 16)
_TERMINATOR_TLV = (0, 0)
_ACTOR_RETRY_TLV = (0x80, 4)
_PARTNER_RETRY_TLV = (0x81, 4)


def encode_frame(src_mac: bytes, pdu: Lacpdu) -> bytes:
    """Build the exact 124-byte frame (no FCS, reserved bytes zero) every partner accepts;
    a 0xf1 PDU in SONiC's layout (hld §13.7)."""
    if type(src_mac) is not bytes or len(src_mac) != 6:
        raise ValueError(f"src_mac must be 6 bytes, got {src_mac!r}")
    a, p = pdu.actor, pdu.partner
    head = (
        SLOW_PROTOCOLS_MAC, src_mac, ETH_P_SLOW, SUBTYPE_LACP, pdu.version,
        *_ACTOR_TLV, a.system_priority, a.system, a.key, a.port_priority, a.port, a.state,
        *_PARTNER_TLV, p.system_priority, p.system, p.key, p.port_priority, p.port, p.state,
        *_COLLECTOR_TLV, pdu.collector_max_delay,
    )  # fmt: skip
    if pdu.version == RETRY_VERSION:
        return _FRAME_F1.pack(
            *head,
            *_ACTOR_RETRY_TLV,
            pdu.actor_retry_count,
            *_PARTNER_RETRY_TLV,
            pdu.partner_retry_count,
            *_TERMINATOR_TLV,
        )
    return _FRAME.pack(*head, *_TERMINATOR_TLV)


def decode_frame(frame: bytes) -> tuple[bytes, Lacpdu]:
    """Return ``(src_mac, pdu)`` or raise PduError (and nothing else).

    Checked: what OVS checks (subtype, actor and partner TLV type/length, hld §13.1). Not
    checked, as neither Linux nor OVS does: the version (0, 1, 2 or anything else are all read
    with the version-1 layout), the collector and terminator TLVs and what follows them
    (802.1AX-2014 adds TLVs there), the destination MAC and the reserved bytes; trailing bytes
    (padding, FCS) are ignored. Version 0xf1 must carry SONiC's two retry-count TLVs (hld
    §13.7), as patched teamd requires.
    """
    n = len(frame)
    if n < 15:
        raise TruncatedPduError(f"short frame: {n} bytes")
    ethertype = (frame[12] << 8) | frame[13]
    if ethertype != ETH_P_SLOW:
        raise PduError(f"ethertype 0x{ethertype:04x} is not slow protocols")
    subtype = frame[14]
    if subtype != SUBTYPE_LACP:
        raise NotLacpError(subtype)
    if n < FRAME_LEN:
        raise TruncatedPduError(f"truncated LACPDU: {n} bytes, need {FRAME_LEN}")
    f = _FRAME_F1.unpack_from(frame)
    version = f[4]
    if (f[5], f[6]) != _ACTOR_TLV:
        raise PduError(f"actor TLV type/length {f[5]}/{f[6]}")
    if (f[13], f[14]) != _PARTNER_TLV:
        raise PduError(f"partner TLV type/length {f[13]}/{f[14]}")
    # Every field is range-checked by the struct widths, so these constructors cannot fail.
    actor = PortInfo(*f[7:13])
    partner = PortInfo(*f[15:21])
    delay = f[23] if (f[21], f[22]) == _COLLECTOR_TLV else 0
    if version != RETRY_VERSION:
        return f[1], Lacpdu(actor, partner, delay, version)
    r = f[_HEAD_FIELDS:]
    if (r[0], r[1]) != _ACTOR_RETRY_TLV or (r[3], r[4]) != _PARTNER_RETRY_TLV:
        raise PduError(
            f"0xf1 LACPDU without the retry-count TLVs ({r[0]:#x}/{r[1]}, {r[3]:#x}/{r[4]})"
        )
    if (r[6], r[7]) != _TERMINATOR_TLV:
        raise PduError(f"0xf1 LACPDU terminator TLV type/length {r[6]}/{r[7]}")
    return f[1], Lacpdu(actor, partner, delay, version, r[2], r[5])


# Marker protocol (802.1AX §6.5, hld §13.1): dst, src, ethertype, subtype 2, version 1,
# marker TLV type (1 information, 2 response) / length 16, requester port, requester system,
# transaction id, 2 pad, terminator type/length, 90 reserved: 124 bytes like a LACPDU.
_MARKER = struct.Struct("!6s6sHBB BBH6sI2x BB90x")
assert _MARKER.size == FRAME_LEN
MARKER_INFORMATION = 1
MARKER_RESPONSE = 2


@dataclass(frozen=True, slots=True)
class Marker:
    """A Marker Information (a partner asking whether a link is drained) or a Response."""

    tlv_type: int
    requester_port: int
    requester_system: bytes
    transaction_id: int


def decode_marker(frame: bytes) -> Marker:
    """Decode a Slow Protocols subtype-2 frame or raise PduError (TruncatedPduError if short)."""
    if len(frame) < FRAME_LEN:
        raise TruncatedPduError(f"truncated Marker PDU: {len(frame)} bytes, need {FRAME_LEN}")
    f = _MARKER.unpack_from(frame)
    if f[2] != ETH_P_SLOW or f[3] != SUBTYPE_MARKER:
        raise PduError(f"not a Marker PDU (ethertype 0x{f[2]:04x}, subtype {f[3]})")
    if f[5] not in (MARKER_INFORMATION, MARKER_RESPONSE) or f[6] != 16:
        raise PduError(f"marker TLV type/length {f[5]}/{f[6]}")
    if (f[10], f[11]) != _TERMINATOR_TLV:
        raise PduError(f"terminator TLV type/length {f[10]}/{f[11]}")
    return Marker(f[5], f[7], f[8], f[9])


def encode_marker(src_mac: bytes, marker: Marker) -> bytes:
    """A Marker PDU (Information or Response, by `marker.tlv_type`) as 802.1AX lays it out."""
    if type(src_mac) is not bytes or len(src_mac) != 6:
        raise ValueError(f"src_mac must be 6 bytes, got {src_mac!r}")
    return _MARKER.pack(
        SLOW_PROTOCOLS_MAC, src_mac, ETH_P_SLOW, SUBTYPE_MARKER, 1,
        marker.tlv_type, 16, marker.requester_port, marker.requester_system,
        marker.transaction_id, *_TERMINATOR_TLV,
    )  # fmt: skip


def encode_marker_response(src_mac: bytes, info: Marker) -> bytes:
    """The Marker Response to a Marker Information: the same requester fields, TLV type 2
    (what Linux bonding's marker responder sends)."""
    return encode_marker(
        src_mac,
        Marker(MARKER_RESPONSE, info.requester_port, info.requester_system, info.transaction_id),
    )

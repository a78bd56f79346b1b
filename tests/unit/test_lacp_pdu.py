"""LACPDU codec: exact layout, strict rejection, real Open vSwitch frames."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from teamd_shim.lacp import (
    ETH_P_SLOW,
    FRAME_LEN,
    SLOW_PROTOCOLS_MAC,
    SYNC,
    TIMEOUT,
    Lacpdu,
    NotLacpError,
    PduError,
    PortInfo,
    decode_frame,
    encode_frame,
    mac_str,
    parse_mac,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "ovs_lacpdus.json"
SRC = bytes.fromhex("020000000201")
ACTOR = PortInfo(0x1234, bytes.fromhex("0a0b0c0d0e0f"), 0x5678, 0x9ABC, 0xDEF0, 0x3F)
PARTNER = PortInfo(0x0102, bytes.fromhex("111213141516"), 0x0304, 0x0506, 0x0708, 0xC5)

u16 = st.integers(0, 0xFFFF)
infos = st.builds(
    PortInfo,
    system_priority=u16,
    system=st.binary(min_size=6, max_size=6),
    key=u16,
    port_priority=u16,
    port=u16,
    state=st.integers(0, 0xFF),
)
pdus = st.builds(Lacpdu, actor=infos, partner=infos, collector_max_delay=u16)


def good_frame() -> bytes:
    return encode_frame(SRC, Lacpdu(ACTOR, PARTNER, 7))


def patched(frame: bytes, offset: int, value: int) -> bytes:
    b = bytearray(frame)
    b[offset] = value
    return bytes(b)


def test_layout_matches_reference_table():
    f = good_frame()
    assert len(f) == FRAME_LEN == 124
    assert f[0:6] == SLOW_PROTOCOLS_MAC == bytes.fromhex("0180c2000002")
    assert f[6:12] == SRC
    assert struct.unpack_from("!H", f, 12)[0] == ETH_P_SLOW == 0x8809
    assert f[14:18] == bytes([1, 1, 1, 20])
    assert struct.unpack_from("!H6sHHHB", f, 18) == (
        0x1234, ACTOR.system, 0x5678, 0x9ABC, 0xDEF0, 0x3F)  # fmt: skip
    assert f[33:36] == bytes(3)
    assert f[36:38] == bytes([2, 20])
    assert struct.unpack_from("!H6sHHHB", f, 38) == (
        0x0102, PARTNER.system, 0x0304, 0x0506, 0x0708, 0xC5)  # fmt: skip
    assert f[53:56] == bytes(3)
    assert f[56:58] == bytes([3, 16])
    assert struct.unpack_from("!H", f, 58)[0] == 7
    assert f[60:72] == bytes(12)
    assert f[72:74] == bytes([0, 0])
    assert f[74:] == bytes(50)


def test_round_trip_every_field():
    src, pdu = decode_frame(good_frame())
    assert src == SRC
    assert pdu == Lacpdu(ACTOR, PARTNER, 7)
    assert pdu.actor.system_priority == 0x1234 and pdu.partner.state == 0xC5


def test_longer_frames_are_accepted():
    f = good_frame()
    assert decode_frame(f + bytes(4)) == decode_frame(f)  # FCS
    assert decode_frame(f + b"\xff" * 100) == decode_frame(f)
    assert decode_frame(bytearray(f)) == decode_frame(f)
    assert decode_frame(memoryview(f)) == decode_frame(f)


def test_reserved_bytes_and_destination_are_not_checked():
    f = patched(patched(good_frame(), 33, 0xFF), 100, 0xFF)
    f = patched(f, 0, 0x02)
    assert decode_frame(f)[1] == decode_frame(good_frame())[1]


@pytest.mark.parametrize("length", range(FRAME_LEN))
def test_every_truncation_is_rejected(length):
    with pytest.raises(PduError):
        decode_frame(good_frame()[:length])


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (12, 0x08, "ethertype"),
        (13, 0x00, "ethertype"),
        (15, 0, "version"),
        (16, 2, "actor"),
        (17, 19, "actor"),
        (17, 21, "actor"),
        (36, 1, "partner"),
        (37, 0, "partner"),
        (56, 4, "collector"),
        (57, 20, "collector"),
        (72, 1, "terminator"),
        (73, 16, "terminator"),
    ],
)
def test_bad_header_fields_are_rejected_with_a_reason(offset, value, reason):
    with pytest.raises(PduError, match=reason) as exc:
        decode_frame(patched(good_frame(), offset, value))
    assert not isinstance(exc.value, NotLacpError)


def test_later_versions_are_accepted():
    assert decode_frame(patched(good_frame(), 15, 2))[1] == decode_frame(good_frame())[1]


def test_marker_is_a_distinct_error():
    marker = bytearray(FRAME_LEN)
    marker[0:6] = SLOW_PROTOCOLS_MAC
    marker[6:12] = SRC
    marker[12:14] = b"\x88\x09"
    marker[14:18] = bytes([2, 1, 1, 16])
    with pytest.raises(NotLacpError) as exc:
        decode_frame(bytes(marker))
    assert exc.value.subtype == 2
    assert isinstance(exc.value, PduError) and isinstance(exc.value, ValueError)
    # Even a truncated marker is recognised as "not LACP" rather than "bad LACP".
    with pytest.raises(NotLacpError):
        decode_frame(bytes(marker[:15]))


def test_garbage_is_rejected():
    for junk in (b"", b"\x00" * 200, b"\xff" * 124, bytes(range(124))):
        with pytest.raises(PduError):
            decode_frame(junk)


@given(pdus, st.binary(min_size=6, max_size=6))
def test_encode_decode_round_trip(pdu, src):
    frame = encode_frame(src, pdu)
    assert len(frame) == FRAME_LEN
    assert decode_frame(frame) == (src, pdu)
    assert encode_frame(*decode_frame(frame)) == frame


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_pdu_error(junk):
    try:
        decode_frame(junk)
    except PduError:
        pass


@given(st.binary(min_size=FRAME_LEN, max_size=FRAME_LEN), st.integers(0, 0xFF))
def test_arbitrary_slow_protocol_bytes_raise_only_pdu_error(junk, subtype):
    frame = junk[:12] + b"\x88\x09" + bytes([subtype]) + junk[15:]
    try:
        src, pdu = decode_frame(frame)
    except PduError:
        return
    # Accepted only with the exact TLV headers; then every field survives re-encoding.
    assert frame[14] == 1 and frame[16:18] == b"\x01\x14" and frame[36:38] == b"\x02\x14"
    assert decode_frame(encode_frame(src, pdu)) == (src, pdu)


def test_port_info_validates_ranges():
    with pytest.raises(ValueError):
        PortInfo(0x10000, bytes(6), 0, 0, 0, 0)
    with pytest.raises(ValueError):
        PortInfo(0, bytes(5), 0, 0, 0, 0)
    with pytest.raises(ValueError):
        PortInfo(0, bytes(6), 0, 0, 0, 256)
    with pytest.raises(ValueError):
        encode_frame(b"\x00" * 5, Lacpdu(ACTOR, PARTNER))


def test_port_info_dict_round_trip():
    assert PortInfo.from_dict(ACTOR.to_dict()) == ACTOR
    assert ACTOR.to_dict()["system"] == "0a:0b:0c:0d:0e:0f"


def test_mac_helpers():
    assert mac_str(bytes.fromhex("0200000000bb")) == "02:00:00:00:00:bb"
    assert parse_mac("02:00:00:00:00:BB") == bytes.fromhex("0200000000bb")
    assert parse_mac("2-0-0-0-0-bb") == bytes.fromhex("0200000000bb")
    for bad in ("", "02:00:00:00:00", "02:00:00:00:00:00:00", "zz:00:00:00:00:00", "020:0:0:0:0:0"):
        with pytest.raises(ValueError):
            parse_mac(bad)


# ---- real frames captured from Open vSwitch 3.1 (see tests/data/capture_ovs_lacpdus.py) ----

CAPTURE = json.loads(DATA.read_text())
OVS_FRAMES = [(kind, f) for kind in ("unnegotiated", "negotiated") for f in CAPTURE[kind]]


def test_capture_has_both_kinds():
    assert CAPTURE["unnegotiated"] and CAPTURE["negotiated"]


@pytest.mark.parametrize(("kind", "entry"), OVS_FRAMES, ids=[k for k, _ in OVS_FRAMES])
def test_ovs_frames_decode_and_reencode_identically(kind, entry):
    frame = bytes.fromhex(entry["hex"])
    src, pdu = decode_frame(frame)
    assert mac_str(src) == CAPTURE["ovs_port_macs"][entry["ovs_port"]] == entry["src"]
    assert encode_frame(src, pdu) == frame[:FRAME_LEN]
    assert len(frame) == FRAME_LEN
    # OVS's identity: the pinned bridge hwaddr, priority 65534 (bond of two), fast timeout.
    assert mac_str(pdu.actor.system) == CAPTURE["bridge_hwaddr"] == "02:00:00:00:00:bb"
    assert pdu.actor.system_priority == 65534
    assert pdu.actor.port == int(entry["ovs_port"][1:])
    assert pdu.actor.state & TIMEOUT
    assert pdu.actor == PortInfo.from_dict(entry["actor"])
    assert pdu.partner == PortInfo.from_dict(entry["partner"])
    if kind == "unnegotiated":
        # OVS keeps an expired member attached (Sync set); a defaulted one is detached.
        assert pdu.actor.state in (0xBF, 0x77)
        assert bool(pdu.actor.state & SYNC) == bool(pdu.actor.state & 0x80)
        assert pdu.partner.system == bytes(6) and pdu.partner.key == 0
    else:
        assert pdu.actor.state == 0x3F
        assert mac_str(pdu.partner.system) == CAPTURE["our_system"]
        assert pdu.partner.key == CAPTURE["our_key"]
        assert pdu.partner.state == 0x3F

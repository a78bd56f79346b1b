"""LACPDU codec: exact layout, strict rejection, real Open vSwitch frames."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teamd_shim.lacp import (
    ETH_P_SLOW,
    FRAME_LEN,
    RETRY_VERSION,
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

DATA = Path(__file__).resolve().parents[2] / "data" / "ovs_lacpdus.json"
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
        (16, 2, "actor"),
        (17, 19, "actor"),
        (17, 21, "actor"),
        (36, 1, "partner"),
        (37, 0, "partner"),
    ],
)
def test_bad_header_fields_are_rejected_with_a_reason(offset, value, reason):
    with pytest.raises(PduError, match=reason) as exc:
        decode_frame(patched(good_frame(), offset, value))
    assert not isinstance(exc.value, NotLacpError)


@pytest.mark.parametrize("version", [0, 2, 3, 0x7F, 0xF0, 0xFF])
def test_any_version_is_read_with_the_version_1_layout(version):
    """Linux and OVS do not reject on the version (hld §13.1); neither do we."""
    pdu = decode_frame(patched(good_frame(), 15, version))[1]
    assert pdu == replace(decode_frame(good_frame())[1], version=version)


@pytest.mark.parametrize(("offset", "value"), [(56, 4), (57, 20), (72, 1), (73, 16)])
def test_collector_and_terminator_are_not_checked(offset, value):
    """802.1AX-2014 (version 2) puts more TLVs there; Linux and OVS ignore them too."""
    pdu = decode_frame(patched(good_frame(), offset, value))[1]
    assert (pdu.actor, pdu.partner) == (ACTOR, PARTNER)


# ---- SONiC's retry-count extension (hld §13.7) ----------------------------------------

RETRY = Lacpdu(ACTOR, PARTNER, 0, RETRY_VERSION, 5, 3)


def test_retry_count_layout_matches_sonic():
    f = encode_frame(SRC, RETRY)
    assert len(f) == FRAME_LEN and f[15] == 0xF1
    assert f[56:58] == b"\x03\x10"  # the collector TLV stays where it is
    assert f[72:82] == bytes([0x80, 4, 5, 0, 0x81, 4, 3, 0, 0, 0])
    assert f[82:] == bytes(42)
    assert decode_frame(f) == (SRC, RETRY)


def test_a_captured_sonic_retry_count_tail_decodes():
    """The tail of a real 0xf1 PDU saved by SONiC teamd (actor 3, partner 5)."""
    f = bytearray(encode_frame(SRC, Lacpdu(ACTOR, PARTNER, 0, RETRY_VERSION, 0, 0)))
    f[72:82] = bytes.fromhex("80040300810405000000")
    pdu = decode_frame(bytes(f))[1]
    assert (pdu.actor_retry_count, pdu.partner_retry_count) == (3, 5)


@pytest.mark.parametrize(("offset", "value"), [(72, 0x82), (73, 5), (76, 0x80), (77, 0), (81, 1)])
def test_a_0xf1_pdu_without_its_retry_tlvs_is_rejected(offset, value):
    with pytest.raises(PduError, match="0xf1"):
        decode_frame(patched(encode_frame(SRC, RETRY), offset, value))


def test_retry_counts_exist_only_in_version_0xf1():
    with pytest.raises(ValueError):
        Lacpdu(ACTOR, PARTNER, 0, 1, 5, 3)
    with pytest.raises(ValueError):
        Lacpdu(ACTOR, PARTNER, 0, RETRY_VERSION)


retry_pdus = st.builds(
    Lacpdu,
    actor=infos,
    partner=infos,
    collector_max_delay=u16,
    version=st.just(RETRY_VERSION),
    actor_retry_count=st.integers(0, 0xFF),
    partner_retry_count=st.integers(0, 0xFF),
)
any_version_pdus = st.builds(
    Lacpdu,
    actor=infos,
    partner=infos,
    collector_max_delay=u16,
    version=st.integers(0, 0xFF).filter(lambda v: v != RETRY_VERSION),
)


@given(st.one_of(retry_pdus, any_version_pdus), st.binary(min_size=6, max_size=6))
def test_every_version_round_trips(pdu, src):
    frame = encode_frame(src, pdu)
    assert len(frame) == FRAME_LEN and decode_frame(frame) == (src, pdu)


@given(st.binary(min_size=FRAME_LEN - 60, max_size=FRAME_LEN + 60), st.integers(0, 0xFF))
def test_arbitrary_versions_and_trailing_tlvs_raise_only_pdu_error(tail, version):
    head = bytearray(good_frame()[:72])
    head[15] = version
    try:
        decode_frame(bytes(head) + tail)
    except PduError:
        pass


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


def test_marker_layout_matches_802_1ax():
    """Built byte by byte from the standard's layout (hld §13.1), not by the encoder."""
    from teamd_shim.lacp import Marker, decode_marker, encode_marker

    system = bytes.fromhex("0200000000bb")
    payload = bytes([2, 1, 1, 16]) + (7).to_bytes(2, "big") + system
    payload += (0x01020304).to_bytes(4, "big") + bytes(2) + bytes([0, 0]) + bytes(90)
    by_hand = SLOW_PROTOCOLS_MAC + system + b"\x88\x09" + payload
    assert len(by_hand) == FRAME_LEN
    info = Marker(1, 7, system, 0x01020304)
    assert encode_marker(system, info) == by_hand
    assert decode_marker(by_hand) == info

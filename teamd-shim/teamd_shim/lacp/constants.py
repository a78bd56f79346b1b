"""LACP numbers shared by the codec and the machines (IEEE 802.1AX; hld §13.1-13.2).

Kept in one place so the codec, the machines and the tests agree on the exact values the
partner implementations (OVS, Linux bonding, teamd) use.
"""

from __future__ import annotations

from typing import Final

# Actor/partner state byte (bit 0 is the LSB).
ACTIVITY: Final = 0x01
TIMEOUT: Final = 0x02
AGGREGATION: Final = 0x04
SYNC: Final = 0x08
COLLECTING: Final = 0x10
DISTRIBUTING: Final = 0x20
DEFAULTED: Final = 0x40
EXPIRED: Final = 0x80

# Timers, in seconds.
FAST_PERIODIC: Final = 1.0
SLOW_PERIODIC: Final = 30.0
SHORT_TIMEOUT: Final = 3.0
LONG_TIMEOUT: Final = 90.0

# 802.1AX Aggregate_Wait_Time: a port selected for an aggregator waits this long before it
# attaches, so ports coming up together join together (Linux AD_AGGREGATOR_WAIT_TIME, 2 s).
AGGREGATE_WAIT: Final = 2.0

# The standard allows at most this many LACPDUs per FAST_PERIODIC per port.
TX_LIMIT: Final = 3

# Wire constants.
SLOW_PROTOCOLS_MAC: Final = bytes.fromhex("0180c2000002")
ETH_P_SLOW: Final = 0x8809
SUBTYPE_LACP: Final = 1
SUBTYPE_MARKER: Final = 2
LACP_VERSION: Final = 1
# SONiC's retry-count extension (hld §13.7): version 0xf1 with actor/partner retry-count TLVs.
RETRY_VERSION: Final = 0xF1
DEFAULT_RETRY_COUNT: Final = 3
# a plain LACPDU resets a partner's custom count only this long after its last 0xf1 with one
RETRY_COUNT_HOLD: Final = 60.0
# a count set at run time (`state item set runner.retry_count`) falls back to the configured
# one after count x this (teamd: 3 min per count)
RETRY_OVERRIDE_PER_COUNT: Final = 180.0
FRAME_LEN: Final = 124

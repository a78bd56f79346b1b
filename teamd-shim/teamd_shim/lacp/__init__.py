"""Sans-IO LACP core of teamd-shim: codec, per-port machines, aggregator selection.

Pure: no sockets, clocks, Redis or threads. Every entry point takes ``now`` (CLOCK_MONOTONIC
seconds) so that behaviour is deterministic and the whole state can move between processes.
"""

from teamd_shim.lacp.constants import (
    ACTIVITY,
    AGGREGATE_WAIT,
    AGGREGATION,
    COLLECTING,
    DEFAULTED,
    DISTRIBUTING,
    ETH_P_SLOW,
    EXPIRED,
    FAST_PERIODIC,
    FRAME_LEN,
    LONG_TIMEOUT,
    RETRY_VERSION,
    SHORT_TIMEOUT,
    SLOW_PERIODIC,
    SLOW_PROTOCOLS_MAC,
    SYNC,
    TIMEOUT,
)
from teamd_shim.lacp.lag import (
    Carrier,
    Intent,
    Lag,
    LoopbackDetected,
    Notice,
    PortEnable,
)
from teamd_shim.lacp.pdu import (
    Lacpdu,
    Marker,
    NotLacpError,
    PduError,
    PortInfo,
    decode_frame,
    decode_marker,
    encode_frame,
    encode_marker,
    encode_marker_response,
    mac_str,
    parse_mac,
)
from teamd_shim.lacp.port import MuxState, RxState, Selected
from teamd_shim.lacp.settings import LagSettings
from teamd_shim.lacp.views import PortView

__all__ = [
    "ACTIVITY",
    "AGGREGATE_WAIT",
    "AGGREGATION",
    "COLLECTING",
    "DEFAULTED",
    "DISTRIBUTING",
    "ETH_P_SLOW",
    "EXPIRED",
    "FAST_PERIODIC",
    "FRAME_LEN",
    "LONG_TIMEOUT",
    "RETRY_VERSION",
    "SHORT_TIMEOUT",
    "SLOW_PERIODIC",
    "SLOW_PROTOCOLS_MAC",
    "SYNC",
    "TIMEOUT",
    "Carrier",
    "Intent",
    "Lacpdu",
    "Lag",
    "LagSettings",
    "LoopbackDetected",
    "Marker",
    "Notice",
    "MuxState",
    "PortEnable",
    "PortView",
    "RxState",
    "Selected",
    "NotLacpError",
    "PduError",
    "PortInfo",
    "decode_frame",
    "decode_marker",
    "encode_marker",
    "encode_marker_response",
    "encode_frame",
    "mac_str",
    "parse_mac",
]

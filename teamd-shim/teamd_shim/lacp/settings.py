"""A PortChannel's admin configuration as the LACP core sees it (CONFIG_DB and teamd's config).

Its own module because the port machines, selection and the LAG object all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teamd_shim.lacp.constants import DEFAULT_RETRY_COUNT
from teamd_shim.lacp.pdu import mac_str, parse_mac


@dataclass
class LagSettings:
    """Admin configuration of one PortChannel (what CONFIG_DB and teamd's config give)."""

    name: str
    system: bytes
    key: int
    fast_rate: bool = True
    min_links: int = 1
    system_priority: int = 65535
    active: bool = True
    # 802.1AX Aggregate_Wait_Time is 2 s; teamd has no wait_while, hence 0 by default.
    aggregate_wait: float = 0.0
    # CONFIG_DB admin_status: down stops the LAG as teamd does (every port says goodbye, then
    # no LACPDU, no member enabled, carrier down); PDUs are still received
    admin_up: bool = True
    # SONiC's retry count (hld §13.7): the count we announce in 0xf1 PDUs (CONFIG_DB
    # `retry_count`, 3..10 like SONiC's CLI; 3 is the plain-LACP default)
    retry_count: int = DEFAULT_RETRY_COUNT
    # SONiC's LACP fallback (libteam patch 0003): a DEFAULTED port (no LACP partner heard)
    # is selectable and may collect/distribute without the partner's Sync
    fallback: bool = False

    def __post_init__(self) -> None:
        if type(self.system) is not bytes or len(self.system) != 6:
            raise ValueError(f"system must be 6 bytes, got {self.system!r}")
        for name in ("key", "system_priority"):
            if not 0 <= getattr(self, name) <= 0xFFFF:
                raise ValueError(f"{name} out of range: {getattr(self, name)}")
        if self.min_links < 0:
            raise ValueError(f"min_links must be >= 0, got {self.min_links}")
        if self.aggregate_wait < 0:
            raise ValueError(f"aggregate_wait must be >= 0, got {self.aggregate_wait}")
        if not DEFAULT_RETRY_COUNT <= self.retry_count <= 0xFF:
            raise ValueError(f"retry_count must be 3..255, got {self.retry_count}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "system": mac_str(self.system),
            "key": self.key,
            "fast_rate": self.fast_rate,
            "min_links": self.min_links,
            "system_priority": self.system_priority,
            "active": self.active,
            "aggregate_wait": self.aggregate_wait,
            "admin_up": self.admin_up,
            "retry_count": self.retry_count,
            "fallback": self.fallback,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LagSettings:
        return cls(
            name=str(d["name"]),
            system=parse_mac(d["system"]),
            key=int(d["key"]),
            fast_rate=bool(d["fast_rate"]),
            min_links=int(d["min_links"]),
            system_priority=int(d["system_priority"]),
            active=bool(d["active"]),
            aggregate_wait=float(d["aggregate_wait"]),
            admin_up=bool(d["admin_up"]),
            retry_count=int(d["retry_count"]),
            fallback=bool(d.get("fallback", False)),  # absent in snapshots of older versions
        )

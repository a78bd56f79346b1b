"""What the core shows of a port, typed: the one read-only view dumps, READY and tests use.

Typed like OVS's `struct lacp_slave_info` instead of a dict indexed by string, so a renamed
field is a type error where it is read, not a KeyError at run time. `control/state_items.py`
turns it into teamdctl's JSON (`to_dict` here is the core's own summary).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from teamd_shim.lacp.pdu import PortInfo


@dataclass(frozen=True, slots=True)
class PortView:
    state: str  # teamd's runner.state name: current, expired, defaulted, disabled
    selected: bool
    selection: str  # selected, standby, unselected
    aggregator_id: int
    aggregator_selected: bool
    enabled: bool  # collecting and distributing
    rx_state: str
    mux_state: str
    actor: PortInfo
    partner: PortInfo
    loopback: bool
    partner_retry_count: int
    counters: Mapping[str, int]  # port.COUNTERS

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "selected": self.selected,
            "selection": self.selection,
            "aggregator_id": self.aggregator_id,
            "aggregator_selected": self.aggregator_selected,
            "enabled": self.enabled,
            "rx_state": self.rx_state,
            "mux_state": self.mux_state,
            "actor": self.actor.to_dict(),
            "partner": self.partner.to_dict(),
            "loopback": self.loopback,
            "partner_retry_count": self.partner_retry_count,
            **self.counters,
        }

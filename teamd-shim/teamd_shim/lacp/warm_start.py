"""teamd's warm-start mode after a whole-switch warm reboot (hld §6.2), as data the Lag consults.

SONiC's libteam patch 0008 (`teamd -w -L <dir>`): a teamd stopped by SIGUSR1 saved the LAG's
carrier, each member's `enabled` and each member's last received LACPDU. Started warm, it keeps
the carrier up, and as each saved member's link comes up it feeds that member's saved PDU
through the normal receive path: the partner's info is back, the port current, selected and
collecting/distributing at once, so the first PDU it sends carries the state the partner last
heard (nothing for the partner to re-negotiate). Warm mode ends when every saved member was
handled or after 3 s (LACP_WARM_START_CARRIER_TIMEOUT); then the carrier follows the members
again. A saved carrier that was down means no warm mode at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

WARM_START_CARRIER_TIMEOUT_S = 3.0  # libteam patch 0008 LACP_WARM_START_CARRIER_TIMEOUT


@dataclass
class WarmStart:
    """What is still to restore: per saved member not handled yet, its saved PDU (absent: it
    was not enabled, or nothing current was saved for it)."""

    until: float
    unchecked: set[str] = field(default_factory=set)
    pending: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def begin(cls, members: Mapping[str, bool], pdus: Mapping[str, bytes], now: float) -> WarmStart:
        return cls(
            until=now + WARM_START_CARRIER_TIMEOUT_S,
            unchecked=set(members),
            pending={p: f for p, f in pdus.items() if members.get(p)},
        )

    def due(self, links_up: Iterable[str]) -> list[tuple[str, bytes]]:
        """Members whose link is up now and that were not handled yet: each is handled once,
        and those that were enabled give their saved PDU to feed (teamd reads it on link up)."""
        out = []
        for port in sorted(set(links_up) & self.unchecked):
            self.unchecked.discard(port)
            frame = self.pending.pop(port, None)
            if frame is not None:
                out.append((port, frame))
        return out

    def done(self, now: float) -> bool:
        return not self.unchecked or now >= self.until

    def to_dict(self) -> dict[str, Any]:
        return {
            "until": self.until,
            "unchecked": sorted(self.unchecked),
            "pending": {p: f.hex() for p, f in self.pending.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WarmStart:
        return cls(
            until=float(d["until"]),
            unchecked={str(p) for p in d["unchecked"]},
            pending={str(p): bytes.fromhex(f) for p, f in d["pending"].items()},
        )

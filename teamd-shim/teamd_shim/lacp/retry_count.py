"""SONiC's LACP retry-count extension (LACPDU version 0xf1, hld §13.7), apart from plain LACP.

SONiC's patched teamd announces how many missed PDUs its partner may tolerate before expiring it
(3 in plain LACP) and learns the partner's count. This is that extension's state and rules: the
feature switch (teamdctl `runner.enable_retry_count_feature`), a count set at run time and when
it lapses, and until when a plain PDU may not reset a partner's custom count. The LAG object
composes one `RetryCount`; all of it round-trips through `to_dict`, so a handover carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from teamd_shim.lacp.constants import (
    DEFAULT_RETRY_COUNT,
    RETRY_COUNT_HOLD,
    RETRY_OVERRIDE_PER_COUNT,
    RETRY_VERSION,
)
from teamd_shim.lacp.pdu import Lacpdu
from teamd_shim.lacp.port import Port, Selected
from teamd_shim.lacp.settings import LagSettings


@dataclass(slots=True)
class RetryCount:
    feature: bool = True
    override: tuple[int, float] | None = None  # (count, lapses at)
    hold_until: float | None = None

    def own(self, settings: LagSettings) -> int:
        """The count we announce: one set at run time while it lasts, else the configured one."""
        if not self.feature:
            return DEFAULT_RETRY_COUNT
        if self.override is not None:
            return self.override[0]
        return settings.retry_count

    def deadline(self) -> float | None:
        return None if self.override is None else self.override[1]

    def lapse(self, now: float) -> None:
        """teamd: a set count lapses after count x 3 min."""
        if self.override is not None and now >= self.override[1]:
            self.override = None

    def end_override(self) -> None:
        """teamd: a link coming up, or any port expiring, ends a set count."""
        self.override = None

    def check(self, count: int) -> None:
        """Refuse a count teamdctl may not set, before anything runs."""
        if not self.feature:
            raise ValueError(
                "the retry count feature is disabled (runner.enable_retry_count_feature is false)"
            )
        if not DEFAULT_RETRY_COUNT <= count <= 0xFF:
            raise ValueError(f"retry_count must be 3..255, got {count}")

    def set(self, count: int, now: float, settings: LagSettings) -> bool:
        """teamdctl `state item set runner.retry_count N`, once check() passed (the LAG checks
        before it runs its timers); True: announce it on the ports."""
        if count == self.own(settings):
            return False
        self.override = (count, now + count * RETRY_OVERRIDE_PER_COUNT)
        return True

    def set_feature(self, enabled: bool, ports: Iterable[Port]) -> None:
        """Off means plain LACP only: 0xf1 PDUs are read like any version, every count is 3."""
        if enabled == self.feature:
            return
        self.feature = enabled
        if not enabled:
            self.override = None
            self.hold_until = None
            for port in ports:
                port.partner_retry_count = DEFAULT_RETRY_COUNT
                if port.selected is Selected.SELECTED:
                    port.ntt = True

    @staticmethod
    def announce(ports: Iterable[Port]) -> None:
        """A new count of ours goes out at once, as 0xf1, on every selected port."""
        for port in ports:
            if port.selected is Selected.SELECTED:
                port.rx_version = RETRY_VERSION
                port.ntt = True

    def received(self, port: Port, pdu: Lacpdu, now: float) -> bool:
        """Patched teamd's receive rules; False: drop the PDU (a count below 3)."""
        if pdu.version == RETRY_VERSION and self.feature:
            count = pdu.actor_retry_count
            assert count is not None  # the codec guarantees it for 0xf1
            if count < DEFAULT_RETRY_COUNT:
                return False
            port.partner_retry_count = count
            if count != DEFAULT_RETRY_COUNT:
                self.hold_until = now + RETRY_COUNT_HOLD
        elif port.partner_retry_count != DEFAULT_RETRY_COUNT and (
            self.hold_until is not None and now < self.hold_until
        ):
            pass  # a plain PDU within 60 s of the last 0xf1 does not reset the count
        else:
            port.partner_retry_count = DEFAULT_RETRY_COUNT
        if pdu.version != port.rx_version:
            port.rx_version = pdu.version
            port.ntt = True  # acknowledge the change of version at once
        return True

    def partner_wrong(self, pdu: Lacpdu, settings: LagSettings) -> bool:
        """The partner has the wrong idea of our count: answer it at once (update_NTT)."""
        return (
            pdu.partner_retry_count is not None
            and self.feature
            and pdu.partner_retry_count != self.own(settings)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "override": None if self.override is None else list(self.override),
            "hold_until": self.hold_until,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RetryCount:
        override = d["override"]
        hold = d["hold_until"]
        return cls(
            feature=bool(d["feature"]),
            override=None if override is None else (int(override[0]), float(override[1])),
            hold_until=None if hold is None else float(hold),
        )

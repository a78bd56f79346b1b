"""The active's judgement of an owner record that no longer names it (hld §15.4).

Any container can write STATE_DB, so an owner record ahead of our epoch is not proof that we
were replaced. A real successor moved the epoch by CAS and then runs: its instance record is
alive and carries that very epoch. A record that names no such instance is forged (or left by
a bug). Left alone, it would fence every APPL_DB write of ours for good while we keep driving
the kernel and the wire. So after a grace period the active puts its own epoch back.

Pure: the caller reads the records, passes `now`, and acts on the verdict.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

# A successor's instance record follows its CAS within one heartbeat (1 s); a promotion's
# within a few ms. Three seconds leave room for a slow box, and the kernel and the wire are
# never blocked meanwhile: only APPL_DB writes wait, then land.
GRACE_S = 3.0
MAX_EPOCH = 2**53  # an epoch moves by one per handover; beyond this it is not one of ours


class Verdict(enum.Enum):
    OURS = "ours"  # the record names us at our epoch, or is behind it (the forward Lua fixes it)
    SUCCESSOR = "successor"  # a live instance holds that epoch: we were replaced for real
    SUSPECT = "suspect"  # nobody holds it yet: wait up to GRACE_S for its instance record
    FORGED = "forged"  # put our epoch back (CAS on the exact record seen)


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    why: str = ""


def parse_epoch(raw: str) -> int | None:
    """An epoch as we write them: decimal digits, below MAX_EPOCH; None for anything else."""
    if not raw.isdigit() or len(raw) > 16:
        return None
    value = int(raw)
    return value if value < MAX_EPOCH else None


class OwnerGuard:
    """Remembers since when the same suspect record has been seen."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._suspect: tuple[str, str] | None = None
        self._since = 0.0

    def judge(
        self,
        mine: int,
        record: Mapping[str, str],
        successor: Mapping[str, str],
        successor_alive: bool,
        now: float,
    ) -> Judgement:
        """`record`: the owner record as read; `successor`: the instance record of the owner
        it names (empty if none or if it names us)."""
        raw, owner = record.get("epoch", ""), record.get("owner", "")
        epoch = parse_epoch(raw)
        if not record or (
            epoch is not None and (epoch < mine or (epoch, owner) == (mine, self.name))
        ):
            self._suspect = None
            return Judgement(Verdict.OURS)
        seen = f"epoch {raw!r} owner {owner!r}"
        if epoch is None:
            return self._forged(f"{seen}: not an epoch (digits below 2^53)")
        if owner == self.name:
            return self._forged(f"{seen}: our name at an epoch we never took (we hold {mine})")
        if successor_alive and successor.get("epoch") == raw:
            self._suspect = None
            return Judgement(Verdict.SUCCESSOR, f"{owner} holds epoch {raw}")
        key = (raw, owner)
        if self._suspect != key:
            self._suspect, self._since = key, now
        if now - self._since < GRACE_S:
            return Judgement(Verdict.SUSPECT, f"{seen}: no live instance holds it yet")
        held = successor.get("epoch", "none") if successor else "no instance record"
        return self._forged(
            f"{seen}: no live instance holds that epoch for {GRACE_S:.0f} s "
            f"({owner!r}: {'alive' if successor_alive else 'not alive'}, epoch {held})"
        )

    def _forged(self, why: str) -> Judgement:
        self._suspect = None
        return Judgement(Verdict.FORGED, why)

"""How a handover ends: the outcome `warm-restart` prints and exits with, and the exceptions that
decide between its three endings (refused: nothing changed; rolled back: the old owner kept or got
back the LAGs; completed).

Separate from the controller so that the stages and the recovery can raise and fill them without
importing the controller that runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DONE, ROLLED_BACK, REFUSED = 0, 1, 2


@dataclass
class Outcome:
    code: int
    result: str  # completed | rolled_back | refused | nothing
    reason: str = ""
    run_id: str = ""
    old: str = ""
    new: str = ""
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    lags: dict[str, dict[str, Any]] = field(default_factory=dict)
    wall_s: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Refused(Exception):
    """Stop before anything changed (exit 2)."""


class Rollback(Exception):
    """Undo: the old owner stays or becomes active again (exit 1)."""


class RollbackIncomplete(RuntimeError):
    """A rollback that could not confirm the successor dead, so it did not resume the old
    owner; the message says what was left and what to do."""


class Deadline(Rollback):
    """A stage's deadline passed (as opposed to a failure seen before it)."""

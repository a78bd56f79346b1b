"""The roles of a shim instance and every legal move between them, pure (hld §6-§7).

Like the LACP core: no I/O, no clock of its own (every entry point takes ``now``), deadlines it
owns, and effects it returns for a thin driver (roles.py) to execute against Redis and the event
loop. Every legal transition is one row of ``TRANSITIONS``; an event with no row raises
``IllegalTransition`` naming the role, the event and what is legal there. A later supervisor
(a hot standby promoted when the active dies) adds rows, not a new machine.

active   transmits and owns the dataplane (holds the ownership epoch)
standby  receives and shadows the active's published state; sends nothing, writes nothing
yielded  handed over a final snapshot; writes nothing; keeps its periodic PDUs going until it
         knows another instance holds the epoch (PDU liveness, hld §7)
retired  handed over; exits without touching anything
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

AUTO_RESUME_S = 0.75  # a yielded owner resumes after this if nobody took over
RETIRE_WHEN_SUPERSEDED_S = 10.0  # a superseded yielded owner leaves by itself after this


class Role(StrEnum):
    ACTIVE = "active"
    STANDBY = "standby"
    YIELDED = "yielded"
    RETIRED = "retired"


class Event(StrEnum):
    YIELD = "yield"  # SIGUSR1 / ctl yield: refresh every port, hand over a final snapshot
    FINAL_WRITTEN = "final_written"  # the final snapshot is in Redis
    FINAL_FAILED = "final_failed"  # it could not be written: nothing was handed over
    AUTO_RESUME_DUE = "auto_resume_due"  # our own deadline: nobody confirmed a takeover
    RESUMED = "resumed"  # our compare-and-set (auto or forced) won the epoch
    SUPERSEDED = "superseded"  # our compare-and-set lost: another instance holds the epoch
    UNREACHABLE = "unreachable"  # Redis did not answer our compare-and-set
    TAKEN_OVER = "taken_over"  # a standby's compare-and-set won the epoch
    RETIRE = "retire"  # ctl retire, or the superseded deadline
    RETIRE_DUE = "retire_due"


# (role, event) -> the role after it. Events that change no role but are legal are rows too.
TRANSITIONS: dict[tuple[Role, Event], Role] = {
    (Role.ACTIVE, Event.YIELD): Role.YIELDED,
    (Role.YIELDED, Event.FINAL_WRITTEN): Role.YIELDED,
    (Role.YIELDED, Event.FINAL_FAILED): Role.ACTIVE,
    (Role.YIELDED, Event.AUTO_RESUME_DUE): Role.YIELDED,
    (Role.YIELDED, Event.RESUMED): Role.ACTIVE,
    (Role.YIELDED, Event.SUPERSEDED): Role.YIELDED,
    (Role.YIELDED, Event.UNREACHABLE): Role.YIELDED,
    (Role.YIELDED, Event.RETIRE): Role.RETIRED,
    (Role.YIELDED, Event.RETIRE_DUE): Role.RETIRED,
    (Role.STANDBY, Event.TAKEN_OVER): Role.ACTIVE,
    (Role.STANDBY, Event.RETIRE): Role.RETIRED,
    # a late answer to a compare-and-set we no longer wait for: nothing changes
    (Role.ACTIVE, Event.RESUMED): Role.ACTIVE,
    (Role.ACTIVE, Event.SUPERSEDED): Role.ACTIVE,
    (Role.ACTIVE, Event.UNREACHABLE): Role.ACTIVE,
    (Role.ACTIVE, Event.AUTO_RESUME_DUE): Role.ACTIVE,
    (Role.RETIRED, Event.RETIRE): Role.RETIRED,
    (Role.RETIRED, Event.RETIRE_DUE): Role.RETIRED,
}


class IllegalTransition(RuntimeError):
    """An event the current role has no row for; the message lists the legal ones."""


# ---- effects: what the driver must do ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CompareAndSetSelf:
    """Try to move the epoch from ours to ours + 1 with ourselves as owner (auto-resume)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class ResumeLocal:
    """Become the owner again here: sync the dataplane, service every LAG."""


@dataclass(frozen=True, slots=True)
class Exit:
    """Leave without touching the dataplane, the links or the DB state."""


Effect = CompareAndSetSelf | ResumeLocal | Exit


class RoleMachine:
    """One instance's role, epoch and role deadlines; see the module docstring."""

    def __init__(self, role: Role, epoch: int | None = None) -> None:
        self.role = role
        self.epoch = epoch
        self.yielded_at: float | None = None
        self.final_written = False
        self.superseded = False
        self.auto_resume_at: float | None = None
        self.retire_at: float | None = None
        self.history: list[tuple[float, Role, Event, Role]] = []

    # ---- queries ---------------------------------------------------------------------------
    @property
    def owns_dataplane(self) -> bool:
        return self.role is Role.ACTIVE

    def transmits(self, keepalive_due: bool) -> bool:
        """The active always; a yielded instance only its due periodic PDUs, until it knows it
        was superseded (PDU liveness never waits for Redis)."""
        if self.role is Role.ACTIVE:
            return True
        return self.role is Role.YIELDED and keepalive_due and not self.superseded

    def next_deadline(self) -> float | None:
        ds = [d for d in (self.auto_resume_at, self.retire_at) if d is not None]
        return min(ds) if ds else None

    def legal(self) -> list[Event]:
        return [e for (r, e) in TRANSITIONS if r is self.role]

    # ---- events ----------------------------------------------------------------------------
    def on_timer(self, now: float) -> list[Effect]:
        """Fire the deadlines that are due at `now` (each at most once)."""
        out: list[Effect] = []
        if self.auto_resume_at is not None and now >= self.auto_resume_at:
            self.auto_resume_at = None
            out += self.handle(Event.AUTO_RESUME_DUE, now)
        if self.retire_at is not None and now >= self.retire_at:
            self.retire_at = None
            out += self.handle(Event.RETIRE_DUE, now)
        return out

    def handle(self, event: Event, now: float, *, epoch: int | None = None) -> list[Effect]:
        before = self.role
        after = TRANSITIONS.get((before, event))
        if after is None:
            raise IllegalTransition(
                f"{event.value} is not legal for a {before.value} instance (legal: "
                f"{', '.join(e.value for e in self.legal()) or 'nothing'})")
        effects = self._enter(before, event, now, epoch)
        self.role = after
        self.history.append((now, before, event, after))
        return effects

    def _enter(self, before: Role, event: Event, now: float, epoch: int | None) -> list[Effect]:
        if event is Event.YIELD:
            self.yielded_at, self.final_written, self.superseded = now, False, False
            return []
        if event is Event.FINAL_WRITTEN:
            self.final_written = True
            self.auto_resume_at = now + AUTO_RESUME_S
            return []
        if event is Event.FINAL_FAILED:
            self.yielded_at = None
            return [ResumeLocal()]
        if event is Event.AUTO_RESUME_DUE:
            if before is not Role.YIELDED or self.epoch is None:
                return []
            return [CompareAndSetSelf(self.epoch)]
        if event is Event.RESUMED:
            if before is not Role.YIELDED:
                return []
            self.epoch = epoch if epoch is not None else self.epoch
            self.yielded_at, self.auto_resume_at, self.retire_at = None, None, None
            self.superseded = False
            return [ResumeLocal()]
        if event is Event.SUPERSEDED:
            if before is Role.YIELDED:
                self.superseded = True
                self.auto_resume_at = None
                self.retire_at = now + RETIRE_WHEN_SUPERSEDED_S
            return []
        if event is Event.UNREACHABLE:
            return []  # keep transmitting (liveness), wait for the orchestrator or Redis
        if event is Event.TAKEN_OVER:
            self.epoch = epoch
            return []
        if event in (Event.RETIRE, Event.RETIRE_DUE):
            self.auto_resume_at = self.retire_at = None
            return [] if before is Role.RETIRED else [Exit()]
        raise AssertionError(f"unhandled event {event}")  # pragma: no cover

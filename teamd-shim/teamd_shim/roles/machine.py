"""The roles of a shim instance and every legal move between them, pure (hld §6-§7).

Like the LACP core: no I/O, no clock of its own (every entry point takes ``now``), deadlines it
owns, and effects it returns for a thin driver (roles/driver.py) to execute against Redis and
the event loop. Every legal transition is one row of ``TRANSITIONS``; an event with no row raises
``IllegalTransition`` naming the role, the event and what is legal there. A later supervisor
(a hot standby promoted when the active dies, hld §14) is rows, not a new machine.

active   transmits and owns the dataplane (holds the ownership epoch)
standby  receives and shadows the active's published state; sends nothing, writes nothing
yielded  handed over a final snapshot; writes nothing; keeps its periodic PDUs going until it
         knows another instance holds the epoch (PDU liveness, hld §7)
retired  handed over; exits without touching anything
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

AUTO_RESUME_S = 0.75  # a yielded owner resumes after this if nobody took over
RETIRE_WHEN_SUPERSEDED_S = 10.0  # a superseded yielded owner leaves by itself after this
SHADOW_EVERY_S = 0.5  # how often the active publishes its state while a standby shadows
SHADOW_LEASE_S = 30.0  # shadow publishing stops unless renewed
# our own loop went this long without a heartbeat: a hot standby may have declared us hung
# (liveness.HANG_AFTER_S, which must stay above this) and promoted itself; until Redis confirms
# we still own the LAGs, we send nothing and write nothing (hld §14.3, the self-fence)
STALL_S = 0.25


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
    # a hot standby fenced the lost owner (epoch moved, or it is dead) and takes the LAGs
    # from the state it shadowed and the wire (hld §14); its confirmation is a takeover's
    PROMOTED = "promoted"
    # after a stall of our own loop (STALL_S): Redis says we still own the LAGs, or it does not
    # answer (nobody could have moved the epoch either), or another instance holds the epoch
    ALIVE_CONFIRMED = "alive_confirmed"
    FENCED = "fenced"


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
    (Role.STANDBY, Event.PROMOTED): Role.ACTIVE,
    (Role.STANDBY, Event.RETIRE): Role.RETIRED,
    # a late answer to a compare-and-set we no longer wait for: nothing changes
    (Role.ACTIVE, Event.RESUMED): Role.ACTIVE,
    (Role.ACTIVE, Event.SUPERSEDED): Role.ACTIVE,
    (Role.ACTIVE, Event.UNREACHABLE): Role.ACTIVE,
    (Role.ACTIVE, Event.AUTO_RESUME_DUE): Role.ACTIVE,
    (Role.ACTIVE, Event.ALIVE_CONFIRMED): Role.ACTIVE,
    (Role.ACTIVE, Event.FENCED): Role.RETIRED,
    (Role.RETIRED, Event.RETIRE): Role.RETIRED,
    (Role.RETIRED, Event.RETIRE_DUE): Role.RETIRED,
}


class IllegalTransition(RuntimeError):
    """An event the current role has no row for; the message lists the legal ones."""


# ---- effects: what the driver must do ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WriteFinal:
    """Hand over: take the final snapshot now (in the same loop step as the yield's refresh)
    and write it; FINAL_WRITTEN or FINAL_FAILED follows."""


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


@dataclass(frozen=True, slots=True)
class PublishShadow:
    """Publish our LACP state (not final) for the standby that follows it."""


@dataclass(frozen=True, slots=True)
class Confirmed:
    """After a takeover, every port that can transmit has sent its first PDU: say so (the
    orchestrator polls for it) and republish, which waited so as not to compete with them."""


@dataclass(frozen=True, slots=True)
class ConfirmAlive:
    """Our loop stalled: ask Redis whether we still own the LAGs (ALIVE_CONFIRMED or FENCED
    follows); nothing is sent or written meanwhile."""

    epoch: int


@dataclass(frozen=True, slots=True)
class ResumeAfterStall:
    """Still the owner after a stall: write what was decided meanwhile, send what is due."""


Effect = (
    WriteFinal
    | CompareAndSetSelf
    | ResumeLocal
    | Exit
    | PublishShadow
    | Confirmed
    | ConfirmAlive
    | ResumeAfterStall
)


@dataclass
class Confirmation:
    """A takeover's confirmation: the ports still to send their first PDU, and when each did.

    O(1) per PDU: right after a takeover every port sends within a few milliseconds, and
    anything slower here spreads those first PDUs out (measured: +0.4 s at 64 LAGs x 2)."""

    at: float
    awaiting: set[str]
    first_tx: dict[str, float] = field(default_factory=dict)
    done: bool = False


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
        self.shadow_at: float | None = None
        self.shadow_until = 0.0
        self.confirmation: Confirmation | None = None
        self.last_beat: float | None = None  # our own loop's last heartbeat (stall detection)
        self.suspect = False  # stalled, not yet confirmed the owner: silent and hands off
        self.history: list[tuple[float, Role, Event, Role]] = []

    # ---- queries ---------------------------------------------------------------------------
    @property
    def owns_dataplane(self) -> bool:
        return self.role is Role.ACTIVE and not self.suspect

    def transmits(self, keepalive_due: bool) -> bool:
        """The active always, but while it is suspect after a stall; a yielded instance only its
        due periodic PDUs, until it knows it was superseded (PDU liveness never waits for Redis)."""
        if self.role is Role.ACTIVE:
            return not self.suspect
        return self.role is Role.YIELDED and keepalive_due and not self.superseded

    def is_in(self, role: Role) -> bool:
        """For a check after an await, where the role may have changed meanwhile (a call, so
        that a type checker does not carry over what it knew before the await)."""
        return self.role is role

    @property
    def confirming(self) -> bool:
        """A takeover waits for first PDUs (checked once per PDU sent, so kept to one test)."""
        c = self.confirmation
        return c is not None and not c.done

    @property
    def confirmed(self) -> bool:
        return self.confirmation is not None and self.confirmation.done

    @property
    def takeover_at(self) -> float | None:
        return self.confirmation.at if self.confirmation is not None else None

    def next_deadline(self) -> float | None:
        ds = [d for d in (self.auto_resume_at, self.retire_at, self.shadow_at) if d is not None]
        return min(ds) if ds else None

    def legal(self) -> list[Event]:
        return [e for (r, e) in TRANSITIONS if r is self.role]

    # ---- the self-fence (hld §14.3) ----------------------------------------------------------
    def check_stall(self, now: float) -> list[Effect]:
        """Before anything that sends or writes, and at every heartbeat: an active whose loop
        went STALL_S without a heartbeat becomes suspect until Redis answers."""
        if (
            self.role is not Role.ACTIVE
            or self.suspect
            or self.last_beat is None
            or self.epoch is None
            or now - self.last_beat <= STALL_S
        ):
            return []
        self.suspect = True
        return [ConfirmAlive(self.epoch)]

    def note_beat(self, now: float) -> None:
        """A heartbeat went out (or would have: nobody watches)."""
        self.last_beat = now

    # ---- events ----------------------------------------------------------------------------
    def request_shadow(self, now: float, seconds: float = SHADOW_LEASE_S) -> list[Effect]:
        """A standby follows us: publish our state now and every SHADOW_EVERY_S while we are
        the active, until the lease ends (a standby renews it)."""
        # only ever extended: a watching hot standby's short renewals must not cut short a
        # longer lease a planned restart asked for
        self.shadow_until = max(self.shadow_until, now + seconds)
        if self.shadow_at is not None or self.role is not Role.ACTIVE:
            return []
        self.shadow_at = now + SHADOW_EVERY_S
        return [PublishShadow()]

    def note_tx(self, port: str, now: float) -> list[Effect]:
        """A PDU left `port` after the takeover."""
        c = self.confirmation
        if c is None or c.done:
            return []
        c.first_tx.setdefault(port, now)
        c.awaiting.discard(port)
        return self._maybe_confirmed(c)

    def note_port_silent(self, port: str) -> list[Effect]:
        """`port`'s link went down or it was removed right after a takeover: it will not
        transmit, so it is not waited for (else a link that is simply down would roll the
        handover back)."""
        c = self.confirmation
        if c is None or c.done or port not in c.awaiting:
            return []
        c.awaiting.discard(port)
        return self._maybe_confirmed(c)

    def _maybe_confirmed(self, c: Confirmation) -> list[Effect]:
        if c.awaiting:
            return []
        c.done = True
        return [Confirmed()]

    def on_timer(self, now: float) -> list[Effect]:
        """Fire the deadlines that are due at `now` (each at most once)."""
        out: list[Effect] = []
        if self.shadow_at is not None and now >= self.shadow_at:
            if self.role is Role.ACTIVE and now <= self.shadow_until:
                self.shadow_at = now + SHADOW_EVERY_S
                out.append(PublishShadow())
            else:
                self.shadow_at = None
        if self.auto_resume_at is not None and now >= self.auto_resume_at:
            self.auto_resume_at = None
            out += self.handle(Event.AUTO_RESUME_DUE, now)
        if self.retire_at is not None and now >= self.retire_at:
            self.retire_at = None
            out += self.handle(Event.RETIRE_DUE, now)
        return out

    def handle(
        self,
        event: Event,
        now: float,
        *,
        epoch: int | None = None,
        ports: frozenset[str] = frozenset(),
    ) -> list[Effect]:
        """`ports`, for TAKEN_OVER: the ports that can transmit, each awaited for its first
        PDU (the confirmation)."""
        before = self.role
        after = TRANSITIONS.get((before, event))
        if after is None:
            raise IllegalTransition(
                f"{event.value} is not legal for a {before.value} instance (legal: "
                f"{', '.join(e.value for e in self.legal()) or 'nothing'})"
            )
        effects = self._enter(before, event, now, epoch, ports)
        self.role = after
        self.history.append((now, before, event, after))
        return effects

    def _enter(
        self, before: Role, event: Event, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        """What entering the new role does: one handler per event, as the table has one row per
        legal (role, event)."""
        handler = _ENTRY.get(event)
        if handler is None:  # pragma: no cover
            raise AssertionError(f"unhandled event {event}")
        return handler(self, before, now, epoch, ports)

    def _on_yield(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        self.yielded_at, self.final_written, self.superseded = now, False, False
        return [WriteFinal()]

    def _on_final_written(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        self.final_written = True
        self.auto_resume_at = now + AUTO_RESUME_S
        return []

    def _on_final_failed(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        self.yielded_at = None
        return [ResumeLocal()]

    def _on_auto_resume_due(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        if before is not Role.YIELDED or self.epoch is None:
            return []
        return [CompareAndSetSelf(self.epoch)]

    def _on_resumed(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        if before is not Role.YIELDED:
            return []
        self.epoch = epoch if epoch is not None else self.epoch
        self.yielded_at, self.auto_resume_at, self.retire_at = None, None, None
        self.superseded = False
        return [ResumeLocal()]

    def _on_superseded(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        if before is Role.YIELDED:
            self.superseded = True
            self.auto_resume_at = None
            self.retire_at = now + RETIRE_WHEN_SUPERSEDED_S
        return []

    def _on_alive_confirmed(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        if not self.suspect:
            return []
        self.suspect, self.last_beat = False, now
        return [ResumeAfterStall()]

    def _on_fenced(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        self.suspect = False
        self.auto_resume_at = self.retire_at = self.shadow_at = None
        return [Exit()]

    def _on_unreachable(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        return []  # keep transmitting (liveness), wait for the orchestrator or Redis

    def _on_owner(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        """Taken over or promoted: the owner of `epoch`, confirmed once every port sent."""
        self.epoch = epoch
        self.confirmation = Confirmation(at=now, awaiting=set(ports))
        return self._maybe_confirmed(self.confirmation)  # nothing can transmit: done

    def _on_retire(
        self, before: Role, now: float, epoch: int | None, ports: frozenset[str]
    ) -> list[Effect]:
        self.auto_resume_at = self.retire_at = None
        return [] if before is Role.RETIRED else [Exit()]


_Entry = Callable[[RoleMachine, Role, float, int | None, frozenset[str]], list[Effect]]
_ENTRY: dict[Event, _Entry] = {
    Event.YIELD: RoleMachine._on_yield,
    Event.FINAL_WRITTEN: RoleMachine._on_final_written,
    Event.FINAL_FAILED: RoleMachine._on_final_failed,
    Event.AUTO_RESUME_DUE: RoleMachine._on_auto_resume_due,
    Event.RESUMED: RoleMachine._on_resumed,
    Event.SUPERSEDED: RoleMachine._on_superseded,
    Event.ALIVE_CONFIRMED: RoleMachine._on_alive_confirmed,
    Event.FENCED: RoleMachine._on_fenced,
    Event.UNREACHABLE: RoleMachine._on_unreachable,
    Event.TAKEN_OVER: RoleMachine._on_owner,
    Event.PROMOTED: RoleMachine._on_owner,
    Event.RETIRE: RoleMachine._on_retire,
    Event.RETIRE_DUE: RoleMachine._on_retire,
}

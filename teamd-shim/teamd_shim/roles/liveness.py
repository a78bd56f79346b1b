"""A hot standby's judgement of the owner it watches, and whether it may promote itself; pure.

The standby holds a connection to the owner's control socket (`watch`); the owner writes a
heartbeat line on it every HEARTBEAT_EVERY_S and a goodbye line when it leaves on purpose. The
kernel closes the connection when the owner's process dies, however it dies (SIGKILL, OOM, a
crash), in every runtime: the standby learns of a death within milliseconds, without Redis,
without the supervisor. A hang (SIGSTOP, `docker pause`, a stuck loop) shows as heartbeats that
stop while the connection stays open. hld §14 has the rules; this module is them, with `now`
as an argument, so they are tested with a fake clock (tests/unit/roles/test_liveness.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

HEARTBEAT_EVERY_S = 0.1  # the owner's heartbeat on every watch connection
# no heartbeat for this long: hung. The partner's gap is this plus at most one period, so a
# hang stays within the 1.5 s abort budget (hld §8); a false alarm (an owner merely slow) costs
# an unplanned but hitless handover, never a flap
HANG_AFTER_S = 0.35


class Loss(StrEnum):
    DIED = "died"  # the connection closed without a goodbye: the process is gone
    HUNG = "hung"  # connected, but no heartbeat for HANG_AFTER_S


@dataclass(frozen=True, slots=True)
class Beat:
    """One heartbeat line (the owner's own view of itself)."""

    name: str
    role: str
    epoch: int | None
    final_written: bool
    pid: int

    t: float = 0.0  # the owner's CLOCK_MONOTONIC when it sent this (the promotion's fence)

    def to_json(self) -> dict[str, Any]:
        return {
            "hb": self.name,
            "role": self.role,
            "epoch": self.epoch,
            "final": self.final_written,
            "pid": self.pid,
            "t": self.t,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Beat:
        return cls(
            name=str(d["hb"]),
            role=str(d["role"]),
            epoch=None if d.get("epoch") is None else int(d["epoch"]),
            final_written=bool(d.get("final")),
            pid=int(d.get("pid") or 0),
            t=float(d.get("t") or 0.0),
        )


@dataclass(frozen=True, slots=True)
class Target:
    """The owner a hot standby watches, as its instance record and the owner record name it."""

    name: str
    ctl: str
    pid: int
    pidns: str
    starttime: str
    epoch: int | None
    role: str = "active"


class Watch:
    """One watch connection's state: the last heartbeat and when it came (our clock)."""

    def __init__(self, target: Target, now: float) -> None:
        self.target = target
        self.since = now
        self.last_beat_at: float | None = None
        self.last: Beat | None = None

    def beat(self, beat: Beat, now: float) -> None:
        self.last, self.last_beat_at = beat, now

    @property
    def last_seen(self) -> float:
        """The owner's last sign of life, on its clock (= ours: one CLOCK_MONOTONIC per host):
        its last heartbeat's send time, else when we connected."""
        return self.last.t if self.last is not None and self.last.t else self.since

    @property
    def last_role(self) -> str:
        return self.last.role if self.last is not None else self.target.role

    def hung(self, now: float) -> bool:
        """No heartbeat for HANG_AFTER_S (counted from the connection while none came yet)."""
        ref = self.last_beat_at if self.last_beat_at is not None else self.since
        return now - ref > HANG_AFTER_S

    def left_in(self, now: float) -> float:
        """Seconds until `hung` would become true (the socket timeout of the next read)."""
        ref = self.last_beat_at if self.last_beat_at is not None else self.since
        return max(0.0, ref + HANG_AFTER_S - now)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a standby does about a lost owner: promote or not, and how it fences first."""

    promote: bool
    why: str
    cas: bool = False  # move the epoch in Redis first
    kill: bool = False  # then SIGKILL the old process (same pid namespace) and see it gone
    from_final: bool = False  # the old owner had yielded: take over from its final snapshot


def plan_promotion(
    loss: Loss,
    *,
    ready: bool,
    ready_detail: str,
    last_role: str,
    final_written: bool,
    redis_up: bool,
    can_kill: bool,
) -> Plan:
    """The fencing rules of hld §14.3, in order: nothing of ours reaches the wire, the kernel
    or APPL_DB before the old owner can no longer write (the epoch moved, or it is dead)."""
    if not ready:
        return Plan(False, f"not READY ({ready_detail}): no promotion; the supervisor cold-starts")
    if last_role not in ("active", "yielded"):
        return Plan(False, f"the watched instance was {last_role}, not the owner")
    from_final = last_role == "yielded" and final_written
    if not redis_up:
        if last_role != "active":
            # a takeover may have moved the epoch before Redis went away: we cannot tell
            return Plan(
                False,
                "redis unreachable and the lost owner had yielded: cannot tell "
                "whether another instance took over; no promotion",
            )
        if loss is Loss.DIED:
            return Plan(
                True,
                "died (connection closed), redis unreachable: certain death, "
                "promoting without the epoch (moved forward once redis answers)",
                kill=can_kill,
            )
        if can_kill:
            return Plan(
                True,
                "hung, redis unreachable: killed first, then promoting without the epoch",
                kill=True,
            )
        return Plan(
            False,
            "hung, redis unreachable and not in our pid namespace: cannot fence it, no promotion",
        )
    how = "from its final snapshot" if from_final else "from the shadowed state and the wire"
    fence = (
        "epoch moved, then killed"
        if can_kill
        else (
            "epoch moved (it exits without writing if it wakes: the self-fence)"
            if loss is Loss.HUNG
            else "epoch moved"
        )
    )
    return Plan(
        True,
        f"{loss.value}: {fence}, then promoted {how}",
        cas=True,
        kill=can_kill,
        from_final=from_final,
    )

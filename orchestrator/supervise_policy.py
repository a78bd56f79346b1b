"""What `warm-restart supervise` does next, decided from what runs; pure (hld §14.4).

The supervisor keeps the pair whole: one owner and one READY hot standby. It never promotes
anyone (the standby does that itself, within milliseconds, whether the supervisor lives or
not); it starts what is missing, backs off a crash loop, and cold-starts when there is no owner
and no standby that could take over. Its memory is `SupervisorState`, which lives in Redis
(`TEAMD_SUPERVISOR|teamd`), so a supervisor killed and started again carries on where the
last one was and starts no duplicate. Times are wall-clock seconds (they are persisted).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

PROMOTE_GRACE_S = 2.0  # no owner: a READY hot standby gets this long to promote itself
CRASH_WINDOW_S = 15.0  # something we started that dies this young, never READY, is a crash
CRASH_LIMIT = 3  # crashes in a row before backing off
BACKOFF_S = 30.0  # first back-off; doubles with every further crash, up to BACKOFF_MAX_S
BACKOFF_MAX_S = 300.0
READY_LIMIT_S = 60.0  # a hot standby not READY after this long is replaced


@dataclass(frozen=True, slots=True)
class InstanceView:
    """One live instance, as its STATE_DB record and the runtime show it."""

    name: str
    role: str
    ready: bool
    hot: bool
    promotion_refused: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class Observation:
    now: float
    owner: str  # the owner record's name ('' if none)
    owner_alive: bool
    live: tuple[InstanceView, ...]  # every live instance
    planned_run: str = ""  # a live `warm-restart teamd` holds the lock (its run id)
    # what we started that still runs by the runtime's account but has no live record yet
    starting: frozenset[str] = frozenset()
    taken: frozenset[str] = frozenset()  # every name with a record, live or dead
    owner_version: str = ""
    # the owner's own account of how it became the owner, if it promoted itself
    owner_promotion: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SupervisorState:
    """The supervisor's memory, persisted in Redis (see the module docstring)."""

    standby: str = ""  # the hot standby we started last
    standby_started: float = 0.0
    standby_was_ready: bool = False
    standby_handle: str = ""  # the runtime's handle (a pid for `process`)
    cold: str = ""  # the instance a cold start launched, until it owns the LAGs
    cold_handle: str = ""
    cold_started: float = 0.0
    crashes: int = 0  # in a row
    backoff_until: float = 0.0
    owner_lost_at: float = 0.0
    last_owner: str = ""
    seq: int = 0  # for standby names
    cold_starts: int = 0
    last_promotion: dict[str, str] = field(default_factory=dict)
    last_cold_start: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def to_fields(self) -> dict[str, str]:
        d = dataclasses.asdict(self)
        return {
            k: json.dumps(v)
            if isinstance(v, dict)
            else str(v)
            if not isinstance(v, bool)
            else ("true" if v else "false")
            for k, v in d.items()
        }

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> SupervisorState:
        kw: dict[str, Any] = {}
        for fld in dataclasses.fields(cls):
            raw = f.get(fld.name)
            if raw is None or raw == "":
                continue
            try:
                if fld.type == "bool":
                    kw[fld.name] = raw == "true"
                elif fld.type == "int":
                    kw[fld.name] = int(raw)
                elif fld.type == "float":
                    kw[fld.name] = float(raw)
                elif fld.type.startswith("dict"):
                    kw[fld.name] = {str(k): str(v) for k, v in json.loads(raw).items()}
                else:
                    kw[fld.name] = raw
            except (ValueError, AttributeError):
                continue  # a field of another shape: start that one afresh
        return cls(**kw)


# ---- actions --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StartStandby:
    name: str


@dataclass(frozen=True, slots=True)
class ColdStart:
    why: str


@dataclass(frozen=True, slots=True)
class Kill:
    name: str
    why: str


Action = StartStandby | ColdStart | Kill


def base_name(name: str) -> str:
    return name.split("~")[0] or "teamd"


def decide(
    obs: Observation, st: SupervisorState, base: str
) -> tuple[SupervisorState, list[Action]]:
    """The next state and what to do now; see the module docstring. First what happened since
    the last look (a promotion, the standby or a cold start living or dying), then what to do:
    nothing during a planned restart, keep the pair whole under a live owner, else promote or
    cold-start."""
    st = _note_promotion(obs, st)
    st = _track_standby(obs, st)
    st = _track_cold(obs, st)
    if obs.planned_run:
        return dataclasses.replace(
            st, note=f"planned restart {obs.planned_run} in progress: waiting"
        ), []
    hot = [i for i in obs.live if i.role == "standby" and (i.hot or i.name == st.standby)]
    if obs.owner_alive:
        return _keep_pair(obs, st, hot, base)
    return _owner_lost(obs, st, hot, base)


def _note_promotion(obs: Observation, st: SupervisorState) -> SupervisorState:
    """A promotion happened: the owner is the standby we kept. Known by the owner's own record
    of it (`promoted_*`), whenever that appears: the owner record moves at the fence, the
    promoted instance writes its record a few ms later, and a look in between must not make us
    miss the promotion for good (then nothing renames its container)."""
    if not (obs.owner_alive and obs.owner):
        return st
    promo = obs.owner_promotion
    if promo.get("from") and promo.get("at") != st.last_promotion.get("at"):
        st = dataclasses.replace(st, last_promotion={**promo, "to": obs.owner})
    if obs.owner != st.last_owner:
        st = dataclasses.replace(st, last_owner=obs.owner)
    return st


def _crash_backoff(
    st: SupervisorState, now: float, crashes: int, young: bool, who: str, when: str = ""
) -> tuple[float, str]:
    """After CRASH_LIMIT young deaths in a row, back off exponentially and say why."""
    if young and crashes >= CRASH_LIMIT:
        wait = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (crashes - CRASH_LIMIT))
        return now + wait, (
            f"{who} died {crashes} times in a row{when}: backing off "
            f"{wait:.0f} s (its log is next to its control socket)"
        )
    return st.backoff_until, st.note


def _track_standby(obs: Observation, st: SupervisorState) -> SupervisorState:
    """The standby we started: READY, dead young (a crash), or gone after a healthy life."""
    mine = next((i for i in obs.live if i.name == st.standby), None) if st.standby else None
    if mine is not None and mine.ready and not st.standby_was_ready:
        st = dataclasses.replace(st, standby_was_ready=True, crashes=0, backoff_until=0.0)
    if not st.standby or (mine is None and st.standby in obs.starting):
        return st  # none, or still starting (no record yet)
    if mine is None and obs.owner != st.standby:
        young = obs.now - st.standby_started < CRASH_WINDOW_S and not st.standby_was_ready
        crashes = st.crashes + 1 if young else 0
        backoff, note = _crash_backoff(
            st, obs.now, crashes, young, f"standby {st.standby}", " at start"
        )
        return dataclasses.replace(
            st, standby="", crashes=crashes, backoff_until=backoff, note=note
        )
    if obs.owner == st.standby:
        return dataclasses.replace(st, standby="")  # it is the owner now
    return st


def _track_cold(obs: Observation, st: SupervisorState) -> SupervisorState:
    """The instance a cold start launched: owner now, or dead (counted like a standby crash)."""
    if not st.cold:
        return st
    if obs.owner == st.cold and obs.owner_alive:
        return dataclasses.replace(st, cold="", cold_handle="")
    if st.cold in obs.starting or any(i.name == st.cold for i in obs.live):
        return st
    young = obs.now - st.cold_started < CRASH_WINDOW_S
    crashes = st.crashes + 1 if young else st.crashes
    backoff, note = _crash_backoff(st, obs.now, crashes, young, f"cold-started {st.cold}")
    return dataclasses.replace(
        st, cold="", cold_handle="", crashes=crashes, backoff_until=backoff, note=note
    )


def _keep_pair(
    obs: Observation, st: SupervisorState, hot: list[InstanceView], base: str
) -> tuple[SupervisorState, list[Action]]:
    """A live owner: exactly one hot standby of its version, READY in time, else a new one."""
    now = obs.now
    st = dataclasses.replace(st, owner_lost_at=0.0)
    ready = [i for i in hot if i.ready]
    keep = ready[0] if ready else (hot[0] if hot else None)
    actions: list[Action] = [
        Kill(extra.name, "a second hot standby") for extra in hot if extra is not keep
    ]
    if (
        keep is not None
        and keep.version
        and obs.owner_version
        and keep.version != obs.owner_version
    ):
        # after an upgrade the standby must be of the version it would take over as
        actions.append(
            Kill(keep.name, f"it runs version {keep.version}, the owner {obs.owner_version}")
        )
        return dataclasses.replace(
            st, note=f"replacing {keep.name} (version {keep.version})"
        ), actions
    if keep is not None:
        if keep.name != st.standby:
            st = dataclasses.replace(
                st, standby=keep.name, standby_started=now, standby_was_ready=keep.ready
            )  # adopted
        elif not keep.ready and now - st.standby_started > READY_LIMIT_S:
            actions.append(Kill(keep.name, f"not READY after {READY_LIMIT_S:.0f} s"))
            return dataclasses.replace(
                st, note=f"{keep.name} never became READY: replaced"
            ), actions
        note = (
            "pair whole: READY hot standby"
            if keep.ready
            else f"waiting for {keep.name} to be READY"
        )
        return dataclasses.replace(
            st, note=note if not st.note.startswith("standby ") or keep.ready else st.note
        ), actions
    if now < st.backoff_until:
        return st, actions
    if st.standby and st.standby in obs.starting:
        return dataclasses.replace(st, note=f"starting hot standby {st.standby}"), actions
    seq = st.seq + 1
    while f"{base}~s{seq}" in obs.taken or f"{base}~s{seq}" == obs.owner:
        seq += 1
    name = f"{base}~s{seq}"
    return dataclasses.replace(
        st,
        seq=seq,
        standby=name,
        standby_started=now,
        standby_was_ready=False,
        note=f"starting hot standby {name}",
    ), [*actions, StartStandby(name)]


def _owner_lost(
    obs: Observation, st: SupervisorState, hot: list[InstanceView], base: str
) -> tuple[SupervisorState, list[Action]]:
    """No live owner: leave a READY hot standby its grace to promote, else cold-start."""
    now = obs.now
    lost_at = st.owner_lost_at or now
    st = dataclasses.replace(st, owner_lost_at=lost_at)
    # a live active that the owner record does not name yet: a standby that promoted itself
    # while Redis was down moves the epoch forward once Redis answers, and its instance record
    # can arrive before that (a look in between). A cold start now would start a second active.
    active = [i for i in obs.live if i.role == "active"]
    if active:
        return dataclasses.replace(
            st,
            note=f"no owner record yet: {active[0].name} is active (its epoch moves "
            "forward once it reaches redis)",
        ), []
    waiting = [i for i in hot if i.ready and not i.promotion_refused]
    if waiting and now - lost_at < PROMOTE_GRACE_S:
        return dataclasses.replace(st, note=f"no owner: {waiting[0].name} is promoting"), []
    if now < st.backoff_until:
        return st, []
    if st.cold and (st.cold in obs.starting or any(i.name == st.cold for i in obs.live)):
        return dataclasses.replace(st, note=f"cold start: waiting for {st.cold}"), []
    refused = next((i.promotion_refused for i in hot if i.promotion_refused), "")
    why = (
        f"no live owner; the hot standby did not promote: {refused}"
        if refused
        else "no live owner and no READY hot standby"
        if not obs.owner or hot
        else f"owner {obs.owner} is not running and no hot standby exists"
    )
    return dataclasses.replace(
        st,
        cold_starts=st.cold_starts + 1,
        owner_lost_at=0.0,
        cold=base,
        cold_started=now,
        last_cold_start={"at": f"{now:.3f}", "why": why},
        note=f"cold start: {why}",
    ), [ColdStart(why)]

"""SONiC's warm-restart rows for the teamd container's processes, teammgrd and teamsyncd.

The shim does the job of both, so it keeps their rows as swss-common's WarmStart does
(`common/warm_restart.cpp`, hld §6.1): `show warm_restart state` lists them, and
`sonic-installer upgrade-docker teamd` deletes teamsyncd's `state` and then waits for it to
reach `reconciled`. A shim of ours never writes a row of its own name there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import redis

from teamd_shim.db.redis_decoded import hget
from teamd_shim.db.schema import ENABLE_KEY, SYSTEM_ENABLE_KEY, TEAMMGRD_KEY, TEAMSYNCD_KEY


class WarmState(StrEnum):
    """swss-common's WarmStart::WarmStartState names (the ones a teamd container uses)."""

    INITIALIZED = "initialized"
    RESTORED = "restored"
    REPLAYED = "replayed"
    RECONCILED = "reconciled"


@dataclass(frozen=True)
class WarmStartDecision:
    warm: bool
    restore_count: int


def decide(
    system_enable: str | None, teamd_enable: str | None, restore_count: str | None
) -> WarmStartDecision:
    """checkWarmStart: warm only if the system or the teamd knob is "true" AND the row already
    has a restore_count (none means STATE_DB was flushed: a cold boot); a warm start counts one
    more restore, a cold one writes 0."""
    enabled = "true" in (system_enable, teamd_enable)
    if not enabled or restore_count is None:
        return WarmStartDecision(False, 0)
    try:
        count = int(restore_count)
    except ValueError:
        count = 0
    return WarmStartDecision(True, count + 1)


def check_warm_start(r: redis.Redis) -> bool:
    """Both rows' bookkeeping at a start of the LAG service; True when this is a warm start
    (teamsyncd's state then goes to `initialized`, and `reconciled` once the LAGs are out)."""
    sys_on, teamd_on = hget(r, SYSTEM_ENABLE_KEY, "enable"), hget(r, ENABLE_KEY, "enable")
    warm = False
    for key in (TEAMMGRD_KEY, TEAMSYNCD_KEY):
        d = decide(sys_on, teamd_on, hget(r, key, "restore_count"))
        r.hset(key, "restore_count", str(d.restore_count))
        warm = warm or d.warm
    if warm:
        set_state(r, WarmState.INITIALIZED)
    return warm


def set_state(r: redis.Redis, state: WarmState) -> None:
    """teamsyncd's state (teammgrd writes only its restore_count, as SONiC's does)."""
    r.hset(TEAMSYNCD_KEY, "state", state.value)


def count_restore(r: redis.Redis) -> int:
    """A hitless restart is a warm restart of both processes: one more restore each."""
    r.hincrby(TEAMMGRD_KEY, "restore_count", 1)
    return int(r.hincrby(TEAMSYNCD_KEY, "restore_count", 1))

"""The orchestrator's records in STATE_DB: lock, SONiC warm-restart state, one record per run.

SONiC's rows of the teamd container's processes, `WARM_RESTART_TABLE|teammgrd` (restore_count)
and `|teamsyncd` (restore_count, state initialized -> restored -> replayed -> reconciled), follow
every run as `show warm_restart state` and sonic-installer read them (db/warm_restart.py); the
detailed record of each run is `WARM_RESTART_RUN|<run id>`, the last one's id in
`TEAMD_HITLESS_LAST_RUN|teamd`. The lock is `WARM_RESTART_LOCK|teamd`; a holder whose
process is gone is recovered, never silently overwritten.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from teamd_shim.db.ownership import client
from teamd_shim.db.redis_decoded import fields as redis_fields
from teamd_shim.db.redis_decoded import hget, hgetall
from teamd_shim.db.schema import (
    ENABLE_KEY,
    IMAGES_KEY,
    LAST_RUN_KEY,
    LOCK_KEY,
    RUN_PREFIX,
    STATE_DB_ID,
    TEAMSYNCD_KEY,
)
from teamd_shim.db.sonic_db import Endpoint
from teamd_shim.db.warm_restart import WarmState, count_restore
from teamd_shim.io.identity import host_id, proc_starttime, process_alive

# the keys are teamd_shim.db.schema's; re-exported, as before the schema, for the importers
__all__ = ["ENABLE_KEY", "IMAGES_KEY", "LOCK_KEY", "RUN_PREFIX", "Journal"]
TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

# the single retry layer for the orchestrator's Redis calls: short, so a dead Redis is reported
# within ~2 s instead of hanging a handover (redis-py's own retries are off in `client`)
edge_retry = retry(
    retry=retry_if_exception_type(TRANSIENT),
    stop=stop_after_delay(2.0),
    wait=wait_exponential_jitter(multiplier=0.05, max=0.4, jitter=0.02),
    reraise=True,
)

LOCK_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HGETALL', KEYS[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV))
return {}
"""


class LockHeld(RuntimeError):
    def __init__(self, holder: dict[str, str]) -> None:
        self.holder = holder
        super().__init__(
            f"another warm restart is running: run {holder.get('run_id', '?')} by pid "
            f"{holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"since {holder.get('since', '?')}"
        )


def holder_alive(holder: dict[str, str]) -> bool:
    """The lock holder's process still runs (identity.process_alive); one we cannot check
    from here (another host or pid namespace) is assumed alive: a lock is never stolen."""
    alive = process_alive(
        holder.get("host", ""), holder.get("pid", ""), holder.get("starttime", "")
    )
    return True if alive is None else alive


class Journal:
    def __init__(self, endpoint: Endpoint) -> None:
        self.r = client(endpoint, STATE_DB_ID)
        self._lock = self.r.register_script(LOCK_LUA)

    @edge_retry
    def ping(self) -> None:
        self.r.ping()

    @edge_retry
    def acquire(self, run_id: str) -> None:
        me = {
            "run_id": run_id,
            "pid": str(os.getpid()),
            "starttime": str(proc_starttime(os.getpid())),
            "host": host_id(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        args: list[str] = []
        for k, v in me.items():
            args += [k, v]
        res = self._lock(keys=[LOCK_KEY], args=args)
        if res:
            raise LockHeld(dict(zip(res[::2], res[1::2], strict=False)))

    @edge_retry
    def lock_holder(self) -> dict[str, str]:
        return hgetall(self.r, LOCK_KEY)

    @edge_retry
    def break_lock(self, run_id: str) -> None:
        """Remove the lock if `run_id` holds it: ours when our run ends, or a dead holder's
        after its run was recovered."""
        if self.r.hget(LOCK_KEY, "run_id") == run_id:
            self.r.delete(LOCK_KEY)

    @edge_retry
    def start_run(self, run_id: str, fields: dict[str, str]) -> int:
        """SONiC's checkWarmStart bookkeeping: restore_count + 1, state initialized."""
        count = count_restore(self.r)
        self.r.hset(TEAMSYNCD_KEY, "state", WarmState.INITIALIZED.value)
        self.r.hset(LAST_RUN_KEY, "last_run", run_id)
        self.r.hset(
            RUN_PREFIX + run_id,
            mapping=redis_fields(
                {
                    **fields,
                    "stage": "initialized",
                    "result": "running",
                    "t_initialized": f"{time.time():.3f}",
                }
            ),
        )
        return int(count)

    @edge_retry
    def stage(self, run_id: str, stage: str, sonic_state: str | None = None, **extra: str) -> None:
        pipe = self.r.pipeline()
        pipe.hset(
            RUN_PREFIX + run_id,
            mapping=redis_fields({"stage": stage, f"t_{stage}": f"{time.time():.3f}", **extra}),
        )
        if sonic_state:
            pipe.hset(TEAMSYNCD_KEY, "state", WarmState(sonic_state).value)
        pipe.execute()

    @edge_retry
    def finish(
        self, run_id: str, result: str, reason: str = "", summary: dict[str, Any] | None = None
    ) -> None:
        pipe = self.r.pipeline()
        pipe.hset(
            RUN_PREFIX + run_id,
            mapping={
                "result": result,
                "reason": reason,
                "t_finished": f"{time.time():.3f}",
                "summary": json.dumps(summary or {}),
            },
        )
        pipe.hset(TEAMSYNCD_KEY, "state", WarmState.RECONCILED.value)
        pipe.execute()

    @edge_retry
    def run(self, run_id: str) -> dict[str, str]:
        return hgetall(self.r, RUN_PREFIX + run_id)

    @edge_retry
    def last_run_id(self) -> str | None:
        return hget(self.r, LAST_RUN_KEY, "last_run")

    @edge_retry
    def warm_enabled(self) -> str | None:
        return hget(self.r, ENABLE_KEY, "enable")

    @edge_retry
    def set_warm_enabled(self, value: str | None) -> None:
        if value is None:
            self.r.hdel(ENABLE_KEY, "enable")
        else:
            self.r.hset(ENABLE_KEY, "enable", value)

    @edge_retry
    def images(self) -> dict[str, str]:
        return hgetall(self.r, IMAGES_KEY)

    @edge_retry
    def set_images(self, current: str, current_ref: str, previous: str, previous_ref: str) -> None:
        self.r.hset(
            IMAGES_KEY,
            mapping={
                "current": current,
                "current_ref": current_ref,
                "previous": previous,
                "previous_ref": previous_ref,
                "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )

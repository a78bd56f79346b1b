"""Who owns the LAGs, and the state one owner hands to the next, kept in STATE_DB.

Ownership is an epoch: a counter in `TEAMD_OWNER_TABLE|teamd` that only moves forward through an
atomic compare-and-set (one Lua script). Becoming active means winning that CAS; the dataplane
writes to Redis are fenced by the same epoch inside Redis (see `fenced_producer_lua`), so an
owner that lost the epoch cannot write APPL_DB even if it does not know yet that it lost.

These calls block on Redis, so the daemon runs them in a worker thread, never on its loop.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from teamd_shim.db import sonic_db
from teamd_shim.db.redis_decoded import fields as redis_fields
from teamd_shim.db.redis_decoded import hget, hgetall, keys

# the keys live in schema.py; these names are re-exported for the modules that import them here
from teamd_shim.db.schema import FINAL_PREFIX as FINAL_PREFIX
from teamd_shim.db.schema import INSTANCE_PREFIX as INSTANCE_PREFIX
from teamd_shim.db.schema import LOCK_KEY as LOCK_KEY
from teamd_shim.db.schema import OWNER_KEY as OWNER_KEY
from teamd_shim.db.schema import RUN_PREFIX as RUN_PREFIX
from teamd_shim.db.schema import SNAPSHOT_PREFIX as SNAPSHOT_PREFIX
from teamd_shim.db.schema import STATE_DB_ID, run_key
from teamd_shim.io.identity import process_alive
from teamd_shim.model.contract import SnapshotMeta

META = "_meta"
HEARTBEAT_STALE_S = 3.0

CAS_LUA = """
local e = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
local o = redis.call('HGET', KEYS[1], 'owner') or ''
if e ~= tonumber(ARGV[1]) or (ARGV[2] ~= '*' and o ~= ARGV[2]) then
  return {0, e, o}
end
redis.call('HSET', KEYS[1], 'epoch', e + 1, 'owner', ARGV[3], 'since', ARGV[4])
return {1, e + 1, ARGV[3]}
"""

# A hot standby's promotion (hld §14.3): CAS_LUA, and the owner must not have confirmed itself
# alive (CONFIRM_LUA) after ARGV[5], the last sign of life the standby had of it (CLOCK_MONOTONIC,
# one clock for every process on a host). Redis orders the two scripts: either the stalled owner
# confirmed first (then it lives, and the standby stays standby) or the standby moved the epoch
# first (then the owner's confirmation fails and it exits without writing).
PROMOTE_LUA = """
local e = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
local o = redis.call('HGET', KEYS[1], 'owner') or ''
local alive = tonumber(redis.call('HGET', KEYS[1], 'alive_at') or '0')
if e ~= tonumber(ARGV[1]) or o ~= ARGV[2] or alive > tonumber(ARGV[5]) then
  return {0, e, o}
end
redis.call('HSET', KEYS[1], 'epoch', e + 1, 'owner', ARGV[3], 'since', ARGV[4])
redis.call('HDEL', KEYS[1], 'alive_at')
return {1, e + 1, ARGV[3]}
"""

# An owner whose own loop stalled: still the owner? If so, say when (alive_at), atomically.
CONFIRM_LUA = """
local e = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
local o = redis.call('HGET', KEYS[1], 'owner') or ''
if e ~= tonumber(ARGV[1]) or o ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'alive_at', ARGV[3])
return 1
"""

# ProducerStateTable's SET/DEL (swss-common producerstatetable.cpp) with an epoch check first.
# KEYS: owner key (STATE_DB), <T>_KEY_SET, _<T>:<key>, <T>_DEL_SET  (APPL_DB)
# ARGV: epoch, channel, key, op ('SET'|'DEL'), field, value, ...
FENCED_PRODUCER_LUA = """
redis.call('SELECT', ARGV[5])
local e = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '-1')
if e ~= tonumber(ARGV[1]) then return -1 end
redis.call('SELECT', ARGV[6])
local added = redis.call('SADD', KEYS[2], ARGV[3])
if ARGV[4] == 'DEL' then
  redis.call('SADD', KEYS[4], ARGV[3])
  redis.call('DEL', KEYS[3])
else
  for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
end
if added == 1 then redis.call('PUBLISH', ARGV[2], 'G') end
return added
"""


# The active puts its epoch back over an owner record it judged forged (roles/owner_guard.py),
# only if the record is still exactly what it judged: a real CAS in between always wins.
RESTORE_OWNER_LUA = """
local e = redis.call('HGET', KEYS[1], 'epoch') or ''
local o = redis.call('HGET', KEYS[1], 'owner') or ''
if e ~= ARGV[1] or o ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'epoch', ARGV[3], 'owner', ARGV[4], 'since', ARGV[5])
return 1
"""


class OwnershipError(RuntimeError):
    """The ownership protocol refused a step; the message says why and what was kept."""


@dataclass(frozen=True)
class Owner:
    epoch: int
    owner: str


def snapshot_fields(lags: dict[str, dict[str, Any]], meta: SnapshotMeta) -> dict[str, str]:
    """A snapshot's hash: one field per LAG (`Lag.to_dict()` as JSON) and `_meta`."""
    fields = {lag: json.dumps(d, separators=(",", ":")) for lag, d in lags.items()}
    fields[META] = json.dumps(meta.to_json())
    return fields


def client(endpoint: sonic_db.Endpoint, db: int) -> redis.Redis:
    """redis-py with its own retries off: the caller's tenacity layer is the only retry layer."""
    return redis.Redis(
        db=db,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        retry=Retry(NoBackoff(), 0),
        **endpoint.redis_kwargs(),  # type: ignore[arg-type]
    )


def netns_id() -> str:
    """The network namespace this process is in (`net:[4026531840]`): where its ports live."""
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return ""


def record_alive(rec: dict[str, str], stale_s: float) -> bool:
    """A record naming a process (a shim instance, the supervisor) is alive when that very
    process still runs (identity.process_alive: same host and pid namespace), else when its
    heartbeat is younger than `stale_s` (another host, or a process in a container)."""
    if not rec:
        return False
    alive = process_alive(rec.get("host", ""), rec.get("pid", ""), rec.get("starttime", ""))
    if alive is not None:
        return alive
    try:
        return time.time() - float(rec.get("heartbeat", "0")) < stale_s
    except ValueError:
        return False


def instance_alive(rec: dict[str, str]) -> bool:
    return record_alive(rec, HEARTBEAT_STALE_S)


class OwnerStore:
    """Blocking Redis operations of the ownership protocol (run them off the event loop)."""

    def __init__(self, endpoint: sonic_db.Endpoint) -> None:
        self.endpoint = endpoint
        self.state = client(endpoint, STATE_DB_ID)
        self._cas = self.state.register_script(CAS_LUA)
        self._promote = self.state.register_script(PROMOTE_LUA)
        self._confirm = self.state.register_script(CONFIRM_LUA)
        self._restore = self.state.register_script(RESTORE_OWNER_LUA)

    def owner(self) -> Owner | None:
        rec = hgetall(self.state, OWNER_KEY)
        if not rec:
            return None
        raw = rec.get("epoch", "0")
        if not raw.isdigit():
            raise OwnershipError(
                f"{OWNER_KEY} epoch is {raw!r}, not a number: the record was not written by a "
                "teamd-shim; nothing was changed (the active restores its own epoch, hld §15.4)"
            )
        return Owner(int(raw), rec.get("owner", ""))

    def owner_record(self) -> dict[str, str]:
        """The owner record as stored, unparsed (the active's guard judges it)."""
        return hgetall(self.state, OWNER_KEY)

    def restore_owner(self, seen: dict[str, str], epoch: int, name: str) -> bool:
        """Put (epoch, name) back if the record is still exactly `seen`."""
        return bool(
            self._restore(
                keys=[OWNER_KEY],
                args=[
                    seen.get("epoch", ""),
                    seen.get("owner", ""),
                    epoch,
                    name,
                    f"{time.time():.3f}",
                ],
            )
        )

    def cas(self, expected_epoch: int, expected_owner: str, new_owner: str) -> Owner | None:
        """Move the epoch forward by one if it is still `expected_epoch` (and owner matches,
        unless expected_owner is '*'). Returns the new Owner, or None if someone else won."""
        ok, epoch, owner = self._cas(
            keys=[OWNER_KEY], args=[expected_epoch, expected_owner, new_owner, f"{time.time():.3f}"]
        )
        return Owner(int(epoch), owner) if ok else None

    def promote_cas(
        self, expected_epoch: int, expected_owner: str, new_owner: str, last_seen: float
    ) -> Owner | None:
        """cas() for a hot standby's promotion: refused also when the owner confirmed itself
        alive after `last_seen` (see PROMOTE_LUA)."""
        ok, epoch, owner = self._promote(
            keys=[OWNER_KEY],
            args=[
                expected_epoch,
                expected_owner,
                new_owner,
                f"{time.time():.3f}",
                f"{last_seen:.6f}",
            ],
        )
        return Owner(int(epoch), owner) if ok else None

    def confirm_alive(self, epoch: int, name: str, now: float) -> bool:
        """An owner after a stall of its own loop: True if it still owns the LAGs (and from now
        on no promotion that saw it last before `now` can pass); False: it was fenced."""
        return bool(self._confirm(keys=[OWNER_KEY], args=[epoch, name, f"{now:.6f}"]))

    def instance(self, name: str) -> dict[str, str]:
        return hgetall(self.state, INSTANCE_PREFIX + name)

    def instances(self) -> dict[str, dict[str, str]]:
        out = {}
        for k in keys(self.state, INSTANCE_PREFIX + "*"):
            out[k[len(INSTANCE_PREFIX) :]] = hgetall(self.state, k)
        return out

    def claim(self, name: str) -> Owner:
        """Become the owner at start-up, unless a live instance owns the LAGs."""
        for _ in range(5):
            cur = self.owner()
            if cur is None:
                won = self.cas(0, "*", name)
            elif cur.owner == name:
                won = self.cas(cur.epoch, name, name)
            else:
                rec = self.instance(cur.owner)
                if instance_alive(rec):
                    raise OwnershipError(
                        f"another active teamd-shim ({cur.owner!r}, pid {rec.get('pid', '?')}) "
                        f"owns the LAGs at epoch {cur.epoch}. Nothing was started; stop it, or "
                        "replace it without a flap with `warm-restart teamd`"
                    )
                won = self.cas(cur.epoch, cur.owner, name)
            if won is not None:
                return won
        raise OwnershipError("could not claim ownership: the owner record keeps changing")

    def write_final(self, name: str, lags: dict[str, dict[str, Any]], meta: SnapshotMeta) -> None:
        """The yield's final snapshot, replacing any earlier one in one transaction."""
        key = FINAL_PREFIX + name
        fields = snapshot_fields(lags, meta)
        pipe = self.state.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping=redis_fields(fields))
        pipe.execute()

    def read_final(self, name: str) -> tuple[SnapshotMeta | None, dict[str, dict[str, Any]]]:
        return self.read_snapshot(name, FINAL_PREFIX)

    def read_snapshot(
        self, name: str, prefix: str = SNAPSHOT_PREFIX
    ) -> tuple[SnapshotMeta | None, dict[str, dict[str, Any]]]:
        """The shadow snapshot the active publishes while a standby follows (or, with
        FINAL_PREFIX, the final one); (None, {}) when there is none. A `_meta` of another shape
        raises ContractError."""
        raw = hgetall(self.state, prefix + name)
        if META not in raw:
            return None, {}
        meta = SnapshotMeta.from_json(json.loads(raw.pop(META)))
        return meta, {lag: json.loads(v) for lag, v in raw.items()}

    def read_shadow_entries(
        self, name: str, lags: list[str]
    ) -> tuple[SnapshotMeta | None, dict[str, dict[str, Any]]]:
        """Only these LAGs' entries of the shadow, with the `_meta` read in the same
        transaction: each entry's cut in that `_meta` is the one taken with it (hld §14.7).
        A LAG whose entry is gone (removed meanwhile) is left out."""
        pipe = self.state.pipeline(transaction=True)
        key = SNAPSHOT_PREFIX + name
        pipe.hget(key, META)
        if lags:
            pipe.hmget(key, lags)
        res = pipe.execute()
        if not res[0]:
            return None, {}
        meta = SnapshotMeta.from_json(json.loads(res[0]))
        values = res[1] if lags else []
        return meta, {lag: json.loads(v) for lag, v in zip(lags, values, strict=True) if v}

    def read_meta(self, name: str) -> SnapshotMeta | None:
        raw = hget(self.state, SNAPSHOT_PREFIX + name, META)
        return SnapshotMeta.from_json(json.loads(raw)) if raw else None

    def drop_instance(self, name: str) -> None:
        self.state.delete(INSTANCE_PREFIX + name, SNAPSHOT_PREFIX + name, FINAL_PREFIX + name)


def awaited_as_standby(endpoint: sonic_db.Endpoint, name: str) -> bool | None:
    """Whether a warm-restart run in progress started us as its new instance.

    `--role standby` lives on in a container's command line after the handover made that
    container the active one; when the container restarts (`docker restart`, a restart policy,
    a reboot) nobody is handing anything over, and a standby would wait for ever while the LAGs
    go down. So a standby start is honoured only while the lock holder's run names us as `new`.
    None: Redis did not answer (keep the role asked for).
    """
    try:
        r = client(endpoint, STATE_DB_ID)
        run_id = hget(r, LOCK_KEY, "run_id")
        if not run_id:
            return False
        run = hgetall(r, run_key(run_id))  # the orchestrator's journal, for this question only
        return run.get("new") == name and run.get("result") == "running"
    except redis.exceptions.RedisError:
        return None


def live_owner(endpoint: sonic_db.Endpoint) -> bool | None:
    """Whether a live instance owns the LAGs (a hot standby starting without one cold-starts
    as the active instead of waiting for ever). None: Redis did not answer."""
    try:
        r = client(endpoint, STATE_DB_ID)
        owner = hget(r, OWNER_KEY, "owner")
        if not owner:
            return False
        return instance_alive(hgetall(r, INSTANCE_PREFIX + owner))
    except redis.exceptions.RedisError:
        return None

"""Writes the shim's view to STATE_DB and APPL_DB from a thread of its own.

LACP must never wait for Redis: the event loop only records the *desired* content of each hash
(cheap dict updates under a lock) and wakes this thread, which writes the difference from what it
last wrote. When Redis goes away the thread forgets what it wrote, keeps retrying, and on
reconnect writes everything again: that is the "republish after reconnect" behaviour, for free.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from teamd_shim.db import ownership, redis_edge, sonic_db
from teamd_shim.db.redis_decoded import hgetall
from teamd_shim.db.schema import (
    APPL_DB,
    APPL_DB_ID,
    LAG_TABLE,
    OWNER_KEY,
    STATE_DB,
    STATE_DB_ID,
    producer_keys,
)
from teamd_shim.db.schema import Target as Target  # its home before the schema; still imported

log = logging.getLogger(__name__)


Fields = dict[str, str]


class Publisher:
    """Desired-state mirror of every hash the shim owns, flushed by one writer thread."""

    def __init__(
        self,
        endpoint: sonic_db.Endpoint,
        *,
        on_connected: Callable[[], None] | None = None,
        fence: Callable[[], int | None] | None = None,
    ) -> None:
        self._endpoint = endpoint
        # fence() -> the epoch this process owns; APPL_DB (dataplane) writes carry it and Redis
        # refuses them once the epoch moved on. None from fence() means "not owner: hold".
        self._fence = fence
        self.fenced = 0
        # targets the epoch fence refused: retried once a second, not in a tight loop (the
        # owner record may come back, see roles._keep_owner_record)
        self._refused: set[Target] = set()
        self._refused_at = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._desired: dict[Target, Fields | None] = {}
        self._written: dict[Target, Fields | None] = {}
        # targets whose desired content may differ from what was written: what a round looks
        # at, so its cost follows what changed, not how many keys there are (a 512 x 2 shim
        # has ~3600; scanning them all on each wake-up was 10 % of its steady CPU, issue 19)
        self._dirty: set[Target] = set()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._on_connected = on_connected
        self.connected = False
        self.writes = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, flush_timeout: float = 2.0) -> None:
        """Give pending writes a chance, then end the thread (it is a daemon either way)."""
        self._stop = True
        self._wake.set()
        self._thread.join(flush_timeout)

    def put(self, target: Target, fields: Fields | None) -> None:
        """Desire `fields` as the full content of `target`; None means the key must not exist."""
        with self._lock:
            if self._desired.get(target, "absent") == fields:
                return
            self._desired[target] = dict(fields) if fields is not None else None
            self._dirty.add(target)
        self._wake.set()

    def drop(self, target: Target) -> None:
        """Delete the key and stop tracking it once deleted."""
        if target.partial:
            raise ValueError(f"{target.redis_key} is shared: put fields, never delete it")
        self.put(target, None)

    def pending(self) -> int:
        with self._lock:
            return sum(1 for t, f in self._desired.items() if self._written.get(t, "absent") != f)

    # ---- writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        retrying = redis_edge.forever(self._lost)
        while not self._stop:
            try:
                retrying(self._session)
            except Exception:  # a bug must not end publishing for good
                log.exception("publisher: unexpected error; restarting the session in 1 s")
                self._wake.wait(1.0)

    def _lost(self, retry_state: object) -> None:
        if self.connected:
            log.warning(
                "redis unreachable at %s; LACP continues, will republish on reconnect",
                self._endpoint.url,
            )
        self.connected = False
        with self._lock:
            self._written.clear()
            self._dirty = set(self._desired)

    def _session(self) -> None:
        """One connection's lifetime: connect, write everything owed, then write as woken."""
        state = sonic_db.connect(self._endpoint, STATE_DB)
        appl = sonic_db.connect(self._endpoint, APPL_DB)
        raw_appl = ownership.client(self._endpoint, APPL_DB_ID)
        raw_state = ownership.client(self._endpoint, STATE_DB_ID)
        self._raw = {APPL_DB: raw_appl, STATE_DB: raw_state}
        self._fenced_script = raw_appl.register_script(ownership.FENCED_PRODUCER_LUA)
        tables: dict[tuple[str, str], object] = {}

        def table(db: str, name: str) -> object:
            t = tables.get((db, name))
            if t is None:
                if db == APPL_DB:
                    t = sonic_db.ProducerStateTable(appl, name)
                else:
                    t = sonic_db.Table(state, name)
                tables[(db, name)] = t
            return t

        # prove the connection before declaring it up
        sonic_db.Table(state, LAG_TABLE).getKeys()
        if not self.connected:
            log.info("redis connected at %s; publishing full state", self._endpoint.url)
        self.connected = True
        if self._on_connected:
            self._on_connected()
        while True:
            self._wake.clear()
            todo = self._owed()
            for target, fields in todo:
                if not self._write(table(target.db, target.table), target, fields):
                    continue
                with self._lock:
                    self._written[target] = fields
                    if fields is None and self._desired.get(target, "x") is None:
                        self._desired.pop(target, None)
                        self._written.pop(target, None)
            if self._stop:
                return
            if not todo:
                self._wake.wait(1.0)

    def _owed(self) -> list[tuple[Target, Fields | None]]:
        """What this round writes: what differs from what we wrote, less what we may not write
        now (the epoch fence refused it less than a second ago; APPL_DB while not the owner)."""
        hold = self._fence is not None and self._fence() is None
        if self._refused and time.monotonic() - self._refused_at > 1.0:
            self._refused.clear()
        out: list[tuple[Target, Fields | None]] = []
        with self._lock:
            for t in list(self._dirty):
                f = self._desired.get(t, "absent")
                if f == "absent" or self._written.get(t, "absent") == f:
                    self._dirty.discard(t)  # settled (or dropped and deleted)
                # not the owner (standby, yielded): the dataplane (APPL_DB) is not ours to
                # write; such targets and refused ones stay dirty for a later round
                elif not (hold and t.db == APPL_DB) and t not in self._refused:
                    out.append((t, f))  # type: ignore[arg-type]
        return out

    def _unchanged_in_redis(self, target: Target, fields: Fields | None) -> bool:
        """First write of a key in this session: skip it if Redis already holds exactly that.

        A new owner after a handover (or a reconnect) then writes nothing that is already
        there, so consumers (orchagent, keyspace subscribers) see no event at all.
        """
        r = self._raw[target.db]
        if target.db == STATE_DB:
            cur = hgetall(r, target.redis_key)
            return (fields is None and not cur) or cur == fields
        done = hgetall(r, target.redis_key)
        names = producer_keys(target.table, target.key)
        pending = hgetall(r, names.pending)
        in_set = bool(r.sismember(names.key_set, target.key))
        if fields is None:
            return not done and not in_set
        if target.partial:  # only our fields count: the consumer merges them into its hash
            done = {k: done[k] for k in fields if k in done}
            pending = {k: pending[k] for k in fields if k in pending}
            return (done == fields and not in_set) or pending == fields
        return (not in_set and done == fields) or (in_set and pending == fields)

    def _write(self, table: object, target: Target, fields: Fields | None) -> bool:
        """Write one target; False if the epoch fence refused it (to be retried later)."""
        if target not in self._written and self._unchanged_in_redis(target, fields):
            return True
        self.writes += 1
        if target.db == APPL_DB and self._fence is not None:
            return self._fenced_write(target, fields)
        if target.db == APPL_DB:
            if fields is None:
                table.delete(target.key)  # type: ignore[attr-defined]
            else:
                table.set(target.key, list(fields.items()))  # type: ignore[attr-defined]
            return True
        if fields is None:
            table.delete(target.key)  # type: ignore[attr-defined]
            return True
        old = self._written.get(target) or {}
        changed = [(k, v) for k, v in fields.items() if old.get(k) != v]
        if changed:
            table.set(target.key, changed)  # type: ignore[attr-defined]
        for k in old.keys() - fields.keys():
            table.hdel(target.key, k)  # type: ignore[attr-defined]
        if not old:
            # first write in this session: remove fields left by an earlier owner of the key
            found, existing = table.get(target.key)  # type: ignore[attr-defined]
            if found:
                for k, _v in existing:
                    if k not in fields:
                        table.hdel(target.key, k)  # type: ignore[attr-defined]
        return True

    def _fenced_write(self, target: Target, fields: Fields | None) -> bool:
        epoch = self._fence() if self._fence else None
        if epoch is None:
            # not the owner any more since this round's hold check (the role changed on the
            # loop thread): not ours to write; the next round holds APPL_DB. Sending None would
            # make redis-py raise DataError and restart the session.
            return False
        t, key = target.table, target.key
        names = producer_keys(t, key)
        args: list[str | int] = [
            epoch,
            names.channel,
            key,
            "DEL" if fields is None else "SET",
            STATE_DB_ID,
            APPL_DB_ID,
        ]
        for f, v in (fields or {}).items():
            args += [f, v]
        res = self._fenced_script(
            keys=[OWNER_KEY, names.key_set, names.pending, names.del_set], args=args
        )
        if res == -1:
            self.fenced += 1
            self._refused.add(target)
            self._refused_at = time.monotonic()
            log.warning(
                "APPL_DB %s:%s not written: epoch %s is not the owner's epoch in redis "
                "(a newer owner took over, or redis lost the owner record)",
                t,
                key,
                epoch,
            )
            return False
        return True

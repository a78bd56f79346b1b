"""`warm-restart supervise`: keep one owner and one READY hot standby running (hld §14.4).

The loop observes (STATE_DB records, the runtime), asks supervise_policy.decide what to do, does
it, and writes its state to STATE_DB `TEAMD_SUPERVISOR|teamd`. It is not on the path of a
promotion (the standby promotes itself); if it dies, the pair keeps working and the next
supervisor adopts what runs. SIGTERM/SIGINT stop it and leave active and standby running.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from orchestrator.journal import Journal, holder_alive
from orchestrator.runtime import RuntimeFailure
from orchestrator.supervise_policy import (
    Action,
    ColdStart,
    InstanceView,
    Kill,
    Observation,
    StartStandby,
    SupervisorState,
    base_name,
    decide,
)
from orchestrator.supervised import ProcessSupervised, Supervised, supervised_for
from teamd_shim.db.ownership import OwnerStore, instance_alive, record_alive
from teamd_shim.db.redis_decoded import fields as redis_fields
from teamd_shim.db.redis_decoded import hgetall
from teamd_shim.db.schema import SUPERVISOR_KEY
from teamd_shim.db.sonic_db import Endpoint
from teamd_shim.io.identity import host_id, proc_starttime

INTERVAL_S = 0.2
RECORD_EVERY_S = 1.0
STALE_S = 3.0  # a supervisor record with no heartbeat for this long is not alive
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class SupervisorError(RuntimeError):
    """The supervisor cannot run; the message says why and what to do."""


def default_shim() -> str:
    here = Path(sys.executable).parent / "teamd-shim"
    return str(here) if here.exists() else "teamd-shim"


def supervisor_alive(rec: dict[str, str]) -> bool:
    return bool(rec.get("pid")) and record_alive(rec, STALE_S)


class Supervisor:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        runtime_name: str = "auto",
        say: Callable[[str], None] = print,
        name: str | None = None,
        shim_args: tuple[str, ...] = (),
    ) -> None:
        self.endpoint = endpoint
        self.runtime_name = runtime_name
        self.runtime: Supervised = ProcessSupervised()  # chosen in claim() (supervised_for)
        self.say = say
        self.base = name
        self.shim_args = shim_args
        self.store = OwnerStore(endpoint)
        self.journal = Journal(endpoint)
        self.r = self.store.state
        self.state = SupervisorState()
        self._stop = False
        self._last_record = 0.0
        self._last_note = ""
        self._redis_down_said = False
        self._dead: list[str] = []

    # ---- lifecycle -------------------------------------------------------------------------
    def claim(self) -> None:
        """Become the one supervisor, adopting the last one's state (refused while it lives)."""
        rec = hgetall(self.r, SUPERVISOR_KEY)
        if supervisor_alive(rec):
            raise SupervisorError(
                f"another supervisor runs (pid {rec.get('pid')} on "
                f"{rec.get('host')} since {rec.get('since')}); nothing was "
                "started. Stop it first"
            )
        self.state = SupervisorState.from_fields(rec)
        owner = self.store.owner()
        owner_rec = self.store.instance(owner.owner) if owner else {}
        try:
            self.runtime = supervised_for(self.runtime_name, owner_rec)
        except RuntimeFailure as e:
            raise SupervisorError(str(e)) from None
        self.runtime.restore(rec)
        me = {
            "pid": str(os.getpid()),
            "starttime": str(proc_starttime(os.getpid())),
            "host": host_id(),
            "runtime": self.runtime.name,
            "since": f"{time.time():.3f}",
            "heartbeat": f"{time.time():.3f}",
            "state": "running",
        }
        # set only if the pid we judged dead is still the one there (two starting at once)
        won = self.r.eval(
            """
            if (redis.call('HGET', KEYS[1], 'pid') or '') ~= ARGV[1] then return 0 end
            for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
            return 1""",
            1,
            SUPERVISOR_KEY,
            rec.get("pid", ""),
            *[x for kv in me.items() for x in kv],
        )
        if not won:
            raise SupervisorError(
                "another supervisor started at the same moment; nothing was started"
            )
        adopted = "adopting the last supervisor's state" if rec else "first start"
        self.say(
            f"supervisor pid {os.getpid()}: runtime {self.runtime.name}, netns "
            f"{_netns()}, {adopted}"
        )

    def run(self) -> int:
        try:
            self.claim()
        except REDIS_ERRORS as e:
            raise SupervisorError(
                f"redis unreachable at {self.endpoint.url}: {e}; nothing was started"
            ) from None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            while not self._stop:
                try:
                    self.step()
                    self._redis_down_said = False
                except REDIS_ERRORS as e:
                    if not self._redis_down_said:
                        self.say(
                            f"redis unreachable ({e}): nothing to do until it answers "
                            "(the hot standby promotes without it)"
                        )
                        self._redis_down_said = True
                time.sleep(INTERVAL_S)
        finally:
            self._release()
        return 0

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stop = True

    def _release(self) -> None:
        try:
            self._write_record(state="stopped", pid="")
        except REDIS_ERRORS as e:
            self.say(f"could not mark the supervisor stopped: {e}")
        self.say("supervisor stopped; the active and the standby keep running")

    # ---- one round -------------------------------------------------------------------------
    def observe(self) -> Observation:
        owner = self.store.owner()
        live: dict[str, dict[str, str]] = {}
        self._dead = []
        records = self.store.instances()
        for name, rec in records.items():
            if instance_alive(rec):
                live[name] = rec
            else:
                self._dead.append(name)
        owner_name = owner.owner if owner else ""
        owner_rec = live.get(owner_name, {})
        holder = self.journal.lock_holder()
        planned = holder.get("run_id", "") if holder and holder_alive(holder) else ""
        st = self.state
        starting = frozenset(
            n
            for n, h in ((st.standby, st.standby_handle), (st.cold, st.cold_handle))
            if n and h and n not in live and self.runtime.alive(h)
        )
        if owner_rec:
            self.runtime.learn(owner_name, owner_rec)
        return Observation(
            now=time.time(),
            owner=owner_name,
            owner_alive=bool(owner_rec),
            live=tuple(
                InstanceView(
                    name=n,
                    role=r.get("role", ""),
                    ready=r.get("ready") == "true",
                    hot=r.get("hot") == "true",
                    promotion_refused=r.get("promotion_refused", ""),
                    version=r.get("version", ""),
                )
                for n, r in sorted(live.items())
            ),
            planned_run=planned,
            starting=starting,
            taken=frozenset(records),
            owner_version=owner_rec.get("version", ""),
            owner_promotion={
                k[len("promoted_") :]: v for k, v in owner_rec.items() if k.startswith("promoted_")
            },
        )

    def step(self) -> None:
        obs = self.observe()
        before = self.state
        base = self.base or base_name(obs.owner or before.last_owner or "teamd")
        self.state, actions = decide(obs, before, base)
        if self.state.last_promotion != before.last_promotion and self.state.last_promotion:
            p = self.state.last_promotion
            self.say(
                f"promotion: {p.get('from')} {p.get('why')} -> {p.get('to')} took over "
                f"at epoch {p.get('epoch')} in {p.get('took_ms')} ms ({p.get('how')})"
            )
            try:
                done = self.runtime.after_promotion(
                    p.get("from", ""), {}, p.get("to", ""), self.store.instance(p.get("to", ""))
                )
            except Exception as e:  # a Docker API error: the LAGs are fine, say it
                done = f"could not tidy up: {e}"
            if done:
                self.say(f"after the promotion: {done}")
        for action in actions:
            self._execute(action, obs)
        if not obs.planned_run:  # a run's rollback may still need its records
            for name in self._dead:
                if name != obs.owner:
                    self.store.drop_instance(name)  # died (a promotion's old owner, a crash)
        if self.state.note != self._last_note:
            self.say(self.state.note)
            self._last_note = self.state.note
        if self.state != before or time.monotonic() - self._last_record > RECORD_EVERY_S:
            self._write_record()

    def _execute(self, action: Action, obs: Observation) -> None:
        rt = self.runtime
        try:
            if isinstance(action, StartStandby):
                why = rt.ready_to_start()
                if why:
                    self.state = dataclasses.replace(
                        self.state, standby="", note=f"cannot start a hot standby: {why}"
                    )
                    return
                handle = rt.start_standby(obs.owner, self.store.instance(obs.owner), action.name)
                self.state = dataclasses.replace(self.state, standby_handle=handle)
                self.say(f"started hot standby {action.name} ({rt.name} {handle[:12]})")
            elif isinstance(action, ColdStart):
                name = self.state.cold
                handle = rt.start_cold(
                    name, [default_shim(), "--redis", self.endpoint.url, *self.shim_args]
                )
                self.state = dataclasses.replace(self.state, cold_handle=handle)
                self.say(f"COLD START of {name} ({rt.name} {handle[:12]}): {action.why}")
            elif isinstance(action, Kill):
                rec = self.store.instance(action.name)
                if rt.stop(action.name, rec):
                    self.store.drop_instance(action.name)
                    self.say(f"stopped {action.name}: {action.why}")
        except (RuntimeFailure, OSError) as e:
            standby = "" if isinstance(action, StartStandby) else self.state.standby
            self.state = dataclasses.replace(
                self.state, standby=standby, note=f"{type(action).__name__} failed: {e}"
            )

    def _write_record(self, **extra: str) -> None:
        fields = {
            **self.state.to_fields(),
            "heartbeat": f"{time.time():.3f}",
            "runtime": self.runtime.name,
            **self.runtime.state(),
            **extra,
        }
        self.r.hset(SUPERVISOR_KEY, mapping=redis_fields(fields))
        self._last_record = time.monotonic()


def _netns() -> str:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return "?"


def read_record(r: redis.Redis) -> dict[str, Any]:
    """The supervisor as `warm-restart status` shows it."""
    rec = hgetall(r, SUPERVISOR_KEY)
    if not rec:
        return {}
    st = SupervisorState.from_fields(rec)
    return {
        "pid": rec.get("pid", ""),
        "alive": supervisor_alive(rec),
        "runtime": rec.get("runtime", ""),
        "since": rec.get("since", ""),
        "state": rec.get("state", ""),
        "note": st.note,
        "standby": st.standby,
        "crashes": st.crashes,
        "backoff_until": st.backoff_until,
        "cold_starts": st.cold_starts,
        "last_promotion": st.last_promotion,
        "last_cold_start": st.last_cold_start,
    }


def hot_pair(store: OwnerStore) -> tuple[tuple[str, dict[str, str]], tuple[str, dict[str, str]]]:
    """(owner, its READY hot standby), each as (name, instance record), when exactly those two
    instances live and the owner record names the first; raises LookupError saying what is
    missing otherwise (the demo and the benchmarks wait on it)."""
    owner = store.owner()
    live = {n: r for n, r in store.instances().items() if instance_alive(r) and r.get("role")}
    act = [n for n, r in live.items() if r["role"] == "active"]
    hot = [
        n
        for n, r in live.items()
        if r["role"] == "standby" and r.get("hot") == "true" and r.get("ready") == "true"
    ]
    if len(live) != 2 or len(act) != 1 or len(hot) != 1 or owner is None or owner.owner != act[0]:
        raise LookupError(
            f"not one active and one READY hot standby: "
            f"{ {n: r.get('role') for n, r in live.items()} }"
        )
    return (act[0], live[act[0]]), (hot[0], live[hot[0]])

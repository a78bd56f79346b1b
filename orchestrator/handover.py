"""The handover controller behind `warm-restart teamd` and `warm-restart recover`.

`STAGES`, in order, one object each (each journaled in STATE_DB, each with a deadline; the
`[n/N]` progress lines and the outcome's per-stage seconds come from that list):
  Precheck -> StartStandby (standby_started) -> WaitReady (restored) -> Yield (yielded) ->
  Takeover (replayed, confirmed) -> Retire -> Commit (reconciled)
Anything that fails before the old owner yielded only removes the standby. After the yield, a
missing confirmation rolls back: the standby is killed *first*, then the yielded owner resumes;
so two owners never hold the dataplane at once (the epoch CAS in Redis enforces the same).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from orchestrator.journal import Journal, LockHeld, holder_alive
from orchestrator.outcome import (
    DONE,
    REFUSED,
    ROLLED_BACK,
    Deadline,
    Outcome,
    Refused,
    Rollback,
    RollbackIncomplete,
)
from orchestrator.runtime import Instance, ProcessRuntime, Runtime, RuntimeFailure, runtime_for
from orchestrator.shimctl import CHECK_FLOOR_S, POLL_S, ctl, info, poll_until
from teamd_shim.control.transport import ControlError
from teamd_shim.db.ownership import OwnerStore, instance_alive
from teamd_shim.db.sonic_db import Endpoint
from teamd_shim.model.contract import ContractError, InstanceInfo

# the names this module always had, for the CLI, the lab and the tests
__all__ = ["CHECK_FLOOR_S", "CONFIRM_AFTER_YIELD_S", "DONE", "GAP_BUDGET_S", "POLL_S",
           "REDIS_ERRORS", "REFUSED", "RETIRE_DEADLINE_S", "ROLLED_BACK", "STAGES",
           "YIELD_DEADLINE_S", "Controller", "Deadline", "Outcome", "Refused", "Rollback",
           "RollbackIncomplete", "Run", "Stage", "ctl", "gaps", "info", "poll_until"]

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
YIELD_DEADLINE_S = 0.5
CONFIRM_AFTER_YIELD_S = 1.25  # the new owner's first PDUs are due 1.0 s after the yield
RETIRE_DEADLINE_S = 3.0
GAP_BUDGET_S = 1.1  # hld §8: largest PDU inter-arrival at the partner through a handover


class Controller:
    def __init__(self, endpoint: Endpoint, runtime: Runtime | None = None,
                 progress: Callable[[str], None] = lambda s: None, *,
                 runtime_name: str = "auto", image: str | None = None) -> None:
        self.endpoint = endpoint
        # `auto`: chosen per run from where the active runs (runtime_for)
        self.runtime: Runtime = runtime or ProcessRuntime()
        self._fixed_runtime = runtime is not None or runtime_name != "auto"
        if runtime is None and runtime_name != "auto":
            self.runtime = runtime_for(runtime_name, None, image)
        self.image = image
        self.say = progress
        self.journal = Journal(endpoint)
        self.store = OwnerStore(endpoint)
        self.stages: tuple[Stage, ...] = STAGES

    # ---- helpers ---------------------------------------------------------------------------
    def hot_standby(self, active: Instance) -> tuple[str, dict[str, str]] | None:
        """A READY hot standby of the supervisor, shadowing `active` (hld §14.5): a planned
        restart hands over to it instead of starting one (the ready stage drops out)."""
        for name, rec in self.store.instances().items():
            if (name != active.name and rec.get("role") == "standby" and rec.get("hot") == "true"
                    and rec.get("ready") == "true" and rec.get("netns") == active.netns
                    and rec.get("ctl") and instance_alive(rec)):
                return name, rec
        return None

    def active(self) -> Instance:
        cur = self.store.owner()
        if cur is None:
            raise Refused("no teamd-shim owns the LAGs (no TEAMD_OWNER_TABLE|teamd): start one "
                          "first")
        rec = self.store.instance(cur.owner)
        if not instance_alive(rec):
            raise Refused(f"the owner {cur.owner!r} is not running (no live instance record); "
                          "start teamd-shim, or run `warm-restart recover`")
        inst = Instance.from_record(cur.owner, rec)
        if not self._fixed_runtime:
            self.runtime = runtime_for("auto", inst, self.image)
        try:
            inst = self.runtime.locate(inst)
        except RuntimeFailure as e:
            raise Refused(str(e)) from None
        try:
            role = info(inst.ctl).role
        except ControlError as e:
            raise Refused(f"the active instance does not answer: {e}") from None
        if role != "active":
            raise Refused(f"{cur.owner!r} is {role}, not active: run `warm-restart recover`")
        return inst

    # ---- the hitless restart ---------------------------------------------------------------
    def restart(self, exec_path: str | None = None, timeout: float = 20.0,
                image: str | None = None) -> Outcome:
        """Run STAGES in order. The `[n/N]` lines and the outcome's per-stage seconds come
        from that list; a failure is refused (before the lock: nothing changed), rolled back
        (after it), or left for `recover` when the rollback cannot finish."""
        t0 = time.monotonic()
        out = Outcome(code=REFUSED, result="refused")
        run = Run(exec_path=exec_path, image=image or self.image, timeout=timeout, out=out)
        stages = self.stages
        current = stages[0]
        try:
            for n, current in enumerate(stages, 1):
                self.say(f"[{n}/{len(stages)}] {current.title(self, run)}")
                started = time.monotonic()
                note = current.run(self, run)
                took = time.monotonic() - started
                out.stages[current.name] = took
                self.say(f"      ok ({took * 1000:.0f} ms){' - ' + note if note else ''}")
            out.code, out.result = DONE, "completed"
            if run.unjournaled:
                out.reason = (f"{run.old.name} -> {run.new} done, but the journal could not be "
                              f"written ({run.unjournaled}); `warm-restart recover` records it")
        except (Refused, LockHeld) as e:
            return self._refused(out, str(e))
        except REDIS_ERRORS as e:
            if not run.locked:
                return self._refused(out, f"redis unreachable at {self.endpoint.url}: {e}")
            self._roll_back(run, f"stage {current.name}: redis did not answer: {e}")
        except Rollback as e:
            self._roll_back(run, str(e))
        except (ControlError, OSError, RuntimeFailure) as e:
            self._roll_back(run, f"stage {current.name}: {type(e).__name__}: {e}")
        finally:
            if run.locked:
                try:
                    self.journal.release(run.run_id)
                    if run.warm_before != "true":
                        self.journal.set_warm_enabled(run.warm_before)
                except REDIS_ERRORS as e:
                    self.say(f"      warning: could not release the lock / restore "
                             f"WARM_RESTART_ENABLE_TABLE|teamd: {e}; `warm-restart recover` "
                             "will")
        out.wall_s = time.monotonic() - t0
        return out

    def _roll_back(self, run: Run, reason: str) -> None:
        out = run.out
        if not run.locked:  # failed before the lock: nothing was changed
            self._refused(out, reason)
            return
        out.code, out.result, out.reason = ROLLED_BACK, "rolled_back", reason
        self.say(f"      FAILED: {reason}; rolling back")
        if self._rolled_back(out, run.old, run.new_pid, run.yielded, run.new, run.fields):
            try:
                self.journal.finish(run.run_id, "rolled_back", out.reason)
            except REDIS_ERRORS as e:
                out.reason += f" (journal not written: redis unreachable: {e})"

    def _refused(self, out: Outcome, reason: str) -> Outcome:
        out.code, out.result, out.reason = REFUSED, "refused", reason
        self.say(f"      refused: {reason}")
        self.say("      nothing was changed")
        return out

    def _try_journal(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> str:
        """A journal write that must not undo anything: '' if written, else why not."""
        try:
            fn(*args, **kw)
        except REDIS_ERRORS as e:
            self.say(f"      warning: journal not written: redis unreachable: {e}")
            return f"redis unreachable: {e}"
        return ""

    def _forget(self, name: str) -> None:
        """Drop the instance record of a shim we killed or found dead (it cannot itself)."""
        try:
            self.store.drop_instance(name)
        except REDIS_ERRORS as e:
            self.say(f"      warning: could not remove the record of {name}: {e}")

    def _rolled_back(self, out: Outcome, old: Instance, new_pid: str | None, yielded: bool,
                     new_name: str, fields: dict[str, str]) -> bool:
        """Roll back; False (and the outcome says so) if it had to stop half-way. The run
        then stays `running` in the journal, for `warm-restart recover`."""
        try:
            self._rollback(old, new_pid, yielded, new_name, fields)
        except RollbackIncomplete as e:
            out.result = "rollback_incomplete"
            out.reason = f"{out.reason}; {e}"
            return False
        return True

    def _rollback(self, old: Instance, new_pid: str | None, yielded: bool,
                  new_name: str, fields: dict[str, str]) -> None:
        """Kill the would-be successor first, then make sure the old owner transmits.

        Fails closed: if the successor cannot be confirmed dead, the old owner is not resumed
        (two owners could both write the dataplane); it keeps its periodic PDUs going while
        yielded (hld §7) and `warm-restart recover` finishes the job."""
        if new_pid is not None and self.runtime.alive(new_pid):
            try:
                self.runtime.kill(new_pid)
            except Exception as e:  # a Docker API error: judged by alive() below
                self.say(f"      could not kill {new_name}: {e}")
        if new_pid is not None and self.runtime.alive(new_pid):
            self.say(f"      {new_name} is still alive after SIGKILL: NOT resuming {old.name} "
                     "(two owners must never both write); it keeps the partner's PDUs going "
                     "while yielded. Stop the standby by hand, then run `warm-restart recover`")
            raise RollbackIncomplete(
                f"{new_name} could not be stopped; {old.name} left yielded (PDUs continue, "
                "dataplane frozen): stop the standby, then `warm-restart recover`")
        if new_pid is not None and new_name:
            self._forget(new_name)
        try:
            self.runtime.rolled_back(old, new_pid, fields)
        except Exception as e:  # e.g. a Docker API error: say it, still resume the old owner
            self.say(f"      could not undo the runtime's changes around {old.name}: {e}")
        if yielded:
            try:
                now_is = InstanceInfo.from_json(ctl(old.ctl, "resume", force=True))
                self.say(f"      {old.name} is {now_is.role} at epoch {now_is.epoch}")
            except (ControlError, ContractError) as e:
                self.say(f"      could not resume {old.name}: {e}")

    # ---- recovery --------------------------------------------------------------------------
    def recover(self, only_if_stale: bool = False) -> Outcome:
        """Finish or roll back a run whose orchestrator died; says which."""
        out = Outcome(code=DONE, result="nothing", reason="no interrupted run")
        holder = self.journal.lock_holder()
        run_id = holder.get("run_id") or self.journal.last_run_id() or ""
        run = self.journal.run(run_id) if run_id else {}
        if holder and holder_alive(holder):
            if only_if_stale:
                return out
            return self._refused(out, str(LockHeld(holder)))
        if not holder and run.get("result") != "running":
            return out
        out.run_id, out.old, out.new = run_id, run.get("old", ""), run.get("new", "")
        if not self._fixed_runtime and run.get("runtime"):
            self.runtime = runtime_for(run["runtime"], None, self.image)
        owner = self.store.owner()
        new_rec = self.store.instance(out.new) if out.new else {}
        old_rec = self.store.instance(out.old) if out.old else {}
        # the runtime's handles of both (pids for `process`, container ids for `docker`)
        new_h = run.get("new_handle") or run.get("new_pid") or ""
        if not new_h and new_rec.get("pid") and self.runtime.name == "process":
            new_h = new_rec["pid"]  # started, but the journal did not get its pid
        old_h = run.get("old_handle") or run.get("old_pid") or ""
        old = dataclasses.replace(
            Instance.from_record(out.old, old_rec or {"pid": run.get("old_pid", "0")}),
            handle=old_h, container_name=run.get("old_container_name", ""))
        if old_rec and old.ctl:  # a host-reachable control socket (docker: via the mounts)
            with contextlib.suppress(RuntimeFailure):
                old = dataclasses.replace(self.runtime.locate(old), handle=old_h,
                                          container_name=old.container_name)
        new_ctl = run.get("new_ctl", "") or new_rec.get("ctl", "")
        new_alive = bool(new_h) and self.runtime.alive(new_h)
        # Whether the new one took over: the owner record says so, or the process itself does
        # (a Redis restarted from an older dump may have lost the takeover's epoch CAS; killing
        # a new owner that transmits while the old one already retired would leave nobody).
        took_over = new_alive and owner is not None and owner.owner == out.new
        if not took_over and new_alive and new_ctl:
            try:
                took_over = info(new_ctl).role == "active"
            except ControlError:
                pass
        old_alive = bool(old_h) and self.runtime.alive(old_h)
        if took_over:
            try:
                poll_until("new owner confirmation", time.monotonic() + 2.0,
                           lambda left: info(new_ctl, timeout=left).confirmed)
            except Rollback:
                pass
            if old_alive:
                try:
                    ctl(old.ctl, "retire")
                    deadline = time.monotonic() + RETIRE_DEADLINE_S
                    while self.runtime.alive(old_h) and time.monotonic() < deadline:
                        time.sleep(0.01)
                except ControlError:
                    pass
                if self.runtime.alive(old_h):
                    self.runtime.kill(old_h)
            if old_rec:
                self._forget(out.old)
            self.runtime.committed(old, new_h)
            out.result, out.reason = "completed", f"{out.new} had taken over; {out.old} retired"
        else:
            if new_h and self.runtime.alive(new_h):
                self.runtime.kill(new_h)
            if out.new and (not new_h or not self.runtime.alive(new_h)):
                self._forget(out.new)
            self.runtime.rolled_back(old, new_h or None, run)
            if old_alive:
                try:
                    if info(old.ctl).role == "yielded":
                        ctl(old.ctl, "resume", force=True)
                except ControlError:
                    pass
            out.code = ROLLED_BACK
            out.result, out.reason = "rolled_back", f"{out.old} kept the LAGs; standby removed"
        if run_id and run.get("result") == "running":
            self.journal.finish(run_id, out.result, f"recovered: {out.reason}")
        if holder:
            self.journal.break_lock(holder.get("run_id", ""))
        if out.result == "completed":
            out.code = DONE
        return out


@dataclass
class Run:
    """One restart as it goes from stage to stage: what the later stages and a rollback need."""

    exec_path: str | None
    image: str | None
    timeout: float
    out: Outcome
    active: Instance | None = None
    run_id: str = ""
    locked: bool = False  # from here on a failure rolls back instead of refusing
    new: str = ""
    new_ctl: str = ""
    new_pid: str | None = None  # the runtime's handle of the standby
    hot: bool = False  # the new instance is the supervisor's hot standby, already READY
    yielded: bool = False
    yielded_at: float = 0.0
    warm_before: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # what the runtime needs to undo
    new_info: InstanceInfo | None = None
    unjournaled: str = ""  # why a best-effort journal write after the takeover failed

    @property
    def old(self) -> Instance:
        assert self.active is not None, "precheck did not run"
        return self.active

    @property
    def target(self) -> str | None:
        return self.exec_path or self.image


class Stage(Protocol):
    """One step of `Controller.restart`; `run` returns the note shown after "ok"."""

    name: str

    def title(self, c: Controller, run: Run) -> str: ...

    def run(self, c: Controller, run: Run) -> str: ...


class Precheck:
    name = "precheck"

    def title(self, c: Controller, run: Run) -> str:
        return "precheck: redis, lock, active instance"

    def run(self, c: Controller, run: Run) -> str:
        c.journal.ping()
        recovered = c.recover(only_if_stale=True)
        if recovered.result not in ("nothing",):
            c.say(f"      recovered an interrupted run first: {recovered.result}"
                  f" ({recovered.reason})")
        active = c.active()
        if run.exec_path is not None and c.runtime.name != "process":
            raise Refused(f"--exec is for the process runtime; {active.name} runs in a "
                          "container: use --image IMAGE (or `upgrade-docker`)")
        if run.image is not None and c.runtime.name != "docker":
            raise Refused(f"--image needs the docker runtime; {active.name} is a process "
                          "on this host: use --exec PATH")
        try:
            c.runtime.check_target(run.target)
        except RuntimeFailure as e:
            raise Refused(str(e)) from None
        run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        c.journal.acquire(run_id)
        run.active, run.run_id, run.locked = active, run_id, True
        out = run.out
        out.run_id, out.old = run_id, active.name
        hot = (c.hot_standby(active) if run.target is None and c.runtime.name == "process"
               else None)
        if hot is not None:
            run.hot = True
            run.new = out.new = hot[0]
            run.new_ctl, run.new_pid = hot[1]["ctl"], hot[1]["pid"]
        else:
            run.new = out.new = f"{active.name.split('~')[0]}~{int(active.epoch or 0) + 1}"
            run.new_ctl = os.path.join(os.path.dirname(active.ctl), f"{run.new}.sock")
        run.warm_before = c.journal.warm_enabled()
        if run.warm_before != "true":
            c.journal.set_warm_enabled("true")
        run.fields = c.runtime.journal_fields(active)
        c.journal.start_run(run_id, {"old": active.name, "old_pid": str(active.pid),
                                     "old_handle": active.handle, "runtime": c.runtime.name,
                                     "new": run.new, "new_ctl": run.new_ctl,
                                     "exec": run.exec_path or "", "image": run.image or "",
                                     "orchestrator_pid": str(os.getpid()), **run.fields})
        return (f"active {active.name} {c.runtime.describe(active.handle)} "
                f"epoch {active.epoch}")


class StartStandby:
    name = "standby"

    def title(self, c: Controller, run: Run) -> str:
        old = run.old
        if run.hot:
            return f"hot standby {run.new}: already running and READY (started by the supervisor)"
        if c.runtime.name == "docker":
            how = f"image {run.image}" if run.image else "same image"
            return (f"start standby {run.new} ({how}): container {old.container_name} -> "
                    f"{old.container_name}_bak, new {old.container_name}")
        how = f"--exec {run.exec_path}" if run.exec_path else "same executable"
        return f"start standby {run.new} ({how}) in the active's network namespace"

    def run(self, c: Controller, run: Run) -> str:
        ctl(run.old.ctl, "shadow", seconds=run.timeout + 30.0)
        if run.hot:
            assert run.new_pid is not None
            c.journal.stage(run.run_id, "standby_started", new_pid=run.new_pid,
                            new_handle=run.new_pid)
            return f"{c.runtime.describe(run.new_pid)}, reused"
        run.new_pid = c.runtime.start_standby(run.old, run.new, run.target)
        c.journal.stage(run.run_id, "standby_started", new_pid=run.new_pid,
                        new_handle=run.new_pid)
        return c.runtime.describe(run.new_pid)


class WaitReady:
    name = "ready"

    def title(self, c: Controller, run: Run) -> str:
        return f"wait until the standby is READY (byte-identical PDUs; limit {run.timeout:.0f} s)"

    def run(self, c: Controller, run: Run) -> str:
        new_pid = run.new_pid
        assert new_pid is not None

        def ready(_left: float) -> bool:
            if not c.runtime.alive(new_pid):
                raise Rollback(f"standby {run.new} exited before READY (see its log next to "
                               f"{run.new_ctl})")
            return info(run.new_ctl).ready

        try:
            # seconds-long and off the partner-visible path: poll gently, so the orchestrator
            # does not take CPU from the standby that is starting up
            poll_until("standby READY", time.monotonic() + run.timeout, ready, every=0.1)
        except Deadline:
            detail = ""
            with contextlib.suppress(ControlError):
                detail = info(run.new_ctl).ready_detail
            raise Rollback(f"standby not READY within {run.timeout:.0f} s"
                           f"{': ' + detail if detail else ''}") from None
        c.journal.stage(run.run_id, "restored", sonic_state="restored")
        return ""


class Yield:
    name = "yield"

    def title(self, c: Controller, run: Run) -> str:
        return f"SIGUSR1 to {run.old.name}: refresh every port, stop, final snapshot"

    def run(self, c: Controller, run: Run) -> str:
        c.runtime.signal(run.old.handle, signal.SIGUSR1)
        run.yielded = True

        def yielded(left: float) -> InstanceInfo | None:
            i = info(run.old.ctl, timeout=min(0.5, left))
            return i if i.role == "yielded" and i.final_written else None

        old_info: InstanceInfo = poll_until("yield", time.monotonic() + YIELD_DEADLINE_S,
                                            yielded)
        assert old_info.yielded_at is not None
        run.yielded_at = old_info.yielded_at
        c.journal.stage(run.run_id, "yielded")
        return ""


class Takeover:
    name = "takeover"

    def title(self, c: Controller, run: Run) -> str:
        return f"SIGRTMIN to {run.new}: take over, first PDU one period after the last"

    def run(self, c: Controller, run: Run) -> str:
        assert run.new_pid is not None
        c.runtime.signal(run.new_pid, signal.SIGRTMIN)

        def confirmed(left: float) -> InstanceInfo | None:
            i = info(run.new_ctl, timeout=min(0.5, left))
            if i.takeover_error:
                raise Rollback(f"standby refused the takeover: {i.takeover_error}")
            return i if i.confirmed else None

        new_info: InstanceInfo = poll_until("first PDUs from the new owner",
                                            run.yielded_at + CONFIRM_AFTER_YIELD_S, confirmed)
        # The new owner holds the epoch and transmits: from here on the only way is forward.
        # A rollback now would kill it while the old one is already retiring, so journal
        # writes become best effort (`warm-restart recover` completes the record).
        run.unjournaled = c._try_journal(c.journal.stage, run.run_id, "replayed",
                                         sonic_state="replayed", epoch=str(new_info.epoch))
        out = run.out
        out.lags = gaps(new_info)
        worst = max((v["max_gap_s"] for v in out.lags.values() if v["max_gap_s"] is not None),
                    default=0.0)
        if worst > GAP_BUDGET_S:
            # no flap (that needs 3 s), but the promise is "not one late PDU": say so
            out.warnings.append(f"largest PDU gap {worst:.3f} s exceeds the {GAP_BUDGET_S} s "
                                "budget (machine overloaded?)")
            c.say(f"      WARNING: {out.warnings[-1]}")
        return f"epoch {new_info.epoch}"


class Retire:
    name = "retire"

    def title(self, c: Controller, run: Run) -> str:
        return f"retire {run.old.name} (exits without touching anything)"

    def run(self, c: Controller, run: Run) -> str:
        old = run.old
        with contextlib.suppress(ControlError):
            ctl(old.ctl, "retire")
        deadline = time.monotonic() + RETIRE_DEADLINE_S
        while c.runtime.alive(old.handle) and time.monotonic() < deadline:
            time.sleep(0.01)
        if c.runtime.alive(old.handle):
            c.runtime.kill(old.handle)  # it is retired: a kill touches nothing
        if not c.runtime.alive(old.handle):
            c._forget(old.name)  # if it was killed, its record would stay behind
            assert run.new_pid is not None
            c.runtime.committed(old, run.new_pid)
        return ""


class Commit:
    name = "commit"

    def title(self, c: Controller, run: Run) -> str:
        return "commit"

    def run(self, c: Controller, run: Run) -> str:
        out = run.out
        run.unjournaled = run.unjournaled or c._try_journal(
            c.journal.finish, run.run_id, "completed",
            summary={"lags": out.lags, "stages": out.stages})
        return ""


# the hitless restart, in order (hld §7); `warm-restart teamd` prints [n/len(STAGES)]
STAGES: tuple[Stage, ...] = (Precheck(), StartStandby(), WaitReady(), Yield(), Takeover(),
                             Retire(), Commit())


def gaps(new_info: InstanceInfo) -> dict[str, dict[str, Any]]:
    """Per LAG: the largest gap between the old owner's last PDU and the new one's first.

    Both are CLOCK_MONOTONIC send instants on this host; the partner sees the same gap plus
    wire jitter.
    """
    last = new_info.handed_from.last_tx if new_info.handed_from else {}
    first = new_info.first_tx
    per_lag: dict[str, dict[str, Any]] = {}
    for lag, ports in new_info.ports_by_lag.items():
        gs: dict[str, float] = {}
        for p in ports:
            was = last.get(p)
            if p in first and was is not None:
                gs[p] = first[p] - was
        per_lag[lag] = {"max_gap_s": max(gs.values()) if gs else None, "ports": gs}
    return per_lag

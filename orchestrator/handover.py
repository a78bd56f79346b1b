"""The handover controller behind `warm-restart teamd` and `warm-restart recover`.

Stages (each journaled in STATE_DB, each with a deadline):
  precheck -> standby started -> standby READY (restored) -> old yielded -> new confirmed
  (replayed) -> old retired -> committed (reconciled)
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
from typing import Any

import redis
from teamd_shim.contract import ContractError, InstanceInfo
from teamd_shim.control import ControlError, request
from teamd_shim.ownership import OwnerStore, instance_alive
from teamd_shim.sonic_db import Endpoint

from .journal import Journal, LockHeld, holder_alive
from .runtime import Instance, ProcessRuntime, Runtime, RuntimeFailure, runtime_for

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
YIELD_DEADLINE_S = 0.5
CONFIRM_AFTER_YIELD_S = 1.25  # the new owner's first PDUs are due 1.0 s after the yield
RETIRE_DEADLINE_S = 3.0
POLL_S = 0.005
CHECK_FLOOR_S = 0.02  # the shortest control request a deadline wait makes
GAP_BUDGET_S = 1.1  # hld §8: largest PDU inter-arrival at the partner through a handover

DONE, ROLLED_BACK, REFUSED = 0, 1, 2


@dataclass
class Outcome:
    code: int
    result: str  # completed | rolled_back | refused | nothing
    reason: str = ""
    run_id: str = ""
    old: str = ""
    new: str = ""
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    lags: dict[str, dict[str, Any]] = field(default_factory=dict)
    wall_s: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Refused(Exception):
    """Stop before anything changed (exit 2)."""


class Rollback(Exception):
    """Undo: the old owner stays or becomes active again (exit 1)."""


class RollbackIncomplete(RuntimeError):
    """A rollback that could not confirm the successor dead, so it did not resume the old
    owner; the message says what was left and what to do."""


class Deadline(Rollback):
    """A stage's deadline passed (as opposed to a failure seen before it)."""


def ctl(path: str, cmd: str, timeout: float = 2.0, **kw: Any) -> Any:
    return request(path, {"cmd": cmd, **kw}, timeout=timeout)


def info(path: str, timeout: float = 2.0) -> InstanceInfo:
    """`ctl info` as the typed contract; a reply of another shape is a ControlError."""
    try:
        return InstanceInfo.from_json(ctl(path, "info", timeout=timeout))
    except ContractError as e:
        raise ControlError(f"{path}: {e}") from None


def poll_until(what: str, deadline: float, check: Callable[[float], Any],
               every: float = POLL_S) -> Any:
    """Poll `check` until truthy; a ControlError (busy or starting shim) means "not yet".

    `check` gets the seconds left (at least CHECK_FLOOR_S) and must not block longer: on the
    partner-visible stages a control request to a stopped or hung shim would otherwise run
    past the deadline by its whole socket timeout, and the rollback's PDUs with it.
    """
    while True:
        left = max(CHECK_FLOOR_S, deadline - time.monotonic())
        try:
            got = check(left)
        except ControlError:
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise Deadline(f"{what}: deadline passed")
        time.sleep(every)


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

    # ---- helpers ---------------------------------------------------------------------------
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
        t0 = time.monotonic()
        out = Outcome(code=REFUSED, result="refused")
        stage_t = time.monotonic()
        current = ""  # the stage a failure happened in, for the reason a user reads

        def stage(n: int, name: str, text: str) -> None:
            nonlocal stage_t, current
            now = time.monotonic()
            self.say(f"[{n}/7] {text}")
            stage_t = now
            current = name

        def done(name: str, note: str = "") -> None:
            took = time.monotonic() - stage_t
            out.stages[name] = took
            self.say(f"      ok ({took * 1000:.0f} ms){' - ' + note if note else ''}")

        stage(1, "precheck", "precheck: redis, lock, active instance")
        try:
            self.journal.ping()
        except REDIS_ERRORS as e:
            return self._refused(out, f"redis unreachable at {self.endpoint.url}: {e}")
        recovered = self.recover(only_if_stale=True)
        if recovered.result not in ("nothing",):
            self.say(f"      recovered an interrupted run first: {recovered.result}"
                     f" ({recovered.reason})")
        try:
            active = self.active()
            if exec_path is not None and self.runtime.name != "process":
                raise Refused(f"--exec is for the process runtime; {active.name} runs in a "
                              "container: use --image IMAGE (or `upgrade-docker`)")
            image = image or self.image
            if image is not None and self.runtime.name != "docker":
                raise Refused(f"--image needs the docker runtime; {active.name} is a process "
                              "on this host: use --exec PATH")
            target = exec_path or image
            try:
                self.runtime.check_target(target)
            except RuntimeFailure as e:
                raise Refused(str(e)) from None
            run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
            self.journal.acquire(run_id)
        except LockHeld as e:
            return self._refused(out, str(e))
        except Refused as e:
            return self._refused(out, str(e))
        except REDIS_ERRORS as e:
            return self._refused(out, f"redis unreachable at {self.endpoint.url}: {e}")
        out.run_id, out.old = run_id, active.name
        base = active.name.split("~")[0]
        new = f"{base}~{int(active.epoch or 0) + 1}"
        out.new = new
        new_ctl = os.path.join(os.path.dirname(active.ctl), f"{new}.sock")
        warm_before = None
        new_pid: str | None = None  # the runtime's handle of the standby
        yielded = False
        fields: dict[str, str] = {}  # what the runtime needs to undo its changes
        try:
            warm_before = self.journal.warm_enabled()
            if warm_before != "true":
                self.journal.set_warm_enabled("true")
            fields = self.runtime.journal_fields(active)
            self.journal.start_run(run_id, {"old": active.name, "old_pid": str(active.pid),
                                            "old_handle": active.handle,
                                            "runtime": self.runtime.name,
                                            "new": new, "new_ctl": new_ctl,
                                            "exec": exec_path or "", "image": image or "",
                                            "orchestrator_pid": str(os.getpid()),
                                            **fields})
            done("precheck", f"active {active.name} {self.runtime.describe(active.handle)} "
                             f"epoch {active.epoch}")

            if self.runtime.name == "docker":
                how = (f"image {image}" if image else "same image")
                text = (f"start standby {new} ({how}): container {active.container_name} -> "
                        f"{active.container_name}_bak, new {active.container_name}")
            else:
                how = f"--exec {exec_path}" if exec_path else "same executable"
                text = f"start standby {new} ({how}) in the active's network namespace"
            stage(2, "standby", text)
            ctl(active.ctl, "shadow", seconds=timeout + 30.0)
            new_pid = self.runtime.start_standby(active, new, target)
            self.journal.stage(run_id, "standby_started", new_pid=new_pid, new_handle=new_pid)
            done("standby", self.runtime.describe(new_pid))

            stage(3, "ready", "wait until the standby is READY (byte-identical PDUs; "
                              f"limit {timeout:.0f} s)")

            def ready(_left: float) -> bool:
                assert new_pid is not None
                if not self.runtime.alive(new_pid):
                    raise Rollback(f"standby {new} exited before READY (see its log next to "
                                   f"{new_ctl})")
                return info(new_ctl).ready

            try:
                # seconds-long and off the partner-visible path: poll gently, so the orchestrator
                # does not take CPU from the standby that is starting up
                poll_until("standby READY", time.monotonic() + timeout, ready, every=0.1)
            except Deadline:
                detail = ""
                try:
                    detail = info(new_ctl).ready_detail
                except ControlError:
                    pass
                raise Rollback(f"standby not READY within {timeout:.0f} s"
                               f"{': ' + detail if detail else ''}") from None
            self.journal.stage(run_id, "restored", sonic_state="restored")
            done("ready")

            stage(4, "yield",
                  f"SIGUSR1 to {active.name}: refresh every port, stop, final snapshot")
            self.runtime.signal(active.handle, signal.SIGUSR1)
            yielded = True
            old_info: InstanceInfo = poll_until(
                "yield", time.monotonic() + YIELD_DEADLINE_S, lambda left: (
                    lambda i: i if i.role == "yielded" and i.final_written else None)(
                        info(active.ctl, timeout=min(0.5, left))))
            assert old_info.yielded_at is not None
            yielded_at = old_info.yielded_at
            self.journal.stage(run_id, "yielded")
            done("yield")

            stage(5, "takeover",
                  f"SIGRTMIN to {new}: take over, first PDU one period after the last")
            self.runtime.signal(new_pid, signal.SIGRTMIN)

            def confirmed(left: float) -> InstanceInfo | None:
                i = info(new_ctl, timeout=min(0.5, left))
                if i.takeover_error:
                    raise Rollback(f"standby refused the takeover: {i.takeover_error}")
                return i if i.confirmed else None

            new_info: InstanceInfo = poll_until("first PDUs from the new owner",
                                  yielded_at + CONFIRM_AFTER_YIELD_S, confirmed)
            # The new owner holds the epoch and transmits: from here on the only way is
            # forward. A rollback now would kill it while the old one is already retiring, so
            # journal writes become best effort (`warm-restart recover` completes the record).
            unjournaled = self._try_journal(self.journal.stage, run_id, "replayed",
                                            sonic_state="replayed", epoch=str(new_info.epoch))
            done("takeover", f"epoch {new_info.epoch}")
            out.lags = gaps(new_info)
            worst = max((v["max_gap_s"] for v in out.lags.values()
                         if v["max_gap_s"] is not None), default=0.0)
            if worst > GAP_BUDGET_S:
                # no flap (that needs 3 s), but the promise is "not one late PDU": say so
                out.warnings.append(f"largest PDU gap {worst:.3f} s exceeds the "
                                    f"{GAP_BUDGET_S} s budget (machine overloaded?)")
                self.say(f"      WARNING: {out.warnings[-1]}")

            stage(6, "retire", f"retire {active.name} (exits without touching anything)")
            try:
                ctl(active.ctl, "retire")
            except ControlError:
                pass
            deadline = time.monotonic() + RETIRE_DEADLINE_S
            while self.runtime.alive(active.handle) and time.monotonic() < deadline:
                time.sleep(0.01)
            if self.runtime.alive(active.handle):
                self.runtime.kill(active.handle)  # it is retired: a kill touches nothing
            if not self.runtime.alive(active.handle):
                self._forget(active.name)  # if it was killed, its record would stay behind
                self.runtime.committed(active, new_pid)
            done("retire")

            stage(7, "commit", "commit")
            unjournaled = unjournaled or self._try_journal(
                self.journal.finish, run_id, "completed",
                summary={"lags": out.lags, "stages": out.stages})
            done("commit")
            out.code, out.result = DONE, "completed"
            if unjournaled:
                out.reason = (f"{active.name} -> {new} done, but the journal could not be "
                              f"written ({unjournaled}); `warm-restart recover` records it")
        except Rollback as e:
            out.code, out.result, out.reason = ROLLED_BACK, "rolled_back", str(e)
            self.say(f"      FAILED: {e}; rolling back")
            if self._rolled_back(out, active, new_pid, yielded, new, fields):
                try:
                    self.journal.finish(run_id, "rolled_back", str(e))
                except REDIS_ERRORS as re:
                    out.reason += f" (journal not written: redis unreachable: {re})"
        except (REDIS_ERRORS + (ControlError, OSError, RuntimeFailure)) as e:
            out.code, out.result = ROLLED_BACK, "rolled_back"
            what = "redis did not answer" if isinstance(e, REDIS_ERRORS) else type(e).__name__
            out.reason = f"stage {current or 'precheck'}: {what}: {e}"
            self.say(f"      FAILED: {out.reason}; rolling back")
            if self._rolled_back(out, active, new_pid, yielded, new, fields):
                try:
                    self.journal.finish(run_id, "rolled_back", out.reason)
                except REDIS_ERRORS:
                    out.reason += " (journal not written: redis unreachable)"
        finally:
            try:
                self.journal.release(run_id)
                if warm_before != "true":
                    self.journal.set_warm_enabled(warm_before)
            except REDIS_ERRORS as e:
                self.say(f"      warning: could not release the lock / restore "
                         f"WARM_RESTART_ENABLE_TABLE|teamd: {e}; `warm-restart recover` will")
        out.wall_s = time.monotonic() - t0
        return out

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

"""The handover controller behind `warm-restart teamd` and `warm-restart recover`.

`STAGES` (orchestrator/stages.py), in order, one object each (each journaled in STATE_DB, each
with a deadline; the `[n/N]` progress lines and the outcome's per-stage seconds come from that
list):
  Precheck -> StartStandby (standby_started) -> WaitReady (restored) -> Yield (yielded) ->
  Takeover (replayed, confirmed) -> Retire -> Commit (reconciled)
Anything that fails before the old owner yielded only removes the standby. After the yield, a
missing confirmation rolls back: the standby is killed *first*, then the yielded owner resumes;
so two owners never hold the dataplane at once (the epoch CAS in Redis enforces the same).
`recover` loads the journal and the instances, asks recovery.decide (pure) and acts on its plan.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable

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
from orchestrator.recovery import (
    NOTHING,
    Action,
    InstanceFacts,
    JournalFacts,
    RecoveryFacts,
    RecoveryPlan,
    decide,
    interrupted,
    recorded_owner,
    standby_handle,
)
from orchestrator.runtime import Instance, ProcessRuntime, Runtime, RuntimeFailure, runtime_for
from orchestrator.shimctl import CHECK_FLOOR_S, POLL_S, ctl, info, poll_until
from orchestrator.stages import (
    CONFIRM_AFTER_YIELD_S,
    GAP_BUDGET_S,
    REDIS_ERRORS,
    RETIRE_DEADLINE_S,
    STAGES,
    YIELD_DEADLINE_S,
    Run,
    Stage,
    StageContext,
    find_hot_standby,
    forget,
    gaps,
    retire,
)
from teamd_shim.control.transport import ControlError
from teamd_shim.db.ownership import OwnerStore, instance_alive
from teamd_shim.db.sonic_db import Endpoint
from teamd_shim.model.contract import ContractError, InstanceInfo

# the names this module always had, for the CLI, the lab and the tests
__all__ = [
    "CHECK_FLOOR_S",
    "CONFIRM_AFTER_YIELD_S",
    "DONE",
    "GAP_BUDGET_S",
    "POLL_S",
    "REDIS_ERRORS",
    "REFUSED",
    "RETIRE_DEADLINE_S",
    "ROLLED_BACK",
    "STAGES",
    "YIELD_DEADLINE_S",
    "Controller",
    "Deadline",
    "Outcome",
    "Refused",
    "Rollback",
    "RollbackIncomplete",
    "Run",
    "Stage",
    "ctl",
    "gaps",
    "info",
    "poll_until",
]


class Controller:
    """Runs the stages and owns what they must not decide alone: refusing before the lock,
    rolling back after it, releasing the lock, and recovering a run whose orchestrator died.
    It is the stages' StageHost because both of its lookups (re)choose the runtime."""

    def __init__(
        self,
        endpoint: Endpoint,
        runtime: Runtime | None = None,
        progress: Callable[[str], None] = lambda s: None,
        *,
        runtime_name: str = "auto",
        image: str | None = None,
    ) -> None:
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
        """Kept for callers of the controller; the precheck asks stages.find_hot_standby."""
        return find_hot_standby(self.store, active)

    def active(self) -> Instance:
        cur = self.store.owner()
        if cur is None:
            raise Refused(
                "no teamd-shim owns the LAGs (no TEAMD_OWNER_TABLE|teamd): start one first"
            )
        rec = self.store.instance(cur.owner)
        if not instance_alive(rec):
            raise Refused(
                f"the owner {cur.owner!r} is not running (no live instance record); "
                "start teamd-shim, or run `warm-restart recover`"
            )
        try:
            inst = Instance.from_record(cur.owner, rec)
            if not self._fixed_runtime:
                self.runtime = runtime_for("auto", inst, self.image)
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
    def restart(
        self, exec_path: str | None = None, timeout: float = 20.0, image: str | None = None
    ) -> Outcome:
        """Run STAGES in order. The `[n/N]` lines and the outcome's per-stage seconds come
        from that list; a failure is refused (before the lock: nothing changed), rolled back
        (after it), or left for `recover` when the rollback cannot finish."""
        t0 = time.monotonic()
        out = Outcome(code=REFUSED, result="refused")
        run = Run(exec_path=exec_path, image=image or self.image, timeout=timeout, out=out)
        ctx = StageContext(journal=self.journal, store=self.store, say=self.say, host=self)
        stages = self.stages
        current = stages[0]
        try:
            for n, current in enumerate(stages, 1):
                self.say(f"[{n}/{len(stages)}] {current.title(ctx, run)}")
                started = time.monotonic()
                note = current.run(ctx, run)
                took = time.monotonic() - started
                out.stages[current.name] = took
                self.say(f"      ok ({took * 1000:.0f} ms){' - ' + note if note else ''}")
            out.code, out.result = DONE, "completed"
            if run.unjournaled:
                out.reason = (
                    f"{run.old.name} -> {run.new} done, but the journal could not be "
                    f"written ({run.unjournaled}); `warm-restart recover` records it"
                )
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
                    self.journal.break_lock(run.run_id)
                    if run.warm_before != "true":
                        self.journal.set_warm_enabled(run.warm_before)
                except REDIS_ERRORS as e:
                    self.say(
                        f"      warning: could not release the lock / restore "
                        f"WARM_RESTART_ENABLE_TABLE|teamd: {e}; `warm-restart recover` "
                        "will"
                    )
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

    def _rolled_back(
        self,
        out: Outcome,
        old: Instance,
        new_pid: str | None,
        yielded: bool,
        new_name: str,
        fields: dict[str, str],
    ) -> bool:
        """Roll back; False (and the outcome says so) if it had to stop half-way. The run
        then stays `running` in the journal, for `warm-restart recover`."""
        try:
            self._rollback(old, new_pid, yielded, new_name, fields)
        except RollbackIncomplete as e:
            out.result = "rollback_incomplete"
            out.reason = f"{out.reason}; {e}"
            return False
        return True

    def _rollback(
        self,
        old: Instance,
        new_pid: str | None,
        yielded: bool,
        new_name: str,
        fields: dict[str, str],
    ) -> None:
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
            self.say(
                f"      {new_name} is still alive after SIGKILL: NOT resuming {old.name} "
                "(two owners must never both write); it keeps the partner's PDUs going "
                "while yielded. Stop the standby by hand, then run `warm-restart recover`"
            )
            raise RollbackIncomplete(
                f"{new_name} could not be stopped; {old.name} left yielded (PDUs continue, "
                "dataplane frozen): stop the standby, then `warm-restart recover`"
            )
        if new_pid is not None and new_name:
            forget(self.store, self.say, new_name)
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

    # ---- recovery: load -> decide (orchestrator/recovery.py, pure) -> act --------------------
    def recover(self, only_if_stale: bool = False) -> Outcome:
        """Finish or roll back a run whose orchestrator died; says which."""
        return self.act(decide(self.load_recovery_facts(), only_if_stale))

    def load_recovery_facts(self) -> RecoveryFacts:
        """Read what `decide` needs, in the order recovery always read it; the instances
        (and the runtime the interrupted run used) only when there is a run to recover."""
        holder = self.journal.lock_holder()
        run_id = holder.get("run_id") or self.journal.last_run_id() or ""
        run = self.journal.run(run_id) if run_id else {}
        journal = JournalFacts(
            holder=holder,
            holder_alive=bool(holder) and holder_alive(holder),
            run_id=run_id,
            run=run,
        )
        if not interrupted(journal):
            return RecoveryFacts(journal)
        if not self._fixed_runtime and run.get("runtime"):
            self.runtime = runtime_for(run["runtime"], None, self.image)
        return RecoveryFacts(journal, self._load_instances(run))

    def _load_instances(self, run: dict[str, str]) -> InstanceFacts:
        old_name, new_name = run.get("old", ""), run.get("new", "")
        owner = self.store.owner()
        new_rec = self.store.instance(new_name) if new_name else {}
        old_rec = self.store.instance(old_name) if old_name else {}
        # the runtime's handles of both (pids for `process`, container ids for `docker`)
        new_h = standby_handle(run, new_rec, self.runtime.name)
        old = recorded_owner(old_name, run, old_rec)
        if old_rec and old.ctl:  # a host-reachable control socket (docker: via the mounts)
            with contextlib.suppress(RuntimeFailure):
                old = dataclasses.replace(
                    self.runtime.locate(old), handle=old.handle, container_name=old.container_name
                )
        new_ctl = run.get("new_ctl", "") or new_rec.get("ctl", "")
        new_alive = bool(new_h) and self.runtime.alive(new_h)
        owner_name = owner.owner if owner is not None else None
        new_role: str | None = None
        # the successor is asked only when the owner record does not already name it
        if new_alive and owner_name != new_name and new_ctl:
            with contextlib.suppress(ControlError):
                new_role = info(new_ctl).role
        old_alive = bool(old.handle) and self.runtime.alive(old.handle)
        return InstanceFacts(
            old=old,
            old_recorded=bool(old_rec),
            old_alive=old_alive,
            new_handle=new_h,
            new_ctl=new_ctl,
            new_alive=new_alive,
            owner=owner_name,
            new_role=new_role,
        )

    def act(self, plan: RecoveryPlan) -> Outcome:
        """Carry out a recovery plan: the same writes, in the same order, as ever."""
        out = Outcome(code=DONE, result="nothing", reason=NOTHING.reason)
        if plan.action is Action.NOTHING_TO_DO:
            return out
        if plan.action is Action.REFUSE:
            return self._refused(out, plan.reason)
        out.run_id, out.old, out.new = plan.run_id, plan.old_name, plan.new_name
        assert plan.old is not None
        if plan.action is Action.COMPLETE:
            self._complete(plan, plan.old)
        else:
            self._undo(plan, plan.old)
            out.code = ROLLED_BACK
        out.result, out.reason = plan.result, plan.reason
        if plan.finish_run:
            self.journal.finish(plan.run_id, out.result, f"recovered: {out.reason}")
        if plan.break_lock is not None:
            self.journal.break_lock(plan.break_lock)
        if out.result == "completed":
            out.code = DONE
        return out

    def _complete(self, plan: RecoveryPlan, old: Instance) -> None:
        """The successor owns the LAGs: let it confirm, then retire the old owner."""
        new_ctl = plan.new_ctl
        try:
            poll_until(
                "new owner confirmation",
                time.monotonic() + 2.0,
                lambda left: info(new_ctl, timeout=left).confirmed,
            )
        except Rollback:
            pass
        if plan.old_alive:
            retire(self.runtime, old, wait_if_unanswered=False)
        if plan.forget_old:
            forget(self.store, self.say, plan.old_name)
        self.runtime.committed(old, plan.new_handle)

    def _undo(self, plan: RecoveryPlan, old: Instance) -> None:
        """The successor never took over: remove it, then make sure the old owner transmits."""
        new_h = plan.new_handle
        if new_h and self.runtime.alive(new_h):
            self.runtime.kill(new_h)
        if plan.new_name and (not new_h or not self.runtime.alive(new_h)):
            forget(self.store, self.say, plan.new_name)
        self.runtime.rolled_back(old, new_h or None, plan.run)
        if plan.old_alive:
            try:
                if info(old.ctl).role == "yielded":
                    ctl(old.ctl, "resume", force=True)
            except ControlError:
                pass

"""The handover driver: the Redis and thread side of the role machine (hld §6-§7).

The role machine (roles/machine.py) decides; this module executes: it feeds it events and
deadlines, runs the effects it returns against Redis (worker threads) and the LAG runner (the
event loop), publishes snapshots and the instance record, follows the active as a standby, and
takes over. Every method runs on the shim's event loop unless it says it is a thread.

The handover is phase-continuous: on yield every port gets one PDU now (teamd's SIGUSR1
"refresh"), so each port's next PDU is due one full period later; the new owner restores the
final snapshot, whose deadlines are absolute CLOCK_MONOTONIC times, and simply keeps that
schedule. Nothing says goodbye, no link or kernel object is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol, TypeVar

import redis

from teamd_shim import __version__
from teamd_shim.control.alias import OwnerAlias
from teamd_shim.db.ownership import (
    OWNER_KEY,
    Owner,
    OwnershipError,
    OwnerStore,
    instance_alive,
    netns_id,
)
from teamd_shim.db.publisher import Publisher
from teamd_shim.db.schema import shim_instance, shim_state
from teamd_shim.io.dataplane import Dataplane
from teamd_shim.io.identity import container_id, host_id, pid_namespace, proc_starttime
from teamd_shim.io.links import LinkInfo
from teamd_shim.io.timers import rearm
from teamd_shim.io.wire_tap import WireTap
from teamd_shim.model.config import PortSettings
from teamd_shim.model.contract import HandedFrom, InstanceInfo, SnapshotMeta
from teamd_shim.model.running_lag import RunningLag
from teamd_shim.roles import readiness
from teamd_shim.roles.hot_standby import HotWatcher
from teamd_shim.roles.liveness import (
    HEARTBEAT_EVERY_S,
    Beat,
    Loss,
    Plan,
    Watch,
    plan_promotion,
)
from teamd_shim.roles.machine import (
    AUTO_RESUME_S,
    RETIRE_WHEN_SUPERSEDED_S,
    SHADOW_LEASE_S,
    CompareAndSetSelf,
    ConfirmAlive,
    Confirmed,
    Effect,
    Event,
    Exit,
    IllegalTransition,
    PublishShadow,
    ResumeAfterStall,
    ResumeLocal,
    Role,
    RoleMachine,
    WriteFinal,
)
from teamd_shim.roles.owner_guard import OwnerGuard, Verdict
from teamd_shim.roles.replay import RxLog, restore
from teamd_shim.roles.shadow import ShadowView, ShadowWriter


class LagHost(Protocol):
    """What the driver needs of the LAG runner (daemon.runner.LagRunner), named here so that the
    role layer does not import the daemon above it: the composition root hands the runner in."""

    lags: dict[str, RunningLag]
    rx_cut: dict[str, int]
    links: dict[str, LinkInfo]
    port_lag: dict[str, str]
    dataplane: Dataplane

    def lacp_snapshot(self) -> dict[str, dict[str, Any]]: ...
    def sync_dataplane(self) -> None: ...
    def service_all(self, now: float) -> None: ...
    def refresh_all(self, now: float) -> None: ...
    def kernel_differs(self) -> list[str]: ...
    def mark_dirty(self, names: Iterable[str]) -> None: ...
    def port_settings(self, port: str) -> PortSettings: ...


log = logging.getLogger(__name__)
T = TypeVar("T")

FOLLOW_EVERY_S = 0.25  # how often a standby reads the active's published state
WATCH_LEASE_S = 2.0  # shadow publishing while a hot standby watches, renewed every heartbeat
WATCH_BUFFER_MAX = 65536  # a watcher that reads nothing (stopped) gets no more heartbeats
KILL_WAIT_S = 1.0  # how long a promotion waits to see the fenced owner's process gone
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

# owner record forward to (ARGV[1], ARGV[2]) only if its epoch is lower (never backwards)
OWNER_FORWARD_LUA = """
local e = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if e >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'owner', ARGV[2], 'since', ARGV[3])
return 1
"""


class HandoverDriver:
    """Drives one instance's role machine; see the module docstring."""

    def __init__(
        self,
        name: str,
        rm: RoleMachine,
        store: OwnerStore,
        publisher: Publisher,
        runner: LagHost,
        *,
        on_exit: Callable[[], None],
    ) -> None:
        self.name = name
        self.rm = rm
        self.store = store
        self.publisher = publisher
        self.runner = runner
        self._on_exit = on_exit
        self.ctl_path = ""  # the control socket, for the instance record
        # owner again by a takeover, a promotion or a resume (not at start-up)
        self.on_owner: Callable[[], None] = lambda: None
        self.owner_guard = OwnerGuard(name)  # the active's check of the owner record
        self._owner_suspect = ""
        self.rx = RxLog()
        self.ready = False
        self.ready_detail = "no snapshot from the active yet"
        self.takeover_error = ""
        self.handed_from: HandedFrom | None = None
        self._yield_snapshot: dict[str, dict[str, Any]] = {}
        self._final_write: asyncio.Future[dict[str, Any]] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._follow_stop = threading.Event()
        self._role_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # hot standby (hld §14): watches the owner, promotes itself when it is lost
        self.hot = False
        self.watcher: HotWatcher | None = None
        self.wire: WireTap | None = None
        self._last_shadow: tuple[SnapshotMeta, dict[str, dict[str, Any]]] | None = None
        self._shadow_out = ShadowWriter()  # the active's shadow, by what changed (hld §14.7)
        self._verdicts = readiness.Verdicts()  # a standby's READY, per LAG
        self.last_owner: Owner | None = None  # as the follow thread last read it
        self.promotion: dict[str, str] = {}  # how we became the owner, for `status`
        self.promotion_refused = ""
        # the owner's side: the hot standbys watching us, and their heartbeat
        self._watchers: set[asyncio.StreamWriter] = set()
        self._beat_handle: asyncio.TimerHandle | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def stop(self) -> None:
        self._follow_stop.set()
        if self.watcher is not None:
            self.watcher.stop()
        if self.wire is not None:
            self.wire.close()
        if self._beat_handle is not None:
            self._beat_handle.cancel()
            self._beat_handle = None
        if self._role_timer is not None:
            self._role_timer.cancel()
            self._role_timer = None

    # ---- registration ----------------------------------------------------------------------
    def instance_record(self) -> dict[str, str]:
        rm = self.rm
        return {
            "pid": str(os.getpid()),
            "starttime": str(proc_starttime(os.getpid()) or ""),
            "host": host_id(),
            "pidns": pid_namespace(),
            "container": container_id(),
            "argv": json.dumps(sys.argv),
            "netns": netns_id(),
            "version": __version__,
            "role": rm.role,
            "epoch": "" if rm.epoch is None else str(rm.epoch),
            "ctl": self.ctl_path,
            "heartbeat": f"{time.time():.3f}",
            "ready": "true" if self.ready else "false",
            "ready_detail": self.ready_detail,
            "confirmed": "true" if rm.confirmed else "false",
            "hot": "true" if self.hot else "false",
            "promotion_refused": self.promotion_refused,
            **{f"promoted_{k}": v for k, v in self.promotion.items()},
        }

    def heartbeat(self) -> None:
        """Every second until retired: the instance record, and the owner record kept."""
        if self._beat_handle is None and self.rm.last_beat is None:
            self._beat()  # the 0.1 s heartbeat: watchers' liveness and our own stall check
        self._put_instance_record()
        rm = self.rm
        if rm.owns_dataplane and self.ctl_path and not OwnerAlias(self.ctl_path).held():
            # removed by hand, or by an old owner's release racing our swap: put it back
            self._hold_alias()
        if self._loop is not None and rm.role is Role.ACTIVE and rm.epoch is not None:
            self._loop.run_in_executor(None, self._keep_owner_record, rm.epoch)
        if self._loop is not None and rm.role is not Role.RETIRED:
            self._loop.call_later(1.0, self.heartbeat)

    def keep_owner_record_now(self) -> None:
        """Redis answers again (the publisher's reconnect): check the owner record now rather
        than at the next heartbeat, so a standby that promoted while Redis was down has its
        epoch in the record before a supervisor's look could miss it (hld §14.4)."""
        rm = self.rm
        if self._loop is not None and rm.role is Role.ACTIVE and rm.epoch is not None:
            self._loop.run_in_executor(None, self._keep_owner_record, rm.epoch)

    def _hold_alias(self) -> None:
        """We own the LAGs: `<ctl dir>/owner` (control/alias.py) names our control socket, so
        teamdctl reaches us whatever our instance name. A standby never holds it."""
        if not self.ctl_path:
            return
        problem = OwnerAlias(self.ctl_path).claim()
        if problem is not None:
            log.warning("%s: %s", self.name, problem)

    def _put_instance_record(self) -> None:
        self.publisher.put(shim_instance(self.name), self.instance_record())

    def _keep_owner_record(self, epoch: int) -> None:
        """A Redis restarted empty or from an older dump has lost our epoch, and every fenced
        APPL_DB write of ours would be refused: put it back. Only forward, so an owner that
        took over since is never overwritten. A record ahead of us that no live instance
        holds is judged by the guard and, once forged, replaced by ours (worker thread)."""
        try:
            if self.store.state.eval(
                OWNER_FORWARD_LUA, 1, OWNER_KEY, epoch, self.name, f"{time.time():.3f}"
            ):
                log.warning(
                    "%s: the owner record was behind our epoch %d (redis lost it); restored",
                    self.name,
                    epoch,
                )
                return
            self._guard_owner_record(epoch)
        except REDIS_DOWN as e:
            log.debug(
                "%s: owner record not checked (redis down, next heartbeat tries again): %s",
                self.name,
                e,
            )
        except Exception:
            log.exception("%s: owner record check failed", self.name)

    def _guard_owner_record(self, epoch: int) -> None:
        record = self.store.owner_record()
        owner = record.get("owner", "")
        successor = self.store.instance(owner) if owner and owner != self.name else {}
        judged = self.owner_guard.judge(
            epoch, record, successor, instance_alive(successor), time.monotonic()
        )
        if judged.verdict is Verdict.SUSPECT and judged.why != self._owner_suspect:
            log.warning(
                "%s: %s is not ours (%s); APPL_DB writes wait, the kernel and the wire go on",
                self.name,
                OWNER_KEY,
                judged.why,
            )
        self._owner_suspect = judged.why if judged.verdict is Verdict.SUSPECT else ""
        if judged.verdict is not Verdict.FORGED or self.rm.role is not Role.ACTIVE:
            return
        if self.store.restore_owner(record, epoch, self.name):
            log.error(
                "%s: %s was rewritten by someone who is not a live teamd-shim (%s): put back "
                "epoch %d owner %s. Anything that can write STATE_DB can do this (hld §15.1); "
                "find the writer",
                self.name,
                OWNER_KEY,
                judged.why,
                epoch,
                self.name,
            )

    def info_record(self) -> InstanceInfo:
        rm, lags = self.rm, self.runner.lags
        c = rm.confirmation
        return InstanceInfo(
            name=self.name,
            role=rm.role.value,
            epoch=rm.epoch,
            pid=os.getpid(),
            pidns=pid_namespace(),
            ready=self.ready,
            ready_detail=self.ready_detail,
            final_written=rm.final_written,
            yielded_at=rm.yielded_at,
            takeover_at=rm.takeover_at,
            takeover_error=self.takeover_error,
            confirmed=rm.confirmed,
            first_tx=dict(c.first_tx) if c else {},
            handed_from=self.handed_from,
            lags=tuple(sorted(lags)),
            ports_by_lag={n: tuple(r.lacp.ports) for n, r in lags.items()},
        )

    def info(self) -> dict[str, Any]:
        """The control reply (contract.InstanceInfo on the wire)."""
        return self.info_record().to_json()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run `coro` as a task we keep (the loop holds only weak references to tasks: an
        unreferenced one can be garbage-collected mid-flight, ruff RUF006)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._loop is not None
        return await self._loop.run_in_executor(None, fn, *args)

    async def claim_ownership(self) -> bool:
        """An active at start-up: take the epoch unless a live instance holds it."""
        delay = 0.1
        while True:
            try:
                won: Owner = await self.blocking(self.store.claim, self.name)
            except OwnershipError as e:
                log.error("%s: %s", self.name, e)
                return False
            except REDIS_DOWN as e:
                log.warning("%s: waiting for redis to claim ownership: %s", self.name, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self.rm.epoch = won.epoch  # claimed at start-up: not a role change
            log.info("%s: owner of the LAGs at epoch %d", self.name, won.epoch)
            self._hold_alias()
            return True

    # ---- driving the role machine --------------------------------------------------------
    def handle(
        self, event: Event, *, epoch: int | None = None, ports: frozenset[str] = frozenset()
    ) -> list[Effect]:
        """Feed the role machine one event, log a role change, re-arm its deadline, run what
        it asks for. An event its table has no row for is refused (OwnershipError)."""
        before = self.rm.role
        try:
            effects = self.rm.handle(event, time.monotonic(), epoch=epoch, ports=ports)
        except IllegalTransition as e:
            raise OwnershipError(str(e)) from None
        if self.rm.role is not before:
            log.info(
                "%s: role %s -> %s (%s, epoch %s)",
                self.name,
                before.value,
                self.rm.role.value,
                event.value,
                self.rm.epoch,
            )
            if self.rm.role is Role.ACTIVE:  # a takeover, a promotion, a resume
                self._hold_alias()
                self.on_owner()
        self._arm_role_timer()
        self.run_effects(effects)
        return effects

    def _arm_role_timer(self) -> None:
        self._role_timer = rearm(
            self._loop, self._role_timer, self.rm.next_deadline(), self._on_role_timer
        )

    def _on_role_timer(self) -> None:
        self._role_timer = None
        effects = self.rm.on_timer(time.monotonic())
        self._arm_role_timer()
        self.run_effects(effects)

    def run_effects(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, WriteFinal):
                # taken here, in the yield's loop step: no frame is applied in between
                snap = self.runner.lacp_snapshot()
                meta = self._snapshot_meta(self.rm.yielded_at or time.monotonic(), final=True)
                self._yield_snapshot = snap  # a rollback applies config changed since
                self._final_write = self.spawn(self._write_final(snap, meta))
            elif isinstance(effect, CompareAndSetSelf):
                self.spawn(self._auto_resume(effect.epoch))
            elif isinstance(effect, ResumeLocal):
                self._resume_local()
            elif isinstance(effect, PublishShadow):
                self._publish_shadow()
            elif isinstance(effect, Confirmed):
                self._confirmed()
            elif isinstance(effect, ConfirmAlive):
                self.spawn(self._confirm_alive(effect.epoch))
            elif isinstance(effect, ResumeAfterStall):
                self.runner.sync_dataplane()
                self.runner.service_all(time.monotonic())
            elif isinstance(effect, Exit):
                log.info("%s: retiring", self.name)
                self._on_exit()

    # ---- active: shadow publishing ---------------------------------------------------------
    def request_shadow(self, seconds: float = SHADOW_LEASE_S) -> None:
        """A standby is following: publish our state every SHADOW_EVERY_S for `seconds`."""
        self.run_effects(self.rm.request_shadow(time.monotonic(), seconds))
        self._arm_role_timer()

    def _snapshot_meta(self, now: float, final: bool) -> SnapshotMeta:
        """`rx_cut`: the replay cut (replay.py), taken with the LACP state, in one loop step."""
        return SnapshotMeta(
            epoch=self.rm.epoch,
            t=now,
            final=final,
            owner=self.name,
            rx_cut=dict(self.runner.rx_cut),
        )

    def _publish_shadow(self) -> None:
        """Only the entries owed are encoded (roles/shadow.py); the publisher writes only the
        fields that differ from what it wrote, so only those reach Redis."""
        fields = self._shadow_out.fields(
            {name: running.lacp for name, running in self.runner.lags.items()},
            self.runner.rx_cut,
            epoch=self.rm.epoch,
            owner=self.name,
            now=time.monotonic(),
        )
        self.publisher.put(shim_state(self.name), fields)

    # ---- active -> yielded -----------------------------------------------------------------
    async def do_yield(self) -> dict[str, Any]:
        """SIGUSR1: refresh every port, stop transmitting, hand over a final snapshot."""
        if self.rm.role is not Role.ACTIVE:
            raise OwnershipError(f"cannot yield: role is {self.rm.role}")
        self.runner.refresh_all(time.monotonic())
        self._final_write = None
        self.handle(Event.YIELD)  # -> WriteFinal
        assert self._final_write is not None
        return await self._final_write

    async def _write_final(
        self, snap: dict[str, dict[str, Any]], meta: SnapshotMeta
    ) -> dict[str, Any]:
        try:
            await self.blocking(self.store.write_final, self.name, snap, meta)
        except Exception as e:
            log.error(
                "%s: final snapshot not written (%s); resuming, nothing handed over", self.name, e
            )
            self.handle(Event.FINAL_FAILED)
            raise OwnershipError(f"yield failed: final snapshot not written: {e}") from None
        if not self.rm.is_in(Role.YIELDED):  # resumed while we waited (a forced rollback)
            return self.info()
        self.handle(Event.FINAL_WRITTEN)  # arms the auto-resume deadline
        log.info(
            "%s: yielded at epoch %s; final snapshot of %d LAG(s) written",
            self.name,
            self.rm.epoch,
            len(snap),
        )
        return self.info()

    def _resume_local(self) -> None:
        """Owner again (the role machine already says so): write what changed meanwhile."""
        self._apply_config_changed_meanwhile(self._yield_snapshot)
        self.runner.sync_dataplane()
        self.runner.service_all(time.monotonic())

    async def _auto_resume(self, epoch: int) -> None:
        """The machine's auto-resume deadline: nobody confirmed a takeover; try to take the
        epoch back. Redis not answering leaves us yielded, periodic PDUs going."""
        try:
            won = await self.blocking(self.store.cas, epoch, self.name, self.name)
        except Exception as e:
            log.error(
                "%s: yielded and cannot reach redis to decide (%s); periodic PDUs "
                "continue, waiting for the orchestrator (`warm-restart recover`)",
                self.name,
                e,
            )
            self.handle(Event.UNREACHABLE)
            return
        if won is not None:
            if self.rm.role is Role.YIELDED:
                log.warning(
                    "%s: nobody took over within %.2f s: resumed at epoch %d",
                    self.name,
                    AUTO_RESUME_S,
                    won.epoch,
                )
            self.handle(Event.RESUMED, epoch=won.epoch)
            return
        if self.rm.role is Role.YIELDED:
            log.info(
                "%s: superseded; retiring in %.0f s unless told earlier",
                self.name,
                RETIRE_WHEN_SUPERSEDED_S,
            )
        self.handle(Event.SUPERSEDED)  # the new owner transmits: our PDUs stop here

    async def do_resume(self, force: bool = False) -> dict[str, Any]:
        """Rollback: the orchestrator made sure the would-be successor is gone."""
        if self.rm.role is Role.ACTIVE:
            return self.info()
        if self.rm.role is not Role.YIELDED:
            raise OwnershipError(f"cannot resume: role is {self.rm.role}")
        won: Owner | None
        try:
            cur = await self.blocking(self.store.owner)
            won = await self.blocking(
                self.store.cas, cur.epoch if cur else 0, "*" if force else self.name, self.name
            )
        except Exception as e:
            if not force:
                raise OwnershipError(f"cannot resume: redis unreachable ({e})") from None
            log.warning("%s: resuming without redis (forced): %s", self.name, e)
            won = None
        else:
            if won is None and not force:
                raise OwnershipError("cannot resume: another instance took over")
        if not self.rm.is_in(Role.YIELDED):  # resumed by itself while we waited for Redis
            return self.info()
        log.warning(
            "%s: resumed at epoch %s (rollback)",
            self.name,
            won.epoch if won is not None else self.rm.epoch,
        )
        self.handle(Event.RESUMED, epoch=won.epoch if won is not None else None)
        return self.info()

    def retire(self) -> None:
        """Handed over: leave without touching the dataplane, the links or the DB state."""
        if self.rm.role is Role.ACTIVE:
            raise OwnershipError("an active instance does not retire; yield first")
        self.handle(Event.RETIRE)

    # ---- standby ---------------------------------------------------------------------------
    def note_rx(self, port: str, frame: bytes, now: float, stamp: int) -> None:
        """A frame a standby received (the runner calls this for a standby only)."""
        self.rx.add(port, frame, now, stamp)

    def start_following(self) -> None:
        threading.Thread(target=self._follow, name="follow", daemon=True).start()

    def _follow(self) -> None:
        """Thread: read the active's shadow snapshots. Redis going away is expected (said once
        per outage); anything else is a bug and logged with its traceback, once per kind."""
        last_t: float | None = None
        said: set[str] = set()
        view = ShadowView()  # this thread's alone
        while not self._follow_stop.is_set() and self.rm.role is Role.STANDBY:
            try:
                cur = self.store.owner()
                self.last_owner = cur
                if cur is not None and cur.owner != self.name:
                    head = self.store.read_meta(cur.owner)
                    if head is not None and head.t != last_t:
                        # only the entries whose time moved (hld §14.7); the whole hash the
                        # first time and from a shim that does not date its entries
                        want = view.wanted(head)
                        if want is None:
                            meta, got = self.store.read_snapshot(cur.owner)
                        else:
                            meta, got = self.store.read_shadow_entries(cur.owner, want)
                        if meta is not None:
                            last_t = meta.t
                            changed = view.merge(meta, got, whole=want is None)
                            self._post(self._on_shadow, *view.snapshot(), changed)
                said.discard("redis")
            except REDIS_DOWN as e:
                if "redis" not in said:
                    said.add("redis")
                    log.warning(
                        "%s: cannot follow the active's state, redis unreachable: %s "
                        "(not READY until it answers)",
                        self.name,
                        e,
                    )
            except Exception as e:
                if type(e).__name__ not in said:
                    said.add(type(e).__name__)
                    log.exception("%s: following the active's state failed", self.name)
            self._follow_stop.wait(FOLLOW_EVERY_S)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def _restore(
        self,
        meta: SnapshotMeta,
        lags: dict[str, dict[str, Any]],
        *,
        taking_over: bool = False,
        only: list[str] | None = None,
    ) -> list[str]:
        """Adopt published state (replay.restore), into every LAG or `only` these. Taking
        over, the changes it makes stay pending as intents, for the new owner to apply: the
        yielded owner saw them but wrote nothing. A standby's view has nothing to apply."""
        r = self.runner
        targets = r.lags if only is None else {n: r.lags[n] for n in only}
        problems = restore(targets, meta, lags, self.rx, r.links, r.port_lag, time.monotonic())
        if not taking_over:
            for running in targets.values():
                running.lacp.pop_intents()
        return problems

    def _on_shadow(
        self,
        meta: SnapshotMeta,
        lags: dict[str, dict[str, Any]],
        changed: set[str] | None = None,
    ) -> None:
        """A shadow round read: restore and judge only the LAGs whose entry changed (or whose
        config here moved); the rest keep their verdict (hld §14.7). `changed` None: all."""
        if self.rm.role is not Role.STANDBY:
            return
        running_lags = self.runner.lags
        self._last_shadow = (meta, lags)
        now = time.monotonic()
        missing = [f"{n}: not in the active's state" for n in running_lags.keys() - lags.keys()]
        due = [n for n in self._verdicts.due(running_lags, changed) if n in lags]
        problems = self._restore(meta, lags, only=due)
        failed = {readiness.lag_of(p) for p in problems}
        restored = {n: lags[n] for n in due if n not in failed}
        problems += readiness.pdu_mismatches({n: running_lags[n] for n in restored}, restored)
        problems += self._own_view_differs(restored)
        self._verdicts.record(running_lags, due, problems)
        problems = readiness.snapshot_problems(running_lags, meta.t, now) + missing
        problems += self.runner.kernel_differs()
        problems += self._verdicts.problems()
        judged = readiness.Readiness.of(problems)
        if judged.ready != self.ready:
            log.info("%s: %s", self.name, "READY" if judged.ready else f"not ready: {problems[0]}")
        self.ready, self.ready_detail = judged.ready, judged.detail

    def _adoption_problems(self, lags: dict[str, dict[str, Any]]) -> list[str]:
        return readiness.adoption_problems(self.runner.lags, lags, self.rx, time.monotonic())

    def _own_view_differs(self, lags: dict[str, dict[str, Any]]) -> list[str]:
        """READY from our own view too (readiness.own_view_differs); a method so that a test
        can take the check out and watch the deaf standby become READY without it."""
        return readiness.own_view_differs(lags, self.rx, time.monotonic())

    async def do_takeover(self) -> dict[str, Any]:
        """SIGRTMIN: adopt the yielded owner's final snapshot and its epoch, then transmit."""
        if self.rm.role is not Role.STANDBY:
            raise OwnershipError(f"cannot take over: role is {self.rm.role}")
        try:
            cur = await self.blocking(self.store.owner)
            if cur is None:
                raise OwnershipError("no owner to take over from")
            meta, lags = await self.blocking(self.store.read_final, cur.owner)
            if meta is None or not meta.final or meta.epoch != cur.epoch:
                raise OwnershipError(f"{cur.owner} has not yielded at epoch {cur.epoch}")
            forged = self._adoption_problems(lags)
            if forged:
                raise OwnershipError(
                    f"the final snapshot of {cur.owner} at epoch {cur.epoch} is not one to take "
                    f"over from: {'; '.join(forged[:3])}. Not taken over, nothing changed: "
                    f"{cur.owner} can resume (hld §15.5)"
                )
            won = await self.blocking(self.store.cas, cur.epoch, cur.owner, self.name)
            if won is None:
                raise OwnershipError(f"{cur.owner} resumed or another instance took over")
        except OwnershipError as e:
            self.takeover_error = str(e)
            log.error("%s: takeover refused: %s", self.name, e)
            raise
        except Exception as e:
            self.takeover_error = f"redis: {e}"
            log.error("%s: takeover failed: %s", self.name, e)
            raise OwnershipError(f"takeover failed: {e}") from None
        self._follow_stop.set()
        if self.wire is not None:  # a hot standby taken over in a planned restart
            self.wire.close()
            self.wire = None
        problems = self._restore(meta, lags, taking_over=True)
        if problems:
            log.warning("%s: took over with differences: %s", self.name, "; ".join(problems))
        self.handed_from = HandedFrom(
            owner=cur.owner,
            epoch=cur.epoch,
            t=meta.t,
            last_tx={p: d["ports"][p].get("last_tx") for d in lags.values() for p in d["ports"]},
        )
        running_lags = self.runner.lags
        awaiting = frozenset(
            p
            for r in running_lags.values()
            for p in r.lacp.ports
            if r.lacp.port_view(p).state != "disabled"
        )
        self.handle(Event.TAKEN_OVER, epoch=won.epoch, ports=awaiting)
        self._apply_config_changed_meanwhile(lags)
        log.info("%s: took over from %s at epoch %d", self.name, cur.owner, won.epoch)
        self.runner.service_all(time.monotonic())
        return self.info()

    def _apply_config_changed_meanwhile(self, final: dict[str, dict[str, Any]]) -> None:
        """CONFIG_DB changes between the standby's start and the takeover: neither instance
        wrote them to the kernel (only the owner does, and the old one had yielded), so the new
        owner does now. A LAG the final snapshot has and our config does not is released and
        deleted; a LAG or member our config has and the snapshot does not is created and
        enslaved (adopt-or-create: idempotent for what already exists)."""
        dp = self.runner.dataplane
        running_lags = self.runner.lags
        for name, d in final.items():
            if name not in running_lags:
                log.warning(
                    "%s: %s was removed from CONFIG_DB during the handover: removing it now",
                    self.name,
                    name,
                )
                for port in d.get("ports", {}):
                    dp.member_removed(name, port)
                dp.lag_removed(name)
        for name, running in running_lags.items():
            had = set(final.get(name, {}).get("ports", {}))
            if name not in final:
                log.warning(
                    "%s: %s was added to CONFIG_DB during the handover: creating it now",
                    self.name,
                    name,
                )
                dp.lag_added(running.cfg, owner=True)
            for port in running.lacp.ports:
                if port not in had:
                    admin_up = self.runner.port_settings(port).admin_up
                    dp.member_added(name, port, owner=True, admin_up=admin_up)
            for port in had - set(running.lacp.ports):
                dp.member_removed(name, port)

    def _confirmed(self) -> None:
        c = self.rm.confirmation
        log.info(
            "%s: confirmed: first PDU sent on all %d port(s)",
            self.name,
            len(c.first_tx) if c else 0,
        )
        self._put_instance_record()
        # the restored state equals what the old owner published: republish only now, so
        # the first PDUs are not competing with DB work
        self.runner.mark_dirty(self.runner.lags)

    # ---- the owner's side of a hot standby's watch (hld §14.1) ---------------------------
    async def serve_watcher(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A `watch` request: heartbeats on this connection until either side closes it. The
        kernel closing it when we die is the standby's death notice."""
        self._watchers.add(writer)
        if not self.rm.suspect:
            self._beat_to(writer)
        try:
            while await reader.read(4096):
                pass  # nothing is asked on a watch connection; EOF ends it
        except (ConnectionError, OSError):
            pass
        finally:
            self._watchers.discard(writer)

    def _beat_line(self) -> bytes:
        rm = self.rm
        beat = Beat(
            name=self.name,
            role=rm.role.value,
            epoch=rm.epoch,
            final_written=rm.final_written,
            pid=os.getpid(),
            t=time.monotonic(),
        )
        return (json.dumps(beat.to_json()) + "\n").encode()

    def _beat_to(self, writer: asyncio.StreamWriter, line: bytes | None = None) -> None:
        transport = writer.transport
        if transport.is_closing():
            self._watchers.discard(writer)
        elif transport.get_write_buffer_size() < WATCH_BUFFER_MAX:
            writer.write(line or self._beat_line())

    def _beat(self) -> None:
        """Every HEARTBEAT_EVERY_S until retired: our own stall check first (a heartbeat after a
        stall would tell a standby that already declared us hung that we live: we ask Redis
        instead, hld §14.3); then a heartbeat to every watcher, and the shadow lease renewed
        (a hot standby needs our state for as long as it watches)."""
        self._beat_handle = None
        if self._loop is None or self.rm.role is Role.RETIRED:
            return
        self._beat_handle = self._loop.call_later(HEARTBEAT_EVERY_S, self._beat)
        now = time.monotonic()
        effects = self.rm.check_stall(now)
        if effects:
            self.run_effects(effects)
        if self.rm.suspect:
            return
        self.rm.note_beat(now)
        if not self._watchers:
            return
        line = self._beat_line()
        for w in list(self._watchers):
            self._beat_to(w, line)
        if self.rm.role is Role.ACTIVE:
            self.request_shadow(WATCH_LEASE_S)

    async def _confirm_alive(self, epoch: int) -> None:
        """After a stall of our loop: still the owner? (ConfirmAlive). Redis not answering
        means nobody could have moved the epoch either: we carry on."""
        stalled = time.monotonic() - (self.rm.last_beat or time.monotonic())
        try:
            alive = await self.blocking(
                self.store.confirm_alive, epoch, self.name, time.monotonic()
            )
        except Exception as e:
            log.warning(
                "%s: our loop stalled %.2f s and redis does not answer (%s): carrying "
                "on (no standby can have moved the epoch)",
                self.name,
                stalled,
                e,
            )
            alive = True
        if not self.rm.is_in(Role.ACTIVE):
            return
        if alive:
            log.warning(
                "%s: our loop stalled %.2f s; still the owner at epoch %d",
                self.name,
                stalled,
                epoch,
            )
            self.handle(Event.ALIVE_CONFIRMED)
        else:
            log.error(
                "%s: FENCED: another instance took the LAGs while our loop was stalled "
                "%.2f s; exiting without sending or writing anything",
                self.name,
                stalled,
            )
            self.handle(Event.FENCED)

    def close_watchers(self, why: str) -> None:
        """Leaving on purpose: say so before the connection closes, so a watcher does not take
        the close for a death (`stop`, a cold stop, must not be undone by a promotion)."""
        line = (json.dumps({"bye": why}) + "\n").encode()
        for w in list(self._watchers):
            with contextlib.suppress(Exception):
                w.write(line)
                w.close()
        self._watchers.clear()

    # ---- a hot standby (hld §14) ----------------------------------------------------------
    def start_hot(self) -> None:
        """Watch the owner and tap the wire; promote on its loss (standby role only)."""
        assert self._loop is not None
        self.hot = True
        self.wire = WireTap()
        try:
            self.wire.open(self._loop)
        except OSError as e:
            log.error(
                "%s: cannot see the owner's PDUs on the wire (%s): a promotion would "
                "place its first PDUs after the shadowed ones only",
                self.name,
                e,
            )
            self.wire = None
        self.watcher = HotWatcher(
            self.name,
            self.store,
            pid_namespace(),
            self._loop,
            self.promote,
            lambda: self.rm.role is Role.STANDBY,
            os.path.dirname(self.ctl_path),
        )
        self.watcher.start()

    async def promote(self, loss: Loss, watch: Watch) -> bool:
        """The owner was lost: fence it, then take the LAGs (hld §14.3). True if we did."""
        if self.rm.role is not Role.STANDBY:
            return self.rm.role is Role.ACTIVE
        t = watch.target
        t0 = time.monotonic()
        redis_up, cur = await self._current_owner()
        if redis_up and (cur is None or cur.owner != t.name):
            self._refuse_promotion(
                f"{t.name} no longer owns the LAGs ({cur.owner if cur else 'nobody'} does)"
            )
            return False
        can_kill = (
            bool(t.pid)
            and t.pidns == pid_namespace()
            and (str(proc_starttime(t.pid)) == t.starttime or proc_starttime(t.pid) is None)
        )
        last = watch.last
        plan = plan_promotion(
            loss,
            ready=self.ready,
            ready_detail=self.ready_detail,
            last_role=watch.last_role,
            final_written=bool(last and last.final_written),
            redis_up=redis_up,
            can_kill=can_kill,
        )
        if not plan.promote:
            self._refuse_promotion(f"{t.name} {loss.value}: {plan.why}")
            return False
        epoch = await self._fence_epoch(plan, cur, loss, watch)
        if epoch is None:
            return False
        t_fenced = time.monotonic()
        if plan.kill and not await self.blocking(_kill_and_wait, t.pid, t.starttime):
            # the epoch moved, so it can no longer write APPL_DB; but it may still write the
            # kernel or send PDUs: never two owners, stay standby and say so
            self._refuse_promotion(f"{t.name} {loss.value}: still alive after SIGKILL")
            return False
        t_killed = time.monotonic()
        if not self.rm.is_in(Role.STANDBY):  # a takeover by signal won meanwhile
            return self.rm.is_in(Role.ACTIVE)
        meta, lags = await self._promotion_state(plan.from_final, t.name)
        self._follow_stop.set()
        if meta is not None:
            problems = self._restore(meta, lags, taking_over=True)
            if problems:
                log.warning("%s: promoted with differences: %s", self.name, "; ".join(problems))
        adopted = self._adopt_wire_tx()
        awaiting = frozenset(
            p
            for r in self.runner.lags.values()
            for p in r.lacp.ports
            if r.lacp.port_view(p).state != "disabled"
        )
        self.handed_from = HandedFrom(
            owner=t.name,
            epoch=t.epoch,
            t=meta.t if meta else None,
            last_tx=self._old_owner_last_tx(lags),
        )
        self.handle(Event.PROMOTED, epoch=epoch, ports=awaiting)
        self._apply_config_changed_meanwhile(lags)
        self.runner.sync_dataplane()
        self.runner.service_all(time.monotonic())
        took = time.monotonic() - t0
        self.promotion = {
            "from": t.name,
            "why": loss.value,
            "at": f"{time.time():.3f}",
            "epoch": str(epoch),
            "took_ms": f"{took * 1000:.1f}",
            "steps_ms": f"epoch {(t_fenced - t0) * 1000:.1f}, kill "
            f"{(t_killed - t_fenced) * 1000:.1f}, take over "
            f"{(time.monotonic() - t_killed) * 1000:.1f}",
            "how": plan.why,
        }
        self.promotion_refused = ""
        if self.wire is not None:
            self.wire.close()
            self.wire = None
        log.warning(
            "%s: PROMOTED at epoch %d: %s %s (%s); %d port(s) on the wire's schedule, %.1f ms",
            self.name,
            epoch,
            t.name,
            loss.value,
            plan.why,
            adopted,
            took * 1000,
        )
        self._put_instance_record()
        return True

    async def _current_owner(self) -> tuple[bool, Owner | None]:
        """(Redis answered, the owner record); with Redis down, the last owner we saw."""
        try:
            return True, await asyncio.wait_for(self.blocking(self.store.owner), 1.0)
        except (TimeoutError, *REDIS_DOWN):
            return False, self.last_owner

    async def _fence_epoch(
        self, plan: Plan, cur: Owner | None, loss: Loss, watch: Watch
    ) -> int | None:
        """The epoch we promote at: moved by CAS where the plan says so (the fence), else the
        next one; None (and the refusal said) if the fence failed."""
        t = watch.target
        if not plan.cas:
            return (cur.epoch if cur else (t.epoch or 0)) + 1
        assert cur is not None
        try:
            won = await self.blocking(
                self.store.promote_cas, cur.epoch, t.name, self.name, watch.last_seen
            )
        except Exception as e:
            self._refuse_promotion(f"{t.name} {loss.value}: epoch not moved ({e})")
            return None
        if won is None:
            self._refuse_promotion(
                f"{t.name} {loss.value}: it confirmed itself alive, or "
                "another instance moved the epoch first"
            )
            return None
        return won.epoch

    async def _promotion_state(
        self, from_final: bool, owner: str
    ) -> tuple[SnapshotMeta | None, dict[str, dict[str, Any]]]:
        """What we take over from: the owner's final snapshot where it wrote one (a yield in
        flight), else the state we shadowed."""
        if from_final:
            meta, lags = await self.blocking(self.store.read_final, owner)
            forged = self._adoption_problems(lags) if meta is not None else []
            if forged:
                log.error(
                    "%s: the final snapshot of %s is not one to take over from (%s): "
                    "promoting from the state we shadowed instead (hld §15.5)",
                    self.name,
                    owner,
                    "; ".join(forged[:3]),
                )
            elif meta is not None:
                return meta, lags
        shadow = self._last_shadow
        return shadow if shadow else (None, {})

    def _old_owner_last_tx(self, lags: dict[str, dict[str, Any]]) -> dict[str, float | None]:
        """The old owner's last PDU per port: the snapshot's, or the wire's where it is later."""
        wire = self.wire.last if self.wire is not None else {}
        last_tx: dict[str, float | None] = {}
        for d in lags.values():
            for p, pd in d["ports"].items():
                w = wire.get(p)
                snap_tx = pd.get("last_tx")
                last_tx[p] = max(w.at, snap_tx or 0.0) if w is not None else snap_tx
        return last_tx

    def _adopt_wire_tx(self) -> int:
        """Each port's schedule from the owner's last PDU as the wire showed it (hld §14.2)."""
        if self.wire is None:
            return 0
        n = 0
        for running in self.runner.lags.values():
            for port in running.lacp.ports:
                w = self.wire.last.get(port)
                if w is None:
                    continue
                differs = running.lacp.would_send(port) != w.frame
                if running.lacp.adopt_wire_tx(port, w.at, w.frame):
                    n += 1
                    if differs:
                        log.info(
                            "%s: %s: our PDU differs from the one the wire showed last: "
                            "sent at once\n  wire %s\n  ours %s",
                            self.name,
                            port,
                            w.frame.hex(),
                            running.lacp.would_send(port).hex(),
                        )
        return n

    def _refuse_promotion(self, why: str) -> None:
        if why != self.promotion_refused:
            log.error("%s: not promoting: %s", self.name, why)
        self.promotion_refused = why
        self._put_instance_record()


def _kill_and_wait(pid: int, starttime: str) -> bool:
    """SIGKILL `pid` if it is still the process of that start time; True once it is gone. A
    pidfd pins the process, so a recycled pid is never hit (worker thread)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        st = proc_starttime(pid)
        if st is None or str(st) != starttime:
            return True
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        ready, _, _ = select.select([fd], [], [], KILL_WAIT_S)
        return bool(ready) or proc_starttime(pid) is None
    except ProcessLookupError:
        return True
    finally:
        os.close(fd)

"""Roles of a shim instance and the handover between two of them (hld §6-§7).

active   transmits and owns the dataplane (holds the ownership epoch)
standby  receives and shadows the active's published state; sends nothing, writes nothing
yielded  hands over a final snapshot; writes nothing; still hot, resumes if nobody takes over,
         and keeps its scheduled PDUs going until it knows another instance holds the epoch
retired  handed over; exits without touching anything

The handover is phase-continuous: on yield every port gets one PDU now (teamd's SIGUSR1
"refresh"), so each port's next PDU is due one full period later; the new owner restores the
final snapshot, whose deadlines are absolute CLOCK_MONOTONIC times, and simply keeps that
schedule. Nothing says goodbye, no link or kernel object is touched.

Kept out of daemon.py so the LACP loop stays readable; mixed into `Shim`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import redis

from . import __version__
from .contract import HandedFrom, InstanceInfo
from .identity import container_id, host_id, pid_namespace
from .lacp import Lag, PduError, PortInfo, decode_frame
from .ownership import (
    OWNER_KEY,
    Owner,
    OwnershipError,
    OwnerStore,
    instance_alive,
    netns_id,
    proc_starttime,
)
from .publisher import Target
from .role_machine import (
    AUTO_RESUME_S,
    RETIRE_WHEN_SUPERSEDED_S,
    CompareAndSetSelf,
    Effect,
    Event,
    Exit,
    IllegalTransition,
    ResumeLocal,
    Role,
    RoleMachine,
)

if TYPE_CHECKING:
    from .running_lag import RunningLag

log = logging.getLogger(__name__)

SHADOW_EVERY_S = 0.5  # how often the active publishes its state while a standby shadows
SHADOW_LEASE_S = 30.0  # shadow publishing stops unless renewed
FOLLOW_EVERY_S = 0.25  # how often a standby reads the active's published state
SNAPSHOT_FRESH_S = 2.0  # a standby is READY only on a snapshot younger than this
RX_KEEP_S = 3.0  # received frames kept by a standby, replayed after a snapshot

# owner record forward to (ARGV[1], ARGV[2]) only if its epoch is lower (never backwards)
OWNER_FORWARD_LUA = """
local e = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if e >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'owner', ARGV[2], 'since', ARGV[3])
return 1
"""


class RolesMixin:
    """Handover state and steps of `Shim`; every method runs on the shim's event loop."""

    # provided by Shim
    name: str
    rm: RoleMachine  # the role, the epoch and the role deadlines (role_machine.py)
    lags: dict[str, RunningLag]
    store: OwnerStore
    _loop: asyncio.AbstractEventLoop | None

    # ---- the role machine's state, read through ----------------------------------------
    @property
    def role(self) -> Role:
        return self.rm.role

    @property
    def epoch(self) -> int | None:
        return self.rm.epoch

    @epoch.setter
    def epoch(self, value: int | None) -> None:
        self.rm.epoch = value  # claimed at start-up: not a role change

    @property
    def yielded_at(self) -> float | None:
        return self.rm.yielded_at

    @property
    def final_written(self) -> bool:
        return self.rm.final_written

    @property
    def superseded(self) -> bool:
        return self.rm.superseded

    def _roles_init(self) -> None:
        self.shadow_until = 0.0
        self._shadow_handle: asyncio.TimerHandle | None = None
        self._rx_log: deque[tuple[str, bytes, float]] = deque()
        self.ready = False
        self.ready_detail = "no snapshot from the active yet"
        self.snapshot_meta: dict[str, Any] = {}
        self._yield_snapshot: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self.takeover_at: float | None = None
        self.takeover_error = ""
        self.first_tx: dict[str, float] = {}
        self._awaiting_tx: set[str] = set()
        self.confirmed = False
        self.handed_from: HandedFrom | None = None
        self._follow_stop = threading.Event()
        self._role_timer: asyncio.TimerHandle | None = None

    # ---- registration ----------------------------------------------------------------------
    def instance_record(self) -> dict[str, str]:
        return {
            "pid": str(os.getpid()),
            "starttime": str(proc_starttime(os.getpid()) or ""),
            "host": host_id(),
            "pidns": pid_namespace(),
            "container": container_id(),
            "argv": json.dumps(sys.argv),
            "netns": netns_id(),
            "version": __version__,
            "role": self.role,
            "epoch": "" if self.epoch is None else str(self.epoch),
            "ctl": self.control.path if self.control else "",  # type: ignore[attr-defined]
            "heartbeat": f"{time.time():.3f}",
            "ready": "true" if self.ready else "false",
            "ready_detail": self.ready_detail,
            "confirmed": "true" if self.confirmed else "false",
        }

    def _heartbeat(self) -> None:
        self.publisher.put(Target("STATE_DB", "TEAMD_SHIM_INSTANCE", self.name),  # type: ignore[attr-defined]
                           self.instance_record())
        if self._loop is not None and self.role == "active" and self.epoch is not None:
            self._loop.run_in_executor(None, self._keep_owner_record, self.epoch)
        if self._loop is not None and self.role != "retired":
            self._loop.call_later(1.0, self._heartbeat)

    def _keep_owner_record(self, epoch: int) -> None:
        """A Redis restarted empty or from an older dump has lost our epoch, and every fenced
        APPL_DB write of ours would be refused: put it back. Only forward, so an owner that
        took over since is never overwritten (worker thread)."""
        try:
            if self.store.state.eval(OWNER_FORWARD_LUA, 1, OWNER_KEY, epoch, self.name,
                                     f"{time.time():.3f}"):
                log.warning("%s: the owner record was behind our epoch %d (redis lost it); "
                            "restored", self.name, epoch)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
            log.debug("%s: owner record not checked (redis down, next heartbeat tries "
                      "again): %s", self.name, e)
        except Exception:
            log.exception("%s: owner record check failed", self.name)

    def info_record(self) -> InstanceInfo:
        return InstanceInfo(
            name=self.name, role=self.role.value, epoch=self.epoch, pid=os.getpid(),
            pidns=pid_namespace(), ready=self.ready, ready_detail=self.ready_detail,
            final_written=self.final_written, yielded_at=self.yielded_at,
            takeover_at=self.takeover_at, takeover_error=self.takeover_error,
            confirmed=self.confirmed, first_tx=dict(self.first_tx),
            handed_from=self.handed_from, lags=tuple(sorted(self.lags)),
            ports_by_lag={n: tuple(r.lacp.ports) for n, r in self.lags.items()},
        )

    def info(self) -> dict[str, Any]:
        """The control reply (contract.InstanceInfo on the wire)."""
        return self.info_record().to_json()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` as a task we keep (the loop holds only weak references to tasks: an
        unreferenced one can be garbage-collected mid-flight, ruff RUF006)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _blocking(self, fn: Any, *args: Any) -> Any:
        assert self._loop is not None
        return await self._loop.run_in_executor(None, fn, *args)

    async def claim_ownership(self) -> bool:
        """An active at start-up: take the epoch unless a live instance holds it."""
        import redis as _redis

        delay = 0.1
        while True:
            try:
                won: Owner = await self._blocking(self.store.claim, self.name)
                self.epoch = won.epoch
                log.info("%s: owner of the LAGs at epoch %d", self.name, won.epoch)
                return True
            except OwnershipError as e:
                log.error("%s: %s", self.name, e)
                return False
            except (_redis.exceptions.ConnectionError, _redis.exceptions.TimeoutError) as e:
                log.warning("%s: waiting for redis to claim ownership: %s", self.name, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    # ---- active: shadow publishing ---------------------------------------------------------
    def request_shadow(self, seconds: float = SHADOW_LEASE_S) -> None:
        """A standby is following: publish our state every SHADOW_EVERY_S for `seconds`."""
        self.shadow_until = time.monotonic() + seconds
        if self._shadow_handle is None:
            self._publish_shadow()

    def lacp_snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: r.lacp.to_dict() for name, r in self.lags.items()}

    def _publish_shadow(self) -> None:
        self._shadow_handle = None
        if self.role != "active" or time.monotonic() > self.shadow_until:
            return
        meta = {"epoch": self.epoch, "t": time.monotonic(), "final": False, "owner": self.name}
        fields = {lag: json.dumps(d, separators=(",", ":"))
                  for lag, d in self.lacp_snapshot().items()}
        fields["_meta"] = json.dumps(meta)
        self.publisher.put(Target("STATE_DB", "TEAMD_SHIM_STATE", self.name), fields)  # type: ignore[attr-defined]
        assert self._loop is not None
        self._shadow_handle = self._loop.call_later(SHADOW_EVERY_S, self._publish_shadow)

    # ---- driving the role machine --------------------------------------------------------
    def _handle(self, event: Event, *, epoch: int | None = None) -> list[Effect]:
        """Feed the role machine one event, log a role change, re-arm its deadline, run what
        it asks for. An event its table has no row for is refused (OwnershipError)."""
        before = self.rm.role
        try:
            effects = self.rm.handle(event, time.monotonic(), epoch=epoch)
        except IllegalTransition as e:
            raise OwnershipError(str(e)) from None
        if self.rm.role is not before:
            log.info("%s: role %s -> %s (%s, epoch %s)", self.name, before.value,
                     self.rm.role.value, event.value, self.rm.epoch)
        self._arm_role_timer()
        self._run_effects(effects)
        return effects

    def _arm_role_timer(self) -> None:
        if self._role_timer is not None:
            self._role_timer.cancel()
            self._role_timer = None
        deadline = self.rm.next_deadline()
        if deadline is not None and self._loop is not None:
            self._role_timer = self._loop.call_at(deadline, self._on_role_timer)

    def _on_role_timer(self) -> None:
        self._role_timer = None
        effects = self.rm.on_timer(time.monotonic())
        self._arm_role_timer()
        self._run_effects(effects)

    def _run_effects(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, CompareAndSetSelf):
                self.spawn(self._auto_resume(effect.epoch))
            elif isinstance(effect, ResumeLocal):
                self._resume_local()
            elif isinstance(effect, Exit):
                log.info("%s: retiring", self.name)
                self._stopping.set()  # type: ignore[attr-defined]

    # ---- active -> yielded -----------------------------------------------------------------
    async def do_yield(self) -> dict[str, Any]:
        """SIGUSR1: refresh every port, stop transmitting, hand over a final snapshot."""
        if self.role is not Role.ACTIVE:
            raise OwnershipError(f"cannot yield: role is {self.role}")
        now = time.monotonic()
        for running in self.lags.values():
            for port, frame in running.lacp.refresh(now):
                if not self.io.send(port, frame):  # type: ignore[attr-defined]
                    running.lacp.send_failed(port, frame, now)
            self._apply_intents(running)  # type: ignore[attr-defined]
        self._handle(Event.YIELD)
        meta = {"epoch": self.epoch, "t": now, "final": True, "owner": self.name}
        snap = self.lacp_snapshot()
        self._yield_snapshot = snap  # a rollback applies config changed since (_resume_local)
        try:
            await self._blocking(self.store.write_final, self.name, snap, meta)
        except Exception as e:
            log.error("%s: final snapshot not written (%s); resuming, nothing handed over",
                      self.name, e)
            self._handle(Event.FINAL_FAILED)
            raise OwnershipError(f"yield failed: final snapshot not written: {e}") from None
        if self.role is not Role.YIELDED:  # resumed meanwhile (a forced rollback)
            return self.info()
        self._handle(Event.FINAL_WRITTEN)  # arms the auto-resume deadline
        log.info("%s: yielded at epoch %s; final snapshot of %d LAG(s) written", self.name,
                 self.epoch, len(snap))
        return self.info()

    def _resume_local(self) -> None:
        """Owner again (the role machine already says so): write what changed meanwhile."""
        self._apply_config_changed_meanwhile(self._yield_snapshot)
        for running in self.lags.values():
            self._sync_dataplane(running)  # type: ignore[attr-defined]
        now = time.monotonic()
        for running in self.lags.values():
            self._service(running, now)  # type: ignore[attr-defined]
            self._dirty.add(running.cfg.name)  # type: ignore[attr-defined]

    async def _auto_resume(self, epoch: int) -> None:
        """The machine's auto-resume deadline: nobody confirmed a takeover; try to take the
        epoch back. Redis not answering leaves us yielded, periodic PDUs going."""
        try:
            won = await self._blocking(self.store.cas, epoch, self.name, self.name)
        except Exception as e:
            log.error("%s: yielded and cannot reach redis to decide (%s); periodic PDUs "
                      "continue, waiting for the orchestrator (`warm-restart recover`)",
                      self.name, e)
            self._handle(Event.UNREACHABLE)
            return
        if won is not None:
            if self.role is Role.YIELDED:
                log.warning("%s: nobody took over within %.2f s: resumed at epoch %d",
                            self.name, AUTO_RESUME_S, won.epoch)
            self._handle(Event.RESUMED, epoch=won.epoch)
            return
        if self.role is Role.YIELDED:
            log.info("%s: superseded; retiring in %.0f s unless told earlier", self.name,
                     RETIRE_WHEN_SUPERSEDED_S)
        self._handle(Event.SUPERSEDED)  # the new owner transmits: our PDUs stop here

    async def do_resume(self, force: bool = False) -> dict[str, Any]:
        """Rollback: the orchestrator made sure the would-be successor is gone."""
        if self.role is Role.ACTIVE:
            return self.info()
        if self.role is not Role.YIELDED:
            raise OwnershipError(f"cannot resume: role is {self.role}")
        try:
            cur = await self._blocking(self.store.owner)
            won = await self._blocking(self.store.cas, cur.epoch if cur else 0,
                                       "*" if force else self.name, self.name)
        except Exception as e:
            if not force:
                raise OwnershipError(f"cannot resume: redis unreachable ({e})") from None
            log.warning("%s: resuming without redis (forced): %s", self.name, e)
            won = None
        else:
            if won is None and not force:
                raise OwnershipError("cannot resume: another instance took over")
        if self.role is not Role.YIELDED:  # resumed by itself while we waited for Redis
            return self.info()
        log.warning("%s: resumed at epoch %s (rollback)", self.name,
                    won.epoch if won is not None else self.epoch)
        self._handle(Event.RESUMED, epoch=won.epoch if won is not None else None)
        return self.info()

    def retire(self) -> None:
        """Handed over: leave without touching the dataplane, the links or the DB state."""
        if self.role is Role.ACTIVE:
            raise OwnershipError("an active instance does not retire; yield first")
        self._handle(Event.RETIRE)

    # ---- standby ---------------------------------------------------------------------------
    def note_rx(self, port: str, frame: bytes, now: float) -> None:
        self._rx_log.append((port, frame, now))
        while self._rx_log and self._rx_log[0][2] < now - RX_KEEP_S:
            self._rx_log.popleft()

    def start_following(self) -> None:
        threading.Thread(target=self._follow, name="follow", daemon=True).start()

    def _follow(self) -> None:
        """Thread: read the active's shadow snapshots. Redis going away is expected (said once
        per outage); anything else is a bug and logged with its traceback, once per kind."""
        last_t = None
        said: set[str] = set()
        while not self._follow_stop.is_set() and self.role == "standby":
            try:
                cur = self.store.owner()
                if cur is not None and cur.owner != self.name:
                    meta = self.store.read_meta(cur.owner)
                    if meta and meta.get("t") != last_t:
                        meta, lags = self.store.read_snapshot(cur.owner)
                        last_t = meta.get("t")
                        self._post(self._on_shadow, cur, meta, lags)
                said.discard("redis")
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
                if "redis" not in said:
                    said.add("redis")
                    log.warning("%s: cannot follow the active's state, redis unreachable: %s "
                                "(not READY until it answers)", self.name, e)
            except Exception as e:
                if type(e).__name__ not in said:
                    said.add(type(e).__name__)
                    log.exception("%s: following the active's state failed", self.name)
            self._follow_stop.wait(FOLLOW_EVERY_S)

    def _post(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def _restore(self, meta: dict[str, Any], lags: dict[str, dict[str, Any]],
                 *, taking_over: bool = False) -> list[str]:
        """Adopt the published state, then replay what we received after it was taken and
        catch up with link changes since. Taking over, the changes this makes stay pending as
        intents, for the new owner to apply: the yielded owner saw them but wrote nothing."""
        problems = []
        t = float(meta.get("t", 0.0))
        for name, running in self.lags.items():
            d = lags.get(name)
            if d is None:
                problems.append(f"{name}: not in the active's state")
                continue
            try:
                lag = Lag.from_dict(d)
            except ValueError as e:
                problems.append(f"{name}: unreadable state ({e})")
                continue
            if lag.settings != running.lacp.settings or set(lag.ports) != set(running.lacp.ports):
                problems.append(f"{name}: config differs from the active's")
                continue
            running.lacp = lag
            running.carrier = lag.carrier
            running.enabled = {p: lag.port_enabled(p) for p in lag.ports}
        for port, frame, ft in list(self._rx_log):
            lag_name = self.port_lag.get(port)  # type: ignore[attr-defined]
            if ft > t and lag_name in self.lags:
                self.lags[lag_name].lacp.receive(port, frame, ft)
        now = time.monotonic()
        for name, running in self.lags.items():
            snap_ports = lags.get(name, {}).get("ports", {})
            for port in running.lacp.ports:
                link = self.links.get(port)  # type: ignore[attr-defined]
                was_up = snap_ports.get(port, {}).get("link_up")
                if link is not None and was_up is not None and bool(was_up) != link.up:
                    running.lacp.set_link(port, link.up, now)  # changed after the snapshot
            if not taking_over:
                running.lacp.pop_intents()  # a standby's view: nothing to apply
        return problems

    def _on_shadow(self, owner: Owner, meta: dict[str, Any],
                   lags: dict[str, dict[str, Any]]) -> None:
        if self.role != "standby":
            return
        self.snapshot_meta = meta
        problems = self._restore(meta, lags)
        if not self.lags:
            problems.append("no LAG configured yet")
        now = time.monotonic()
        age = now - float(meta.get("t", 0.0))
        if age > SNAPSHOT_FRESH_S:
            problems.append(f"active's state is {age:.1f} s old")
        if not problems:
            for name, running in self.lags.items():
                for port in running.lacp.ports:
                    if not running.lacp.can_transmit(port):
                        # a member whose link is down sends nothing, now or after a takeover:
                        # its last PDU (sent while up) cannot and need not match (before, a
                        # link going down while a standby started blocked READY until it came
                        # back, and the run rolled back)
                        continue
                    want = lags[name]["ports"][port].get("last_tx_frame")
                    if want and running.lacp.would_send(port) != bytes.fromhex(want):
                        problems.append(f"{name}/{port}: our PDU differs from the active's")
        problems += self._kernel_differs()
        if not problems:
            problems += self._own_view_differs(lags)
        ready = not problems
        if ready != self.ready:
            log.info("%s: %s", self.name, "READY" if ready else f"not ready: {problems[0]}")
        self.ready = ready
        self.ready_detail = "identical PDUs on every port" if ready else "; ".join(problems[:3])

    def _own_view_differs(self, lags: dict[str, dict[str, Any]]) -> list[str]:
        """READY from our own view too, not only from the active's snapshot compared with
        itself: on every port the snapshot has current with a fast partner, we must have heard
        that same partner (system, key, port) ourselves within the last RX_KEEP_S, on our own
        socket. Slow-rate LAGs are not judged (their partner speaks every 30 s)."""
        heard: dict[str, bytes] = {}
        now = time.monotonic()
        for port, frame, t in self._rx_log:
            if len(frame) > 14 and frame[14] == 1 and now - t <= RX_KEEP_S:  # LACPDUs only
                heard[port] = frame
        out = []
        for name, d in lags.items():
            if not d.get("settings", {}).get("fast_rate"):
                continue
            for port, pd in d.get("ports", {}).items():
                if pd.get("rx_state") != "current":
                    continue
                want = PortInfo.from_dict(pd["partner"])
                last = heard.get(port)
                if last is None:
                    out.append(f"{name}/{port}: not heard the partner ourselves yet")
                    continue
                try:
                    got = decode_frame(last)[1].actor
                except PduError:
                    out.append(f"{name}/{port}: last frame we heard is not a LACPDU")
                    continue
                if (got.system, got.system_priority, got.key, got.port) != (
                        want.system, want.system_priority, want.key, want.port):
                    out.append(f"{name}/{port}: we hear partner {got.to_dict()['system']} "
                               f"port {got.port}, the active {want.to_dict()['system']} "
                               f"port {want.port}")
        return out

    def _kernel_differs(self) -> list[str]:
        """READY also needs our restored view to equal the kernel's (when there is a kernel LAG):
        a takeover writes nothing, so a difference here would never be corrected."""
        out = []
        dp = self.dataplane  # type: ignore[attr-defined]
        for name, running in self.lags.items():
            dev = dp.device(name)
            if dev is not None and dev.admin_up and dev.oper_up != running.carrier:
                out.append(f"{name}: kernel carrier {dev.oper_up}, restored {running.carrier}")
            for port, on in running.enabled.items():
                k = dp.port_enabled(name, port)
                if k is not None and k != on:
                    out.append(f"{name}/{port}: kernel enabled {k}, restored {on}")
        return out

    async def do_takeover(self) -> dict[str, Any]:
        """SIGRTMIN: adopt the yielded owner's final snapshot and its epoch, then transmit."""
        if self.role != "standby":
            raise OwnershipError(f"cannot take over: role is {self.role}")
        try:
            cur = await self._blocking(self.store.owner)
            if cur is None:
                raise OwnershipError("no owner to take over from")
            meta, lags = await self._blocking(self.store.read_final, cur.owner)
            if not meta.get("final") or meta.get("epoch") != cur.epoch:
                raise OwnershipError(f"{cur.owner} has not yielded at epoch {cur.epoch}")
            won = await self._blocking(self.store.cas, cur.epoch, cur.owner, self.name)
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
        problems = self._restore(meta, lags, taking_over=True)
        if problems:
            log.warning("%s: took over with differences: %s", self.name, "; ".join(problems))
        self._handle(Event.TAKEN_OVER, epoch=won.epoch)
        self._apply_config_changed_meanwhile(lags)
        self.takeover_at = time.monotonic()
        self.handed_from = HandedFrom(
            owner=cur.owner, epoch=cur.epoch, t=meta.get("t"),
            last_tx={p: d["ports"][p].get("last_tx") for d in lags.values() for p in d["ports"]})
        self.first_tx = {}
        self._awaiting_tx = {p for r in self.lags.values() for p in r.lacp.ports
                             if r.lacp.port_view(p)["state"] != "disabled"}
        log.info("%s: took over from %s at epoch %d", self.name, cur.owner, won.epoch)
        now = time.monotonic()
        for running in self.lags.values():
            self._service(running, now)  # type: ignore[attr-defined]
        if not self._awaiting_tx:
            self._confirm()  # nothing can transmit (every link down): nothing to wait for
        return self.info()

    def _apply_config_changed_meanwhile(self, final: dict[str, dict[str, Any]]) -> None:
        """CONFIG_DB changes between the standby's start and the takeover: neither instance
        wrote them to the kernel (only the owner does, and the old one had yielded), so the new
        owner does now. A LAG the final snapshot has and our config does not is released and
        deleted; a LAG or member our config has and the snapshot does not is created and
        enslaved (adopt-or-create: idempotent for what already exists)."""
        dp = self.dataplane  # type: ignore[attr-defined]
        for name, d in final.items():
            if name not in self.lags:
                log.warning("%s: %s was removed from CONFIG_DB during the handover: removing "
                            "it now", self.name, name)
                for port in d.get("ports", {}):
                    dp.member_removed(name, port)
                dp.lag_removed(name)
        for name, running in self.lags.items():
            had = set(final.get(name, {}).get("ports", {}))
            if name not in final:
                log.warning("%s: %s was added to CONFIG_DB during the handover: creating it "
                            "now", self.name, name)
                dp.lag_added(running.cfg, owner=True)
            for port in running.lacp.ports:
                if port not in had:
                    dp.member_added(name, port, owner=True)
            for port in had - set(running.lacp.ports):
                dp.member_removed(name, port)

    def note_tx(self, port: str, now: float) -> None:
        """After a takeover: confirmed once every port that can transmit has transmitted.

        O(1) per PDU: right after a takeover every port sends within a few milliseconds, and
        anything slower here spreads those first PDUs out (measured: +0.4 s at 64 LAGs x 2).
        """
        if self.takeover_at is None or self.confirmed:
            return
        self.first_tx.setdefault(port, now)
        self._awaiting_tx.discard(port)
        if not self._awaiting_tx:
            self._confirm()

    def note_port_silent(self, port: str) -> None:
        """A port whose link went down (or that was removed from CONFIG_DB) right after a
        takeover will not transmit: stop waiting for it, or the handover would be rolled back
        for a link that is simply down or gone."""
        if self.takeover_at is not None and not self.confirmed and port in self._awaiting_tx:
            self._awaiting_tx.discard(port)
            if not self._awaiting_tx:
                self._confirm()

    def _confirm(self) -> None:
        self.confirmed = True
        log.info("%s: confirmed: first PDU sent on all %d port(s)", self.name,
                 len(self.first_tx))
        self._heartbeat_now()
        # the restored state equals what the old owner published: republish only now, so
        # the first PDUs are not competing with DB work
        for name in self.lags:
            self._dirty.add(name)  # type: ignore[attr-defined]
        self._schedule_publish()  # type: ignore[attr-defined]

    def _heartbeat_now(self) -> None:
        self.publisher.put(Target("STATE_DB", "TEAMD_SHIM_INSTANCE", self.name),  # type: ignore[attr-defined]
                           self.instance_record())


__all__ = ["RolesMixin", "instance_alive"]

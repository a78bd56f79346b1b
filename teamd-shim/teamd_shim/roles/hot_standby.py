"""A hot standby's watch on the owner (hld §14.1): a thread holding the owner's control socket.

The thread finds the owner (STATE_DB owner record -> its instance record), opens a `watch`
connection to its control socket and reads heartbeats. The rules are liveness.py's; this is
the blocking I/O around them. When the owner is lost it hands the loss to the shim's loop
(`promote`) and waits for the answer: promoted (the thread ends), or not (it says why once and
watches whatever owns the LAGs next). The thread, not the event loop, judges: a standby's own
busy loop must not make a live owner look hung, and before calling a silence a hang it drains
what the socket already holds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import redis

from teamd_shim.control.access import Peer
from teamd_shim.db.ownership import OwnerStore
from teamd_shim.io.identity import proc_starttime
from teamd_shim.roles.liveness import HANG_AFTER_S, Beat, Loss, Target, Watch

log = logging.getLogger(__name__)
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
RESOLVE_EVERY_S = 0.1

# (loss, watch) -> True if promoted; runs on the shim's loop
Promote = Callable[[Loss, Watch], Coroutine[Any, Any, bool]]


def resolve(store: OwnerStore, me: str, ctl_dir: str) -> Target | None:
    """The instance the owner record names, unless it is us (worker thread; may raise redis
    errors). Its socket is where that name listens in the directory we share with it, never
    the record's word (hld §15.3); its pid is checked at the socket (`_watch`)."""
    cur = store.owner()
    if cur is None or not cur.owner or cur.owner == me:
        return None
    rec = store.instance(cur.owner)
    if not rec:
        return None
    return Target(
        name=cur.owner,
        ctl=os.path.join(ctl_dir, f"{cur.owner}.sock"),
        pid=int(rec.get("pid") or 0),
        pidns=rec.get("pidns", ""),
        starttime=rec.get("starttime", ""),
        epoch=cur.epoch,
        role=rec.get("role", "active"),
    )


def dead_here(t: Target, my_pidns: str) -> bool:
    """The target is in our pid namespace and its process is gone (or is another one now)."""
    if not t.pid or t.pidns != my_pidns:
        return False
    st = proc_starttime(t.pid)
    return st is None or str(st) != t.starttime


class HotWatcher:
    """See the module docstring; `start` it on a standby, it ends by itself once promoted."""

    def __init__(
        self,
        name: str,
        store: OwnerStore,
        pidns: str,
        loop: asyncio.AbstractEventLoop,
        promote: Promote,
        still_standby: Callable[[], bool],
        ctl_dir: str,
    ) -> None:
        self.name = name
        self.ctl_dir = ctl_dir
        self.store = store
        self.pidns = pidns
        self._loop = loop
        self._promote = promote
        self._still_standby = still_standby
        self._stop = threading.Event()
        self.target: Target | None = None
        self.watching: str = ""
        self._said: set[str] = set()

    def start(self) -> None:
        threading.Thread(target=self._run, name="hot-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _say_once(self, key: str, msg: str, *args: Any) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning(msg, *args)

    def _run(self) -> None:
        while not self._stop.is_set() and self._still_standby():
            try:
                t = resolve(self.store, self.name, self.ctl_dir)
                if t is not None:
                    self.target = t
                self._said.discard("redis")
            except REDIS_DOWN as e:
                self._say_once(
                    "redis",
                    "%s: redis unreachable, watching the last known owner %s: %s",
                    self.name,
                    self.target.name if self.target else "-",
                    e,
                )
            except Exception as e:
                if type(e).__name__ not in self._said:  # a bug: its traceback, once per kind
                    self._said.add(type(e).__name__)
                    log.exception("%s: finding the owner failed", self.name)
            t = self.target
            if t is None:
                self._stop.wait(RESOLVE_EVERY_S)
                continue
            loss, watch = self._watch(t)
            if loss is None or self._stop.is_set():
                self._stop.wait(RESOLVE_EVERY_S)
                continue
            if self._hand_over(loss, watch):
                return
            self._stop.wait(RESOLVE_EVERY_S * 2)

    def _hand_over(self, loss: Loss, watch: Watch) -> bool:
        fut = asyncio.run_coroutine_threadsafe(self._promote(loss, watch), self._loop)
        try:
            return bool(fut.result(timeout=10.0))
        except Exception:
            log.exception("%s: promotion failed", self.name)
            return False

    def _check_peer(self, s: socket.socket, t: Target) -> Target | None:
        """The kernel's word on who listens there (SO_PEERCRED): root or our own user, else
        not watched; in our pid namespace, its pid is the one a promotion may kill, whatever
        the record says (a planted pid must never be SIGKILLed)."""
        try:
            peer = Peer.of(s)
        except OSError as e:
            self._say_once(
                f"peer:{t.name}", "%s: cannot tell who listens at %s: %s", self.name, t.ctl, e
            )
            return None
        if peer.uid not in (0, os.geteuid()):
            self._say_once(
                f"peer:{t.name}",
                "%s: %s is served by uid %d, not root: not watching it",
                self.name,
                t.ctl,
                peer.uid,
            )
            return None
        if t.pidns != self.pidns or not peer.pid or peer.pid == t.pid:
            return t
        self._say_once(
            f"pid:{t.name}:{peer.pid}",
            "%s: the record of %s names pid %d, but pid %d serves its socket: watching that one",
            self.name,
            t.name,
            t.pid,
            peer.pid,
        )
        return dataclasses.replace(t, pid=peer.pid, starttime=str(proc_starttime(peer.pid) or ""))

    def _open(self, t: Target) -> tuple[socket.socket | None, Target, Loss | None]:
        """A watch connection to `t`, its peer checked first (the target as the kernel shows
        it); (None, t, loss-or-None) when there is none to watch."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(0.5)
            s.connect(t.ctl)
            checked = self._check_peer(s, t)
            if checked is None:
                s.close()
                return None, t, None
            s.sendall((json.dumps({"cmd": "watch", "name": self.name}) + "\n").encode())
        except OSError as e:
            s.close()
            if dead_here(t, self.pidns):
                return None, t, Loss.DIED
            self._say_once(
                f"connect:{t.name}", "%s: cannot watch %s at %s: %s", self.name, t.name, t.ctl, e
            )
            return None, t, None
        return s, checked, None

    def _watch(self, t: Target) -> tuple[Loss | None, Watch]:
        """Until the owner is lost (a Loss), or leaves on purpose or cannot be reached (None)."""
        sock, t, loss = self._open(t)
        watch = Watch(t, time.monotonic())
        if sock is None:
            return loss, watch
        s = sock
        if self.watching != t.name:
            log.info("%s: watching %s (pid %d) through %s", self.name, t.name, t.pid, t.ctl)
            self.watching = t.name
        with s:
            buf = b""
            while not self._stop.is_set() and self._still_standby():
                s.settimeout(max(0.01, watch.left_in(time.monotonic())))
                got: bytes | None
                try:
                    got = s.recv(65536)
                except TimeoutError:
                    got = self._drain(s)
                except OSError:
                    got = b""
                if got is None:
                    if watch.hung(time.monotonic()):
                        log.warning(
                            "%s: %s sent no heartbeat for %.2f s: hung",
                            self.name,
                            t.name,
                            HANG_AFTER_S,
                        )
                        return Loss.HUNG, watch
                    continue
                chunk = got
                if not chunk:  # closed by the kernel: the process is gone (a goodbye
                    # line comes before any deliberate close and ends the watch above)
                    log.warning(
                        "%s: %s's control connection closed with no goodbye: died",
                        self.name,
                        t.name,
                    )
                    return Loss.DIED, watch
                buf += chunk
                now = time.monotonic()
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    bye = self._line(watch, line, now)
                    if bye:
                        log.info("%s: %s left on purpose (%s)", self.name, t.name, bye)
                        return None, watch
        return None, watch

    @staticmethod
    def _drain(s: socket.socket) -> bytes | None:
        """What the socket holds already (our thread may have been slow to read), or None."""
        try:
            s.setblocking(False)
            return s.recv(65536)
        except BlockingIOError:
            return None
        except OSError:
            return b""
        finally:
            s.setblocking(True)

    def _line(self, watch: Watch, line: bytes, now: float) -> str:
        """Feed one line; returns the goodbye's reason if it was one."""
        try:
            d = json.loads(line)
        except ValueError:
            return ""
        if "bye" in d:
            return str(d["bye"]) or "bye"
        try:
            watch.beat(Beat.from_json(d), now)
        except (KeyError, TypeError, ValueError):
            pass
        return ""

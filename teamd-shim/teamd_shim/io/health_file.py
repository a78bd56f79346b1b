"""A one-line health file for a container healthcheck that starts no Python interpreter.

The shim rewrites it once a second (atomically: a temporary file renamed over it) with
`<state> <name> <unix ms>`, state one of `active`, `ready-standby` (healthy), `standby` (not
READY yet), `yielded`, `retired`. The image's HEALTHCHECK is a `sh` one-liner that reads it and
judges it fresh (written < 3 s ago) and healthy (containers/teamd/Dockerfile). The path comes
from env TEAMD_SHIM_HEALTH_FILE (the image sets it to a tmpfs path private to the container);
without it no file is written. Only the file's own directory is created; a failure to write is
logged once per cause and never stops the shim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)
ENV = "TEAMD_SHIM_HEALTH_FILE"
EVERY_S = 1.0
HEALTHY = ("active", "ready-standby")


def state_of(role: str, ready: bool) -> str:
    """`active` | `ready-standby` (the two healthy ones) | the role (standby not READY yet,
    yielded, retired)."""
    if role == "standby" and ready:
        return "ready-standby"
    return role


def status_line(name: str, role: str, ready: bool, now: float) -> str:
    return f"{state_of(role, ready)} {name} {int(now * 1000)}\n"


def write_atomically(path: str, text: str) -> None:
    """Readers see the old line or the new one, never a part (rename is atomic)."""
    d = os.path.dirname(path) or "."
    os.makedirs(d, mode=0o700, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(path)}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


class HealthFile:
    """Writes `status_line(...)` of `status()` (name, role, ready) every EVERY_S on the loop."""

    def __init__(
        self,
        path: str,
        status: Callable[[], tuple[str, str, bool]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.status = status
        self.clock = clock
        self._handle: asyncio.TimerHandle | None = None
        self._failed = ""

    @classmethod
    def from_env(
        cls, status: Callable[[], tuple[str, str, bool]], env: Mapping[str, str] = os.environ
    ) -> HealthFile | None:
        path = env.get(ENV, "")
        return cls(path, status) if path else None

    def write(self) -> None:
        name, role, ready = self.status()
        try:
            write_atomically(self.path, status_line(name, role, ready, self.clock()))
        except OSError as e:
            if str(e) != self._failed:  # once per cause, not every second
                log.warning("health file %s not written: %s", self.path, e)
            self._failed = str(e)
        else:
            self._failed = ""

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        def tick() -> None:
            self.write()
            self._handle = loop.call_later(EVERY_S, tick)

        tick()

    def stop(self) -> None:
        """The file goes with the shim (a stale one would be judged unhealthy anyway)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)

"""Process references that survive the process that started them.

The lab is brought up by one process (`teamd-lab up`) and torn down by another
(`lab down`), so children are remembered by pid. A bare pid can be reused by an unrelated
process after ours died; the start time from /proc/<pid>/stat pins the identity, so
`down()` never signals a stranger.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path


def _starttime(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(b")") + 2 :].split()
    try:
        if rest[0] == b"Z":  # a zombie has finished: treat as gone
            return None
        return int(rest[19])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class ProcRef:
    """A pid plus its kernel start time, so that a recycled pid is never mistaken for ours."""

    pid: int
    starttime: int
    name: str = ""

    @classmethod
    def of(cls, pid: int, name: str = "", timeout: float = 2.0) -> ProcRef:
        """Reference a running pid (waits briefly for /proc to show it)."""
        deadline = time.monotonic() + timeout
        while True:
            st = _starttime(pid)
            if st is not None:
                return cls(pid, st, name)
            if time.monotonic() > deadline:
                raise RuntimeError(f"process {pid} ({name}) is not running")
            time.sleep(0.01)

    def alive(self) -> bool:
        """True while the very process we started still runs (and is not a zombie)."""
        return _starttime(self.pid) == self.starttime

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> ProcRef:
        return cls(int(d["pid"]), int(d["starttime"]), str(d.get("name", "")))

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; a no-op if it is already gone."""
        if not self.alive():
            return
        _signal(self.pid, signal.SIGTERM)
        if self._wait_gone(timeout):
            return
        if self.alive():
            _signal(self.pid, signal.SIGKILL)
            self._wait_gone(timeout)

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(self.pid)
            if not self.alive():
                return True
            time.sleep(0.02)
        return not self.alive()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our own child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def spawn(argv: list[str], log: Path, env: dict[str, str], name: str = "") -> ProcRef:
    """Start a long-lived process in its own session, stdin from /dev/null, output to `log`.

    posix_spawn rather than subprocess.Popen: these processes are managed by pid (ProcRef),
    possibly from another process, so no Popen object should track them (or warn about them).
    """
    exe = shutil.which(argv[0], path=env.get("PATH")) or argv[0]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    pid = os.posix_spawn(exe, argv, env, file_actions=actions, setsid=True)
    return ProcRef.of(pid, name or Path(argv[0]).name)

"""The `process` runtime: subprocesses entered into the active's network namespace."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import time

from teamd_shim.ownership import proc_starttime

from .base import Instance, RuntimeFailure


def standby_argv(active_argv: list[str], new_name: str, exec_path: str | None) -> list[str]:
    """The active's command line with `--role standby --name NEW` (and a new executable)."""
    out: list[str] = []
    skip = False
    for a in active_argv[1:]:
        if skip:
            skip = False
            continue
        if a in ("--role", "--name"):
            skip = True
            continue
        if a.startswith(("--role=", "--name=")):
            continue
        out.append(a)
    exe = exec_path or active_argv[0]
    return [exe, *out, "--role", "standby", "--name", new_name]


class ProcessRuntime:
    name = "process"

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def locate(self, inst: Instance) -> Instance:
        return dataclasses.replace(inst, handle=str(inst.pid))

    def check_target(self, target: str | None) -> None:
        if target is not None and not os.access(target, os.X_OK):
            raise RuntimeFailure(f"--exec {target}: not an executable file")

    def start_standby(self, active: Instance, new_name: str, target: str | None) -> str:
        argv = standby_argv(active.argv, new_name, target)
        nsenter = shutil.which("nsenter")
        if nsenter is None:
            raise FileNotFoundError("nsenter (util-linux) is needed to enter the active's netns")
        log_dir = os.path.dirname(active.ctl) or "/tmp"
        os.makedirs(log_dir, exist_ok=True)
        log = open(os.path.join(log_dir, f"{new_name}.log"), "ab")  # noqa: SIM115
        # nsenter execs the shim in place, so the pid is the shim's own pid
        p = subprocess.Popen([nsenter, f"--net=/proc/{active.pid}/ns/net", "--", *argv],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
        log.close()
        self._children[p.pid] = p
        return str(p.pid)

    def describe(self, handle: str) -> str:
        return f"pid {handle}"

    def signal(self, handle: str, sig: int) -> None:
        os.kill(int(handle), sig)

    def alive(self, handle: str) -> bool:
        pid = int(handle)
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        return proc_starttime(pid) is not None

    def kill(self, handle: str, timeout: float = 2.0) -> None:
        try:
            os.kill(int(handle), signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while self.alive(handle) and time.monotonic() < deadline:
            time.sleep(0.005)

    def committed(self, old: Instance, new_handle: str) -> None:
        """Nothing to clean up: the old process has exited."""

    def rolled_back(self, old: Instance, new_handle: str | None, run: dict[str, str]) -> None:
        """Nothing was changed around the old process."""

    def journal_fields(self, active: Instance) -> dict[str, str]:
        return {}

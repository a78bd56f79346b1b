"""The `process` runtime: subprocesses entered into the active's network namespace."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import time

from orchestrator.runtime.base import Instance, RuntimeFailure
from teamd_shim.db.schema import INSTANCE_PREFIX
from teamd_shim.io.identity import proc_starttime


def without_role(argv: list[str]) -> list[str]:
    """A shim's arguments (argv[1:]) without its role, name and hot flag."""
    out: list[str] = []
    skip = False
    for a in argv[1:]:
        if skip:
            skip = False
            continue
        if a in ("--role", "--name"):
            skip = True
            continue
        if a.startswith(("--role=", "--name=")) or a == "--hot":
            continue
        out.append(a)
    return out


def standby_argv(
    active_argv: list[str], new_name: str, exec_path: str | None, *, hot: bool = False
) -> list[str]:
    """The active's command line with `--role standby --name NEW` (and a new executable);
    `hot`: a supervisor's hot standby, which promotes itself (hld §14)."""
    exe = exec_path or active_argv[0]
    return [
        exe,
        *without_role(active_argv),
        "--role",
        "standby",
        "--name",
        new_name,
        *(["--hot"] if hot else []),
    ]


def verified_cmdline(pid: int, starttime: str) -> list[str] | None:
    """The command line of `pid` as the kernel has it, if it is still the process of that
    start time (what runs is taken from the machine, not from a record anyone could write)."""
    try:
        raw = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return None
    if str(proc_starttime(pid)) != starttime or not raw:
        return None
    argv = [a.decode(errors="surrogateescape") for a in raw.rstrip(b"\0").split(b"\0")]
    # a script started through its #! line shows as `python3 SCRIPT ARGS`: SCRIPT is the shim
    if len(argv) > 1 and os.path.basename(argv[0]).startswith("python"):
        argv = argv[1:]
    if not os.path.isabs(argv[0]) and os.sep in argv[0]:
        try:
            argv[0] = os.path.normpath(os.path.join(os.readlink(f"/proc/{pid}/cwd"), argv[0]))
        except OSError:
            return None
    return argv


class ProcessRuntime:
    name = "process"

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def locate(self, inst: Instance) -> Instance:
        """The instance, its command line taken from the machine: a standby is started from
        what the verified process runs, never from the record's `argv`, which any container
        that can write Redis could have planted (a root command). A record that disagrees
        with the live process is refused; a process that is gone keeps its record (a
        rollback or recovery only signals it)."""
        argv = verified_cmdline(inst.pid, inst.starttime) if inst.pid else None
        if argv is None:
            return dataclasses.replace(inst, handle=str(inst.pid))
        if argv[1:] != inst.argv[1:] or os.path.basename(argv[0]) != os.path.basename(
            inst.argv[0] if inst.argv else ""
        ):
            raise RuntimeFailure(
                f"{INSTANCE_PREFIX}{inst.name} field argv is {inst.argv!r}, but pid "
                f"{inst.pid} runs {argv!r} (/proc/{inst.pid}/cmdline): the record is not to be "
                "trusted, refused"
            )
        return dataclasses.replace(inst, handle=str(inst.pid), argv=argv)

    def check_target(self, target: str | None) -> None:
        if target is not None and not os.access(target, os.X_OK):
            raise RuntimeFailure(f"--exec {target}: not an executable file")

    def start_standby(
        self, active: Instance, new_name: str, target: str | None, *, hot: bool = False
    ) -> str:
        argv = standby_argv(active.argv, new_name, target, hot=hot)
        nsenter = shutil.which("nsenter")
        if nsenter is None:
            raise FileNotFoundError("nsenter (util-linux) is needed to enter the active's netns")
        # nsenter execs the shim in place, so the pid is the shim's own pid
        return self._spawn(
            [nsenter, f"--net=/proc/{active.pid}/ns/net", "--", *argv],
            os.path.dirname(active.ctl),
            new_name,
        )

    def start_cold(self, argv: list[str], name: str, log_dir: str) -> str:
        """A new active in our own network namespace (the supervisor runs in the members'),
        when nothing runs that could hand the LAGs over."""
        return self._spawn([argv[0], *without_role(argv), "--name", name], log_dir, name)

    def _spawn(self, argv: list[str], log_dir: str, name: str) -> str:
        """Detached (a session of its own), so it outlives whoever started it."""
        log_dir = log_dir or "/tmp"
        os.makedirs(log_dir, exist_ok=True)
        log = open(os.path.join(log_dir, f"{name}.log"), "ab")
        p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
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

"""The `process` runtime: subprocesses entered into the active's network namespace."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping

from orchestrator.runtime.base import Instance, RuntimeFailure
from teamd_shim.control.transport import DEFAULT_CTL_DIR, DEFAULT_NAME
from teamd_shim.db.schema import INSTANCE_PREFIX
from teamd_shim.io.identity import proc_cpu_seconds, proc_starttime


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
    active_argv: list[str],
    new_name: str,
    exec_path: str | None,
    *,
    hot: bool = False,
    role: str = "standby",
) -> list[str]:
    """The active's command line with `--role ROLE --name NEW` (and a new executable);
    `hot`: a supervisor's hot standby, which promotes itself (hld §14). `role="auto"` where
    the command line outlives the start (a container's Cmd, hld §11.3): the shim is a standby
    only while someone waits for it, so a later restart of that container starts an active."""
    exe = exec_path or active_argv[0]
    return [
        exe,
        *without_role(active_argv),
        "--role",
        role,
        "--name",
        new_name,
        *(["--hot"] if hot else []),
    ]


def argv_option(argv: list[str], option: str) -> str | None:
    """The value of `--option X` / `--option=X` in a shim's arguments (the last one wins, as
    with argparse); None if absent."""
    found = None
    for i, a in enumerate(argv):
        if a == option and i + 1 < len(argv):
            found = argv[i + 1]
        elif a.startswith(option + "="):
            found = a[len(option) + 1 :]
    return found


def shim_name(argv: list[str]) -> str:
    return argv_option(argv[1:], "--name") or DEFAULT_NAME


def shim_ctl_dir(argv: list[str], environ: Mapping[str, str], cwd: str = "/") -> str:
    """Where the shim of this command line puts its control socket, as the shim itself decides
    it (cli.py): `--ctl-dir`, else $TEAMD_SHIM_CTL_DIR, else the default; computed from what
    runs (a process, a container's Config), never read from its record (hld §15.3)."""
    ctl_dir = (
        argv_option(argv[1:], "--ctl-dir") or environ.get("TEAMD_SHIM_CTL_DIR") or DEFAULT_CTL_DIR
    )
    return os.path.normpath(os.path.join(cwd, ctl_dir))


def shim_ctl_path(argv: list[str], environ: Mapping[str, str], cwd: str = "/") -> str:
    return os.path.join(shim_ctl_dir(argv, environ, cwd), f"{shim_name(argv)}.sock")


def process_environ(pid: int) -> dict[str, str]:
    try:
        raw = open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        k, eq, v = item.partition(b"=")
        if eq:
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def verified_shim(pid: int, starttime: str, name: str) -> tuple[list[str], str] | None:
    """(argv, control-socket path) of `pid` if it is still the process of that start time and
    runs the shim named `name`; None otherwise (gone, reused, or something else)."""
    argv = verified_cmdline(pid, starttime)
    if argv is None or shim_name(argv) != name:
        return None
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    return argv, shim_ctl_path(argv, process_environ(pid), cwd)


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


def _cwd_of(pid: int) -> str | None:
    """The active's working directory: a relative --ctl-dir in its command line means the
    same directory for the standby."""
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


class ProcessRuntime:
    name = "process"

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def locate(self, inst: Instance) -> Instance:
        """The instance, its command line and control socket taken from the machine: a
        standby is started from what the verified process runs, never from the record's
        `argv`, which any container that can write Redis could have planted (a root command);
        the socket (and the standby's log beside it) is where that command line makes the shim
        listen. A record that disagrees with the live process is refused; a process that is
        gone keeps its record (a rollback or recovery only signals it)."""
        argv = verified_cmdline(inst.pid, inst.starttime) if inst.pid else None
        if argv is None:  # gone (or never that process): nothing of its record is used
            return dataclasses.replace(inst, handle=str(inst.pid), argv=[], ctl="")
        where = f"pid {inst.pid} runs {argv!r} (/proc/{inst.pid}/cmdline)"
        if argv[1:] != inst.argv[1:] or os.path.basename(argv[0]) != os.path.basename(
            inst.argv[0] if inst.argv else ""
        ):
            raise self._refused(inst, "argv", inst.argv, where)
        if shim_name(argv) != inst.name:
            raise self._refused(inst, "name", inst.name, where)
        try:
            cwd = os.readlink(f"/proc/{inst.pid}/cwd")
        except OSError as e:
            raise RuntimeFailure(f"pid {inst.pid}: cannot read its cwd ({e})") from None
        ctl = shim_ctl_path(argv, process_environ(inst.pid), cwd)
        if os.path.normpath(os.path.join(cwd, inst.ctl)) != ctl:
            raise self._refused(inst, "ctl", inst.ctl, f"{where}, which listens on {ctl}")
        return dataclasses.replace(inst, handle=str(inst.pid), argv=argv, ctl=ctl)

    @staticmethod
    def _refused(inst: Instance, field: str, value: object, found: str) -> RuntimeFailure:
        return RuntimeFailure(
            f"{INSTANCE_PREFIX}{inst.name} field {field} is {value!r}, but {found}: the record "
            "is not to be trusted, refused; nothing was changed"
        )

    def check_target(self, target: str | None) -> None:
        if target is not None and not os.access(target, os.X_OK):
            raise RuntimeFailure(f"--exec {target}: not an executable file")

    def start_standby(
        self, active: Instance, new_name: str, target: str | None, *, hot: bool = False
    ) -> str:
        found = verified_shim(active.pid, active.starttime, active.name) if active.pid else None
        if found is None:
            raise RuntimeFailure(
                f"pid {active.pid} is not (any more) the teamd-shim {active.name!r} of its "
                "record (/proc shows another start time, command line or name): no standby is "
                "started from a record alone; nothing was changed"
            )
        active_argv, active_ctl = found
        argv = standby_argv(active_argv, new_name, target, hot=hot)
        nsenter = shutil.which("nsenter")
        if nsenter is None:
            raise FileNotFoundError("nsenter (util-linux) is needed to enter the active's netns")
        # nsenter execs the shim in place, so the pid is the shim's own pid
        return self._spawn(
            [nsenter, f"--net=/proc/{active.pid}/ns/net", "--", *argv],
            os.path.dirname(active_ctl),
            new_name,
            cwd=_cwd_of(active.pid),
        )

    def start_cold(self, argv: list[str], name: str, log_dir: str) -> str:
        """A new active in our own network namespace (the supervisor runs in the members'),
        when nothing runs that could hand the LAGs over."""
        return self._spawn([argv[0], *without_role(argv), "--name", name], log_dir, name)

    def _spawn(self, argv: list[str], log_dir: str, name: str, cwd: str | None = None) -> str:
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
            cwd=cwd,
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

    def cpu_seconds(self, handle: str) -> float | None:
        return proc_cpu_seconds(int(handle))

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

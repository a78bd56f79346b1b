"""Who this process is, in terms another process on the host can check (hld §11.2).

A shim in a container has its own pid namespace: its pid means nothing on the host, and with
`--network container:X` it even shares X's hostname with every other shim of that holder. So an
instance record carries the pid namespace (`pid:[inode]`, the same string from inside and from
`/proc/<pid>/ns/pid` on the host) and, when the cgroup names it, the container id. The host's
orchestrator finds the container by either, and addresses it by container id, never by pid.
"""

from __future__ import annotations

import functools
import os
import re
import socket

# cgroup v1 with the cgroupfs driver: `/docker/<id>`; systemd driver: `docker-<id>.scope`
_CGROUP_ID = re.compile(r"(?:/docker[-/]|docker-)([0-9a-f]{64})(?:\.scope)?\b")


def pid_namespace(pid: int | str = "self") -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


@functools.cache
def container_id() -> str:
    """This process's Docker container id from its cgroup path, or '' (host, or cgroup v2
    with a private cgroup namespace, where the path is just `/`). Fixed for the process's
    life, so read once (the heartbeat asks every second)."""
    try:
        with open("/proc/self/cgroup") as f:
            text = f.read()
    except OSError:
        return ""
    m = _CGROUP_ID.search(text)
    return m.group(1) if m else ""


def host_id() -> str:
    """Equal for two processes exactly when a pid of one is meaningful to the other."""
    return f"{socket.gethostname()}/{pid_namespace()}"


def proc_starttime(pid: int) -> int | None:
    """The process's start time in clock ticks (/proc/<pid>/stat field 22), None if it is gone
    or a zombie: with the pid, it names one process for good (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    if rest[0] == b"Z":
        return None
    return int(rest[19])


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of /proc/<pid>/stat (fields 14 and 15), in seconds; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def process_alive(host: str, pid: str, starttime: str) -> bool | None:
    """The one "same host" rule of every record that names a process (instance, lock holder,
    supervisor): when `host` is our host_id(), that very process still runs or not; None when
    its pid means nothing here (another host or pid namespace), for the caller to judge by a
    heartbeat or to assume alive."""
    if host != host_id() or not pid.isdigit():
        return None
    st = proc_starttime(int(pid))
    return st is not None and str(st) == starttime

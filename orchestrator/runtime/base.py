"""The runtime interface and the instance record it works from.

A runtime addresses instances by an opaque *handle*: a host pid for `process`, a container id
for `docker` (a shim in a container has its own pid namespace, so its pid means nothing on the
host). The controller never looks inside a handle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from teamd_shim.db.schema import INSTANCE_PREFIX


@dataclass(frozen=True)
class Instance:
    """A registered shim (STATE_DB `TEAMD_SHIM_INSTANCE|<name>`), located by a runtime."""

    name: str
    pid: int  # in the shim's own pid namespace
    starttime: str
    host: str
    argv: list[str]
    netns: str
    version: str
    role: str
    ctl: str  # as the shim sees it; `locate` makes it a path this host can open
    epoch: str = ""
    pidns: str = ""
    container: str = ""  # container id as the shim's cgroup names it ('' on the host)
    handle: str = ""  # set by Runtime.locate
    image: str = ""  # docker: image id the container runs
    image_ref: str = ""  # docker: the image name the container was created from
    container_name: str = ""  # docker: `teamd`

    @classmethod
    def from_record(cls, name: str, rec: dict[str, str]) -> Instance:
        """The record's shape checked (any container can write it, hld §15.1): a field that is
        not what a shim writes raises RuntimeFailure naming it. Its content is checked against
        the machine by `Runtime.locate`."""
        pid = rec.get("pid", "0") or "0"
        if not pid.isdigit():
            raise _malformed(name, "pid", pid, "a process id")
        try:
            argv = json.loads(rec.get("argv", "[]"))
        except ValueError:
            argv = None
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise _malformed(name, "argv", rec.get("argv"), "a JSON list of strings")
        return cls(
            name=name,
            pid=int(pid),
            starttime=rec.get("starttime", ""),
            host=rec.get("host", ""),
            argv=argv,
            netns=rec.get("netns", ""),
            version=rec.get("version", ""),
            role=rec.get("role", ""),
            ctl=rec.get("ctl", ""),
            epoch=rec.get("epoch", ""),
            pidns=rec.get("pidns", ""),
            container=rec.get("container", ""),
        )


def _malformed(name: str, field: str, value: object, want: str) -> RuntimeFailure:
    return RuntimeFailure(
        f"{INSTANCE_PREFIX}{name} field {field} is {value!r}, not {want}: the record was not "
        "written by a teamd-shim; refused, nothing was changed"
    )


class RuntimeFailure(RuntimeError):
    """The runtime could not do what was asked; the message says what and what to do."""


class Runtime(Protocol):
    name: str

    def locate(self, inst: Instance) -> Instance:
        """The instance with `handle` (and a host-reachable `ctl`) filled in; raises
        RuntimeFailure when this runtime cannot find it."""
        ...

    def check_target(self, target: str | None) -> None:
        """Refuse (RuntimeFailure) a `target` this runtime could not start, before anything
        changed: an executable that is not one, an image the engine does not have."""
        ...

    def start_standby(
        self, active: Instance, new_name: str, target: str | None, *, hot: bool = False
    ) -> str:
        """Start a standby like the active (`target`: another executable or image; `hot`: a
        supervisor's, which promotes itself); return its handle."""
        ...

    def describe(self, handle: str) -> str: ...

    def signal(self, handle: str, sig: int) -> None: ...

    def alive(self, handle: str) -> bool: ...

    def cpu_seconds(self, handle: str) -> float | None:
        """CPU time the instance's process has used (the `ready` stage's sign of a standby
        still starting up, ready_wait.py); None where it cannot be read."""
        ...

    def kill(self, handle: str, timeout: float = 2.0) -> None:
        """SIGKILL and wait until gone (works on stopped/paused ones too)."""
        ...

    def committed(self, old: Instance, new_handle: str) -> None:
        """The new instance owns the LAGs and the old one has exited: clean up after the old
        one without touching the kernel or the DBs."""
        ...

    def rolled_back(self, old: Instance, new_handle: str | None, run: dict[str, str]) -> None:
        """The new instance is dead: undo what start_standby changed around the old one.
        `run` holds what journal_fields recorded before the start (what to restore)."""
        ...

    def journal_fields(self, active: Instance) -> dict[str, str]:
        """What `recover` needs to finish or undo this run after the orchestrator died."""
        ...

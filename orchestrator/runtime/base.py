"""The runtime interface and the instance record it works from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Instance:
    """A registered shim (STATE_DB `TEAMD_SHIM_INSTANCE|<name>`)."""

    name: str
    pid: int
    starttime: str
    host: str
    argv: list[str]
    netns: str
    version: str
    role: str
    ctl: str
    epoch: str = ""

    @classmethod
    def from_record(cls, name: str, rec: dict[str, str]) -> Instance:
        return cls(name=name, pid=int(rec.get("pid", "0") or 0), starttime=rec.get("starttime", ""),
                   host=rec.get("host", ""), argv=json.loads(rec.get("argv", "[]")),
                   netns=rec.get("netns", ""), version=rec.get("version", ""),
                   role=rec.get("role", ""), ctl=rec.get("ctl", ""), epoch=rec.get("epoch", ""))


class Runtime(Protocol):
    name: str

    def start_standby(self, active: Instance, new_name: str, exec_path: str | None) -> int:
        """Start a standby with the active's command line (or `exec_path`) where the active
        runs; return its pid."""
        ...

    def signal(self, pid: int, sig: int) -> None: ...

    def alive(self, pid: int) -> bool: ...

    def kill(self, pid: int, timeout: float = 2.0) -> None:
        """SIGKILL and wait until gone (works on stopped processes too)."""
        ...

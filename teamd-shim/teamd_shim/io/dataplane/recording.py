"""Journals every dataplane write (time, pid, epoch, what) to a shared append-only file.

Several processes append to the same file with O_APPEND single writes, so lines never interleave;
a test reads it afterwards and checks that writes by different owners never overlap in time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from teamd_shim.io.dataplane.base import Dataplane

if TYPE_CHECKING:
    from teamd_shim.io.dataplane.base import TeamDevice
    from teamd_shim.model.config import LagConfig, PortSettings


class RecordingDataplane:
    """Wraps another backend; `epoch()` is read at every write, so stale owners show up (None:
    no epoch yet, recorded as null)."""

    def __init__(self, inner: Dataplane, path: str, epoch: Callable[[], int | None]) -> None:
        self.inner = inner
        self.name = f"{inner.name}+recording"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._epoch = epoch

    def _log(self, **what: object) -> None:
        rec = {"t": time.monotonic(), "pid": os.getpid(), "epoch": self._epoch(), **what}
        os.write(self._fd, (json.dumps(rec) + "\n").encode())

    def lag_added(self, cfg: LagConfig, *, owner: bool, carrier: bool = False) -> None:
        if owner:
            self._log(op="lag_added", lag=cfg.name, carrier=carrier)
        self.inner.lag_added(cfg, owner=owner, carrier=carrier)

    def lag_changed(self, cfg: LagConfig) -> None:
        self._log(op="lag_changed", lag=cfg.name, mtu=cfg.mtu, admin_up=cfg.admin_up)
        self.inner.lag_changed(cfg)

    def member_added(
        self,
        lag: str,
        port: str,
        *,
        owner: bool,
        admin_up: bool = True,
        enabled: bool | None = False,
    ) -> None:
        if owner:
            self._log(op="member_added", lag=lag, port=port, enabled=enabled)
        self.inner.member_added(lag, port, owner=owner, admin_up=admin_up, enabled=enabled)

    def device(self, lag: str) -> TeamDevice | None:
        return self.inner.device(lag)

    def port_enabled(self, lag: str, port: str) -> bool | None:
        return self.inner.port_enabled(lag, port)

    def queued_carrier(self, lag: str) -> bool | None:
        return self.inner.queued_carrier(lag)

    def queued_enabled(self, lag: str, port: str) -> bool | None:
        return self.inner.queued_enabled(lag, port)

    def close(self) -> None:
        self.inner.close()
        os.close(self._fd)

    def set_port_enabled(self, lag: str, port: str, enabled: bool) -> None:
        self._log(op="enabled", lag=lag, port=port, value=enabled)
        self.inner.set_port_enabled(lag, port, enabled)

    def set_carrier(self, lag: str, up: bool) -> None:
        self._log(op="carrier", lag=lag, value=up)
        self.inner.set_carrier(lag, up)

    def lag_removed(self, lag: str) -> None:
        self._log(op="lag_removed", lag=lag)
        self.inner.lag_removed(lag)

    def member_removed(self, lag: str, port: str, restore: PortSettings | None = None) -> None:
        self._log(op="member_removed", lag=lag, port=port)
        self.inner.member_removed(lag, port, restore)

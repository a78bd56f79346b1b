"""The carrier / `enabled` values a backend was asked to write and has not written yet.

The team backend applies writes on one worker thread, in call order, and serves reads from the
kernel's view. Under load a write can wait a second or more behind the netlink round trips of an
adoption (kernel tier under emulation). A comparison of our view with the kernel's made
meanwhile, as the owner's resync after a stall or a rollback does (`LagRunner.sync_dataplane`,
hld §14.3), would miss a difference that a write still in the queue is about to create: a cold
start that adopted a team netdev queued "carrier down, ports disabled", stalled, decided "carrier
up" while suspect (so wrote nothing), saw the kernel still up from the killed owner, and wrote
nothing again; the queued "down" then landed and the LAG stayed down while LACP said up. Asking
for the last queued value first closes that gap without writing anything when nothing is
pending (a promoted standby has nothing queued, so it still writes nothing it did not decide).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class WriteKey:
    """One kernel value the owner writes: the LAG's carrier (port None) or a port's `enabled`."""

    lag: str
    port: str | None = None


class QueuedWrites:
    """Thread-safe: `queue` on the caller's thread, `applied` on the worker's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ticket = 0
        self._pending: dict[WriteKey, tuple[int, bool]] = {}

    def queue(self, key: WriteKey, value: bool) -> int:
        """Record a write about to be queued; returns its ticket for `applied`."""
        with self._lock:
            self._ticket += 1
            self._pending[key] = (self._ticket, value)
            return self._ticket

    def applied(self, key: WriteKey, ticket: int) -> None:
        """The worker is done with that write (applied or failed): unless a later write of the
        same key is queued, the kernel's view speaks for it again."""
        with self._lock:
            if self._pending.get(key, (0, False))[0] == ticket:
                del self._pending[key]

    def value(self, key: WriteKey) -> bool | None:
        """The last value queued for `key` and not yet applied, or None."""
        with self._lock:
            entry = self._pending.get(key)
            return entry[1] if entry is not None else None

"""LAG state out to STATE_DB and APPL_DB, coalesced: the runner's fifth job, on its own.

The LACP path only marks a LAG dirty; at most once per PUBLISH_EVERY_S the dirty LAGs are
recomputed from one source (the state items, control/state_items.py) and handed to the
publisher's desired-state mirror, whose thread writes the difference (db/publisher.py). Only
the owner publishes LAG state; the others keep it dirty for the moment they own the LAGs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping

from teamd_shim.control.state_items import (
    appl_db_lag,
    appl_db_member,
    state_db_lag,
    state_db_member,
    state_dump,
)
from teamd_shim.db.publisher import Publisher
from teamd_shim.db.schema import appl_lag, appl_member, appl_port, state_lag, state_member
from teamd_shim.io.dataplane.base import TeamDevice
from teamd_shim.io.links import LinkInfo
from teamd_shim.model.config import PortSettings
from teamd_shim.model.running_lag import RunningLag

PUBLISH_EVERY_S = 0.1


class LagPublishing:
    def __init__(
        self,
        publisher: Publisher,
        *,
        lags: Callable[[], Mapping[str, RunningLag]],
        links: Callable[[], Mapping[str, LinkInfo]],
        device: Callable[[RunningLag], TeamDevice],
        owner: Callable[[], bool],
    ) -> None:
        self.publisher = publisher
        # read through the runner each time: the shim replaces its link table wholesale
        self._lags, self._links = lags, links
        self._device, self._owner = device, owner
        self.dirty: set[str] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def mark(self, names: Iterable[str]) -> None:
        self.dirty.update(names)
        self.schedule()

    def schedule(self) -> None:
        if self._handle is None and self.dirty and self._loop is not None:
            self._handle = self._loop.call_later(PUBLISH_EVERY_S, self.flush)

    def drop(self, name: str) -> None:
        """A LAG that went away: its keys leave Redis, nothing more is published for it."""
        self.publisher.drop(state_lag(name))
        self.publisher.drop(appl_lag(name))
        self.dirty.discard(name)

    def drop_member(self, lag: str, port: str, restore: PortSettings | None = None) -> None:
        """`restore`: a real removal, after which APPL_DB PORT_TABLE gets the port's own
        admin state and MTU back (teammgrd's removeLagMember)."""
        self.publisher.drop(state_member(lag, port))
        self.publisher.drop(appl_member(lag, port))
        if restore is not None:
            self.publisher.put(
                appl_port(port),
                {"admin_status": "up" if restore.admin_up else "down", "mtu": str(restore.mtu)},
            )

    def flush(self) -> None:
        """Coalesced: at most one STATE_DB/APPL_DB recomputation per LAG every 100 ms."""
        self._handle = None
        if not self._owner():
            return  # only the owner publishes LAG state; the rest keep it dirty for later
        dirty, self.dirty = self.dirty, set()
        for name in dirty:
            running = self._lags().get(name)
            if running is not None:
                self._put(name, running)

    def _put(self, name: str, running: RunningLag) -> None:
        dev = self._device(running)
        dump = state_dump(running.lacp, running.cfg, dev, self._links())
        # a refused change of a running LAG is in TEAMD_CONFIG_ERROR_TABLE (the shim's), not here
        self.publisher.put(state_lag(name), state_db_lag(dump, dev))
        cfg = running.cfg
        extra = {k: v for k, v in (("tpid", cfg.tpid), ("learn_mode", cfg.learn_mode)) if v}
        self.publisher.put(appl_lag(name), {**appl_db_lag(dev), **extra})
        for port, pd in dump["ports"].items():
            # a member takes the LAG's MTU (teammgrd's addLagMember / setLagMtu)
            self.publisher.put(appl_port(port), {"mtu": str(cfg.mtu)})
            self.publisher.put(state_member(name, port), state_db_member(pd))
            self.publisher.put(
                appl_member(name, port), appl_db_member(running.enabled.get(port, False))
            )

"""Follows CONFIG_DB (PORTCHANNEL, PORTCHANNEL_MEMBER, DEVICE_METADATA) from a thread.

Every change, and every reconnect after Redis went away, produces a full snapshot of the three
tables; the daemon diffs snapshots. Re-reading a few hundred small hashes is cheap, and a snapshot
can never drift from Redis the way an event-by-event mirror can after a lost notification.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from teamd_shim.db import redis_edge, sonic_db
from teamd_shim.db.schema import (
    CONFIG_DB,
    CONFIG_DB_INITIALIZED,
    DEVICE_METADATA,
    PORT,
    PORTCHANNEL,
    PORTCHANNEL_MEMBER,
)

log = logging.getLogger(__name__)

TABLES = (PORTCHANNEL, PORTCHANNEL_MEMBER, DEVICE_METADATA)
DEBOUNCE_S = 0.05


@dataclass
class ConfigSnapshot:
    """The three CONFIG_DB tables as plain dicts."""

    portchannel: dict[str, dict[str, str]] = field(default_factory=dict)
    members: list[tuple[str, str]] = field(default_factory=list)
    device_mac: str | None = None
    # CONFIG_DB PORT|<port> (admin_status, mtu): what teammgrd gives a member when it joins
    # and leaves; read with the rest, not followed
    ports: dict[str, dict[str, str]] = field(default_factory=dict)
    initialized: bool = False  # SONiC's CONFIG_DB_INITIALIZED: config-setup finished loading


def read_snapshot(db: sonic_db.DBConnector) -> ConfigSnapshot:
    snap = ConfigSnapshot()
    snap.initialized = bool(db.get(CONFIG_DB_INITIALIZED))
    pc = sonic_db.Table(db, PORTCHANNEL)
    for k in pc.getKeys():
        found, fvs = pc.get(k)
        if found:
            snap.portchannel[k] = {f: v for f, v in fvs if f != "NULL"}
    pm = sonic_db.Table(db, PORTCHANNEL_MEMBER)
    for k in pm.getKeys():
        lag, sep, port = k.partition("|")
        if sep:
            snap.members.append((lag, port))
    # every port, not only today's members: one that just left the LAG gets its own back
    port_table = sonic_db.Table(db, PORT)
    for port in port_table.getKeys():
        found, fvs = port_table.get(port)
        if found:
            snap.ports[port] = {f: v for f, v in fvs if f in ("admin_status", "mtu")}
    found, mac = sonic_db.Table(db, DEVICE_METADATA).hget("localhost", "mac")
    snap.device_mac = mac.lower() if found and mac else None
    return snap


class ConfigWatcher:
    """Calls `on_snapshot(snapshot)` from its thread after every CONFIG_DB change."""

    def __init__(self, endpoint: sonic_db.Endpoint, on_snapshot: Callable[[ConfigSnapshot], None]):
        self._endpoint = endpoint
        self._on_snapshot = on_snapshot
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="config-watch", daemon=True)
        self.connected = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        retrying = redis_edge.forever(self._lost)
        while not self._stop.is_set():
            try:
                retrying(self._session)
            except Exception:
                log.exception("config watcher: unexpected error; restarting in 1 s")
                self._stop.wait(1.0)

    def _lost(self, retry_state: object) -> None:
        if self.connected:
            log.warning("CONFIG_DB unreachable; keeping the running config until Redis is back")
        self.connected = False

    def _session(self) -> None:
        db = sonic_db.connect(self._endpoint, CONFIG_DB)
        sel = sonic_db.Select()
        subs = [sonic_db.SubscriberStateTable(db, t) for t in TABLES]
        for s in subs:
            sel.addSelectable(s)
        for s in subs:  # initial content arrives as events; the snapshot below covers it
            s.pops()
        self._on_snapshot(read_snapshot(db))
        self.connected = True
        while not self._stop.is_set():
            state, _ = sel.select(1000)
            if state == sonic_db.Select.TIMEOUT:
                continue
            if state != sonic_db.Select.OBJECT:
                raise redis.exceptions.ConnectionError("CONFIG_DB subscription failed")
            self._stop.wait(DEBOUNCE_S)  # coalesce bursts such as `config load`
            for s in subs:
                s.pops()
            self._on_snapshot(read_snapshot(db))

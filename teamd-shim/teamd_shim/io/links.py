"""Netdev state (exists, MAC, link up, master, carrier) from rtnetlink, watched from a thread.

pyroute2's sync IPRoute cannot be created inside a running asyncio loop, and a blocking netlink
read must not stall LACP, so the watcher lives in its own thread and hands plain records to its
subscribers: the shim (members) and the team backend (the team netdevs and their ports), one
RTM_NEWLINK stream for both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyroute2.iproute import IPRoute

from teamd_shim.io.ethtool import speed_duplex

log = logging.getLogger(__name__)

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000


@dataclass(frozen=True)
class LinkInfo:
    """A netdev as RTM_NEWLINK tells it. `up` means admin up with carrier (LACP may run);
    the team backend reads the rest (flags, carrier, mtu: the team netdev's kernel view)."""

    name: str
    ifindex: int
    mac: str
    up: bool
    master: int = 0
    kind: str = ""
    flags: int = 0
    carrier: bool = False
    mtu: int = 0
    speed: int = 0  # Mb/s, ethtool's (0: unknown); teamd's dump shows it
    duplex: str = "unknown"


def link_info(msg: Any) -> LinkInfo | None:
    """`msg`: a pyroute2 ifinfmsg (a dict with `get_attr`; pyroute2 has no types)."""
    name = msg.get_attr("IFLA_IFNAME")
    if not name:
        return None
    flags = msg["flags"]
    kind = ""
    linkinfo = msg.get_attr("IFLA_LINKINFO")
    if linkinfo is not None:
        kind = linkinfo.get_attr("IFLA_INFO_KIND") or ""
    # only a link that is up has a speed to tell; one ioctl per link event
    speed, duplex = speed_duplex(name) if flags & IFF_LOWER_UP else (0, "unknown")
    return LinkInfo(
        name=name,
        ifindex=msg["index"],
        mac=(msg.get_attr("IFLA_ADDRESS") or "00:00:00:00:00:00").lower(),
        up=bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP),
        master=msg.get_attr("IFLA_MASTER") or 0,
        kind=kind,
        flags=flags,
        carrier=bool(msg.get_attr("IFLA_CARRIER")),
        mtu=msg.get_attr("IFLA_MTU") or 0,
        speed=speed,
        duplex=duplex,
    )


OnLinks = Callable[[dict[str, LinkInfo]], None]
OnLink = Callable[[str, LinkInfo | None], None]


class LinkWatcher:
    """The process's one rtnetlink link watcher; every part that needs netdevs subscribes.

    A subscriber gets `on_links(full_table)` once (at once if the first dump is done, else
    when it is), then `on_link(name, LinkInfo | None)` per change, all in the watcher thread:
    a subscriber on an event loop posts them there itself. Subscribing under the lock that
    dispatch holds means no change falls between the table and the first event.
    """

    def __init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="links", daemon=True)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._subs: list[tuple[OnLinks, OnLink]] = []
        self._table: dict[str, LinkInfo] | None = None  # None until the first dump
        self._names: dict[int, str] = {}
        self.ready = threading.Event()

    def subscribe(self, on_links: OnLinks, on_link: OnLink) -> None:
        with self._lock:
            self._subs.append((on_links, on_link))
            if self._table is not None:
                on_links(dict(self._table))

    def start(self) -> None:
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except Exception:
                log.exception("link watcher failed; restarting in 1 s")
                self._stop.wait(1.0)

    def _session(self) -> None:
        with IPRoute() as mon:
            mon.bind()
            with IPRoute() as ipr:
                table = {}
                for m in ipr.link("dump"):
                    info = link_info(m)
                    if info:
                        table[info.name] = info
            with self._lock:
                self._table = dict(table)
                self._names = {i.ifindex: i.name for i in table.values()}
                for on_links, _ in self._subs:
                    on_links(dict(table))
            self.ready.set()
            while not self._stop.is_set():
                for m in mon.get():
                    ev = m.get("event")
                    if ev == "RTM_NEWLINK":
                        info = link_info(m)
                        if info:
                            old = self._names.get(info.ifindex)
                            self._names[info.ifindex] = info.name
                            self._emit(info.name, info)
                            if old and old != info.name:
                                # a rename: the new name first, so a cache keyed by ifindex
                                # (the team backend's) keeps what it knew of the netdev
                                self._emit(old, None)
                    elif ev == "RTM_DELLINK":
                        name = self._names.pop(m["index"], None) or m.get_attr("IFLA_IFNAME")
                        if name:
                            self._emit(name, None)

    def _emit(self, name: str, info: LinkInfo | None) -> None:
        with self._lock:
            assert self._table is not None
            if info is None:
                self._table.pop(name, None)
            else:
                self._table[name] = info
            for _, on_link in self._subs:
                try:
                    on_link(name, info)
                except Exception:  # one subscriber's bug must not starve the others
                    log.exception("link event %s: a subscriber failed", name)

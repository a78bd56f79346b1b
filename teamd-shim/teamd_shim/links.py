"""Member netdev state (exists, MAC, link up) from rtnetlink, watched from a thread.

pyroute2's sync IPRoute cannot be created inside a running asyncio loop, and a blocking netlink
read must not stall LACP, so the watcher lives in its own thread and posts plain records.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute

log = logging.getLogger(__name__)

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000


@dataclass(frozen=True)
class LinkInfo:
    """What the shim needs of a netdev; `up` means admin up with carrier (LACP may run)."""

    name: str
    ifindex: int
    mac: str
    up: bool
    master: int = 0
    kind: str = ""


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
    return LinkInfo(
        name=name,
        ifindex=msg["index"],
        mac=(msg.get_attr("IFLA_ADDRESS") or "00:00:00:00:00:00").lower(),
        up=bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP),
        master=msg.get_attr("IFLA_MASTER") or 0,
        kind=kind,
    )


class LinkWatcher:
    """Posts `on_links(full_table)` once, then `on_link(name, LinkInfo | None)` per change."""

    def __init__(
        self,
        on_links: Callable[[dict[str, LinkInfo]], None],
        on_link: Callable[[str, LinkInfo | None], None],
    ) -> None:
        self._on_links = on_links
        self._on_link = on_link
        self._thread = threading.Thread(target=self._run, name="links", daemon=True)
        self._stop = False
        self._names: dict[int, str] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop = True

    def _run(self) -> None:
        while not self._stop:
            try:
                self._session()
            except Exception:
                log.exception("link watcher failed; restarting in 1 s")
                threading.Event().wait(1.0)

    def _session(self) -> None:
        with IPRoute() as mon:
            mon.bind()
            with IPRoute() as ipr:
                table = {}
                for m in ipr.link("dump"):
                    info = link_info(m)
                    if info:
                        table[info.name] = info
                        self._names[info.ifindex] = info.name
            self._on_links(table)
            while not self._stop:
                for m in mon.get():
                    ev = m.get("event")
                    if ev == "RTM_NEWLINK":
                        info = link_info(m)
                        if info:
                            old = self._names.get(info.ifindex)
                            if old and old != info.name:
                                self._on_link(old, None)
                            self._names[info.ifindex] = info.name
                            self._on_link(info.name, info)
                    elif ev == "RTM_DELLINK":
                        name = self._names.pop(m["index"], None) or m.get_attr("IFLA_IFNAME")
                        if name:
                            self._on_link(name, None)

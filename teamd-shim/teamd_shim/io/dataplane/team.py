"""`team`: the Linux team driver as the LAG dataplane, driven as teamd's LACP runner drives it.

What is written, and when (hld/teamd-hitless-hld.md, "team backend"):
- cold start of the owner (`lag_added(owner=True)`): create the team netdev if absent, else adopt
  it; mode `loadbalance` while it has no ports; carrier DOWN (teamd's `lacp_carrier_init`); MTU
  and admin state from CONFIG_DB. `member_added(owner=True)`: enslave unless already a port of
  this team (admin down first: the kernel refuses an up port), give it the team's MAC (as
  teamd's `lacp_port_set_mac`), admin up, then `enabled=false` (a new port starts enabled in
  the kernel; teamd's LACP runner disables it at once).
- a standby (`owner=False`) only looks; after a takeover the new owner writes nothing until its
  own LACP machines decide a change (`set_port_enabled` / `set_carrier`).
- warm stop (retire, SIGUSR1 path): `close()` stops the threads and touches nothing. Cold stop
  (SIGTERM on the active): the daemon calls `member_removed` / `lag_removed`, which release the
  ports and delete the netdev, as teamd does on SIGTERM.

pyroute2's sync sockets run their own event loop and cannot be used from the thread of a
running asyncio loop, and a netlink round trip must never delay a PDU. So every write is queued
to one worker thread (in call order) and every read is served from caches kept current by the
process's one rtnetlink link watcher (links.py: devices, ports, carrier) and by a thread on the team
`change_event` multicast group (per-port `enabled`). Errors are logged with what failed and what
was kept; one port's failure never raises into the LACP loop.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyroute2.iproute import IPRoute
from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_SETLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from teamd_shim.io.dataplane import tx_hash
from teamd_shim.io.dataplane.base import TeamDevice
from teamd_shim.io.dataplane.queued import QueuedWrites, WriteKey
from teamd_shim.io.dataplane.teamnl import NLA_BINARY, TeamNL
from teamd_shim.io.links import IFF_LOWER_UP, IFF_UP, LinkInfo, LinkWatcher, link_info

if TYPE_CHECKING:
    from teamd_shim.model.config import LagConfig, PortSettings

log = logging.getLogger(__name__)

# one queued write: what (for the log), the function, its arguments, and the carrier / `enabled`
# values it sets with their tickets in QueuedWrites
_Op = tuple[str, Callable[..., None], tuple[Any, ...], tuple[tuple[WriteKey, int], ...]]

TEAM_MODE = "loadbalance"  # what teamd's LACP runner sets (teamd_runner_lacp.c)
INIT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0


def set_carrier(ipr: IPRoute, ifindex: int, up: bool) -> None:
    """RTM_SETLINK with IFLA_CARRIER: pyroute2 0.9.7's `link('set', carrier=)` is dropped."""
    msg = ifinfmsg()
    msg["index"] = ifindex
    msg["attrs"] = [("IFLA_CARRIER", 1 if up else 0)]
    ipr.asyncore.status["nlm_generator"] = False  # IPRoute.nlm_request KeyError in 0.9.7
    ipr.nlm_request(msg, msg_type=RTM_SETLINK, msg_flags=NLM_F_REQUEST | NLM_F_ACK)


def _close(*sockets: IPRoute | TeamNL | None) -> None:
    for s in sockets:
        if s is not None:
            try:
                s.close()
            except Exception:
                pass


def kernel_team_probe() -> str | None:
    """None when the kernel has the team driver, else why not (the probe's own error).

    The `team` genl family binds only when the team driver is loaded.
    """
    pyroute2_log = logging.getLogger("pyroute2")
    level = pyroute2_log.level
    pyroute2_log.setLevel(logging.CRITICAL)  # its "protocol team not found" is our message
    try:
        with TeamNL():
            return None
    except Exception as e:
        return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    finally:
        pyroute2_log.setLevel(level)


class TeamDataplane:
    """The `Dataplane` protocol over a real team netdev per PortChannel."""

    name = "team"

    def __init__(self, links: LinkWatcher, on_change: Callable[[str], None] | None = None) -> None:
        self._on_change = on_change or (lambda lag: None)
        self._lock = threading.Lock()
        self._links: dict[int, LinkInfo] = {}
        self._byname: dict[str, int] = {}
        self._enabled: dict[tuple[int, int], bool] = {}  # (team ifindex, port ifindex)
        self._ops: queue.Queue[_Op | None] = queue.Queue()
        self._queued = QueuedWrites()
        self._stop = threading.Event()
        self._ready = {"links": threading.Event(), "options": threading.Event()}
        self._threads = [
            threading.Thread(target=self._worker, name="team-writer", daemon=True),
            threading.Thread(target=self._watch_options, name="team-genl", daemon=True),
        ]
        links.subscribe(self._on_links, self._on_link)  # the process's one rtnetlink watcher
        links.start()
        for t in self._threads[1:]:
            t.start()
        for what, ev in self._ready.items():
            if not ev.wait(INIT_TIMEOUT_S):
                log.error(
                    "team dataplane: initial %s dump did not finish in %.0f s; the kernel "
                    "view fills in as events arrive",
                    what,
                    INIT_TIMEOUT_S,
                )
        self._threads[0].start()

    # ---- reads (any thread) ----------------------------------------------------------------
    def _lookup(self, name: str) -> LinkInfo | None:
        with self._lock:
            idx = self._byname.get(name)
            return self._links.get(idx) if idx is not None else None

    def device(self, lag: str) -> TeamDevice | None:
        link = self._lookup(lag)
        if link is None or link.kind != "team":
            return None
        return TeamDevice(
            ifindex=link.ifindex,
            dev_addr=link.mac,
            admin_up=bool(link.flags & IFF_UP),
            oper_up=bool(link.flags & IFF_LOWER_UP),
            mtu=link.mtu,
        )

    def port_enabled(self, lag: str, port: str) -> bool | None:
        team, p = self._lookup(lag), self._lookup(port)
        if team is None or p is None or p.master != team.ifindex:
            return None
        with self._lock:
            return self._enabled.get((team.ifindex, p.ifindex))

    def queued_carrier(self, lag: str) -> bool | None:
        return self._queued.value(WriteKey(lag))

    def queued_enabled(self, lag: str, port: str) -> bool | None:
        return self._queued.value(WriteKey(lag, port))

    # ---- writes (queued, applied in order by the worker) -----------------------------------
    def _queue(self, what: str, fn: Callable[..., None], *args: Any) -> None:
        self._ops.put((what, fn, args, ()))

    def _queue_values(
        self, values: dict[WriteKey, bool], what: str, fn: Callable[..., None], *args: Any
    ) -> None:
        """Queue a write that sets carrier / `enabled` values, noted until it was applied."""
        tickets = tuple((key, self._queued.queue(key, on)) for key, on in values.items())
        self._ops.put((what, fn, args, tickets))

    def lag_added(self, cfg: LagConfig, *, owner: bool, carrier: bool = False) -> None:
        if owner:
            self._queue_values(
                {WriteKey(cfg.name): carrier},  # down until decided, unless a warm start
                f"{cfg.name}: create/adopt team netdev",
                self._do_lag_added,
                cfg,
                carrier,
            )
        else:
            link = self._lookup(cfg.name)
            log.info(
                "%s: %s (looking only)",
                cfg.name,
                f"team netdev ifindex {link.ifindex}"
                if link and link.kind == "team"
                else "no team netdev in the kernel yet",
            )

    def lag_changed(self, cfg: LagConfig) -> None:
        self._queue(
            f"{cfg.name}: mtu {cfg.mtu}, admin {'up' if cfg.admin_up else 'down'}",
            self._do_lag_settings,
            cfg,
        )

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
            self._queue_values(
                {} if enabled is None else {WriteKey(lag, port): enabled},
                f"{lag}: enslave {port}",
                self._do_member_added,
                lag,
                port,
                admin_up,
                enabled,
            )

    def set_port_enabled(self, lag: str, port: str, enabled: bool) -> None:
        self._queue_values(
            {WriteKey(lag, port): enabled},
            f"{lag}: {port} enabled={enabled}",
            self._do_port_enabled,
            lag,
            port,
            enabled,
        )

    def set_carrier(self, lag: str, up: bool) -> None:
        self._queue_values(
            {WriteKey(lag): up},
            f"{lag}: carrier {'up' if up else 'down'}",
            self._do_carrier,
            lag,
            up,
        )

    def member_removed(self, lag: str, port: str, restore: PortSettings | None = None) -> None:
        self._queue(f"{lag}: release {port}", self._do_member_removed, lag, port, restore)

    def lag_removed(self, lag: str) -> None:
        self._queue(f"{lag}: delete team netdev", self._do_lag_removed, lag)

    def flush(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Wait until every queued write was applied (tests; cold stop)."""
        done = threading.Event()
        self._ops.put(("flush", lambda *_: done.set(), (), ()))
        return done.wait(timeout)

    def close(self) -> None:
        """Apply what is queued (a cold stop's removals), then stop; touches nothing else."""
        self._ops.put(None)
        self._threads[0].join(CLOSE_TIMEOUT_S)
        if self._threads[0].is_alive():
            log.error(
                "team dataplane: %d queued write(s) not applied within %.0f s at close",
                self._ops.qsize(),
                CLOSE_TIMEOUT_S,
            )
        self._stop.set()

    # ---- the worker ------------------------------------------------------------------------
    def _worker(self) -> None:
        ipr: IPRoute | None = None
        nl: TeamNL | None = None
        while True:
            op = self._ops.get()
            if op is None:
                break
            what, fn, args, tickets = op
            try:
                if ipr is None:
                    ipr = IPRoute()
                if nl is None:
                    nl = TeamNL()
                fn(ipr, nl, *args)
            except Exception as e:
                log.error("team dataplane: %s failed: %s; kernel state left as it was", what, e)
                if not isinstance(e, (OSError, LookupError, ValueError)):
                    _close(ipr, nl)
                    ipr, nl = None, None  # reopen: the socket may be out of step
            finally:
                for key, ticket in tickets:
                    self._queued.applied(key, ticket)
        _close(ipr, nl)

    def _need(self, name: str, what: str) -> LinkInfo:
        link = self._lookup(name)
        if link is None:
            raise LookupError(f"netdev {name} does not exist ({what})")
        return link

    def _fresh(self, ipr: IPRoute, name: str) -> LinkInfo | None:
        """Read one link now (the cache may lag our own last write by an event)."""
        try:
            msgs = ipr.link("get", ifname=name)
        except Exception as e:
            if getattr(e, "code", None) == errno.ENODEV:
                return None
            raise
        link = link_info(msgs[0])
        if link is not None:
            self._store_link(link)
        return link

    def _refresh(self, ipr: IPRoute, name: str) -> None:
        """Read a team netdev back after our carrier write, so reads (and a resync's
        comparison) see it before its link event arrives; the change is announced here, since
        that event will then find nothing new."""
        msgs = ipr.link("get", ifname=name)
        link = link_info(msgs[0])
        if link is not None:
            self._notify(self._store_link(link))

    def _do_lag_added(self, ipr: IPRoute, nl: TeamNL, cfg: LagConfig, carrier: bool) -> None:
        link = self._fresh(ipr, cfg.name)
        if link is None:
            ipr.link("add", ifname=cfg.name, kind="team", address=cfg.system)
            link = self._fresh(ipr, cfg.name)
            if link is None:
                raise LookupError(f"created {cfg.name} but cannot read it back")
            log.info("%s: team netdev created (ifindex %d)", cfg.name, link.ifindex)
        elif link.kind != "team":
            raise ValueError(
                f"{cfg.name} exists but is a {link.kind or 'plain'} netdev, not a "
                "team; left untouched"
            )
        else:
            log.info("%s: adopting existing team netdev (ifindex %d)", cfg.name, link.ifindex)
        opts = {o.name: o.value for o in nl.options(link.ifindex) if not o.port}
        has_ports = any(lk.master == link.ifindex for lk in list(self._links.values()))
        if opts.get("mode") != TEAM_MODE:
            if has_ports:
                log.error(
                    "%s: team mode is %r, not %s, and it has ports (the kernel refuses a "
                    "mode change then); mode kept",
                    cfg.name,
                    opts.get("mode"),
                    TEAM_MODE,
                )
            else:
                nl.set_mode(link.ifindex, TEAM_MODE)
        self._set_tx_hash(nl, link)
        # teamd's lacp_carrier_init: down until decided; up on a warm start whose saved
        # carrier was up (libteam patch 0008)
        set_carrier(ipr, link.ifindex, carrier)
        self._apply_settings(ipr, link, cfg)
        self._refresh(ipr, cfg.name)  # the cache shows the carrier written before it is unqueued

    @staticmethod
    def _set_tx_hash(nl: TeamNL, link: LinkInfo) -> None:
        """libteam's tx hash (tx_hash.py), unless the team already has it (adopted from stock
        teamd or an earlier owner: no write). Without one every frame hashes to one member."""
        want = tx_hash.program()
        opts = {o.name: o.value for o in nl.options(link.ifindex) if not o.port}
        if opts.get("bpf_hash_func") == want:
            return
        if "bpf_hash_func" not in opts:
            log.error(
                "%s: team mode is not loadbalance (no bpf_hash_func option): tx hash not set",
                link.name,
            )
            return
        nl.set_option(link.ifindex, "bpf_hash_func", NLA_BINARY, want)
        log.info("%s: tx hash set (eth, ipv4, ipv6, as libteam's lacp runner)", link.name)

    def _do_lag_settings(self, ipr: IPRoute, nl: TeamNL, cfg: LagConfig) -> None:
        link = self._fresh(ipr, cfg.name)
        if link is None or link.kind != "team":
            raise LookupError(f"no team netdev {cfg.name}: mtu/admin change not applied")
        if link.mac != cfg.system:
            # a runtime change of CONFIG_DB system_mac / DEVICE_METADATA mac: the netdev takes
            # it, as teammgrd's setLagSysmac does (a MAC changed under us is followed instead)
            ipr.link("set", index=link.ifindex, address=cfg.system)
            log.info("%s: address %s -> %s", cfg.name, link.mac, cfg.system)
        self._apply_settings(ipr, link, cfg)

    @staticmethod
    def _apply_settings(ipr: IPRoute, link: LinkInfo, cfg: LagConfig) -> None:
        """MTU and admin state from CONFIG_DB, only what differs (teammgrd's `ip link set`)."""
        if cfg.mtu and link.mtu != cfg.mtu:
            ipr.link("set", index=link.ifindex, mtu=cfg.mtu)
            log.info("%s: mtu %d -> %d", cfg.name, link.mtu, cfg.mtu)
        if bool(link.flags & IFF_UP) != cfg.admin_up:
            ipr.link("set", index=link.ifindex, state="up" if cfg.admin_up else "down")
            log.info("%s: admin %s", cfg.name, "up" if cfg.admin_up else "down")

    def _do_member_added(
        self,
        ipr: IPRoute,
        nl: TeamNL,
        lag: str,
        port: str,
        admin_up: bool = True,
        enabled: bool | None = False,
    ) -> None:
        team = self._need(lag, f"cannot enslave {port}")
        p = self._fresh(ipr, port)
        if p is None:
            raise LookupError(f"member netdev {port} does not exist")
        if p.master != team.ifindex:
            if p.master:
                other = self._links.get(p.master)
                raise ValueError(
                    f"{port} is a port of {other.name if other else p.master}, "
                    f"not {lag}; left there"
                )
            # the kernel refuses an up port (EBUSY "Set it down before adding it as a team port")
            ipr.link("set", index=p.ifindex, state="down")
            try:
                ipr.link("set", index=p.ifindex, master=team.ifindex)
            except Exception:
                ipr.link("set", index=p.ifindex, state="up")
                raise
            self._set_team_mac(ipr, lag, team, p)  # while down: not every driver takes it live
            # the port's own CONFIG_DB admin state, as teammgrd's addLagMember restores it
            ipr.link("set", index=p.ifindex, state="up" if admin_up else "down")
            log.info("%s: %s enslaved (admin %s)", lag, port, "up" if admin_up else "down")
        elif p.mac != team.mac:
            self._set_team_mac(ipr, lag, team, p)
        # a new port starts enabled; the LACP runner disables it until selected (teamd does
        # too); a warm start (None) leaves a port that is already ours as it is: its LACP
        # restores it at once
        if enabled is None and p.master == team.ifindex:
            return
        nl.set_port_enabled(team.ifindex, p.ifindex, bool(enabled))
        self._store_enabled(team.ifindex, p.ifindex, bool(enabled))

    def _set_team_mac(self, ipr: IPRoute, lag: str, team: LinkInfo, p: LinkInfo) -> None:
        """The port takes the team's MAC, as teamd's LACP runner does (lacp_port_set_mac).

        Frames for the team (ARP replies, unicast) carry the team MAC; the port's receive path
        classifies them (eth_type_trans) by the PORT's address before the team's rx_handler
        sees them, so with another MAC they are PACKET_OTHERHOST and IP/ARP drop them. The
        kernel gives the port its own MAC back when it is released (team_port_del).
        """
        if p.mac == team.mac:
            return
        try:
            ipr.link("set", index=p.ifindex, address=team.mac)
        except Exception as e:
            log.error(
                "%s: %s keeps MAC %s, not the team's %s (%s): traffic to the team "
                "arriving on it will be dropped",
                lag,
                p.name,
                p.mac,
                team.mac,
                e,
            )

    def _do_port_enabled(
        self, ipr: IPRoute, nl: TeamNL, lag: str, port: str, enabled: bool
    ) -> None:
        team = self._need(lag, f"{port} enabled={enabled} not written")
        p = self._need(port, f"enabled={enabled} not written")
        nl.set_port_enabled(team.ifindex, p.ifindex, enabled)
        self._store_enabled(team.ifindex, p.ifindex, enabled)

    def _do_carrier(self, ipr: IPRoute, nl: TeamNL, lag: str, up: bool) -> None:
        team = self._need(lag, f"carrier {'up' if up else 'down'} not written")
        set_carrier(ipr, team.ifindex, up)
        self._refresh(ipr, lag)  # the cache shows it before it is unqueued (queued.py)

    def _do_member_removed(
        self, ipr: IPRoute, nl: TeamNL, lag: str, port: str, restore: PortSettings | None = None
    ) -> None:
        team, p = self._lookup(lag), self._fresh(ipr, port)
        if team is None or p is None or p.master != team.ifindex:
            return  # not a port of this team (any more): nothing to release
        ipr.link("set", index=p.ifindex, master=0)
        if restore is not None:  # teammgrd's removeLagMember: the port's own settings back
            ipr.link("set", index=p.ifindex, state="up" if restore.admin_up else "down")
            if restore.mtu and p.mtu != restore.mtu:
                ipr.link("set", index=p.ifindex, mtu=restore.mtu)
        log.info("%s: %s released", lag, port)

    def _do_lag_removed(self, ipr: IPRoute, nl: TeamNL, lag: str) -> None:
        team = self._fresh(ipr, lag)
        if team is None or team.kind != "team":
            return
        ipr.link("del", index=team.ifindex)
        log.info("%s: team netdev deleted", lag)

    # ---- caches and watchers ---------------------------------------------------------------
    def _store_link(self, link: LinkInfo) -> str | None:
        """Update the cache; returns the LAG name whose kernel view changed, if any."""
        with self._lock:
            old = self._links.get(link.ifindex)
            if old is not None and old.name != link.name:
                self._byname.pop(old.name, None)
            self._links[link.ifindex] = link
            self._byname[link.name] = link.ifindex
            if link.kind == "team":
                if old is None or (old.flags, old.carrier, old.mtu, old.mac) != (
                    link.flags,
                    link.carrier,
                    link.mtu,
                    link.mac,
                ):
                    return link.name
            elif old is None or old.master != link.master:
                for idx in {link.master, old.master if old else 0} - {0}:
                    master = self._links.get(idx)
                    if master is not None and master.kind == "team":
                        return master.name
        return None

    def _store_enabled(self, team: int, port: int, enabled: bool | None) -> str | None:
        with self._lock:
            old = self._enabled.get((team, port))
            if enabled is None:
                self._enabled.pop((team, port), None)
            else:
                self._enabled[(team, port)] = enabled
            master = self._links.get(team)
        return master.name if master is not None and old != enabled else None

    def _notify(self, lag: str | None) -> None:
        if lag:
            try:
                self._on_change(lag)
            except Exception as e:
                log.debug("on_change(%s): %s", lag, e)

    def _on_links(self, table: dict[str, LinkInfo]) -> None:
        """The link watcher's full table (its thread): at start, and after it reconnected."""
        for link in table.values():
            self._store_link(link)
        self._ready["links"].set()

    def _on_link(self, name: str, link: LinkInfo | None) -> None:
        """One RTM_NEWLINK / RTM_DELLINK from the link watcher (its thread)."""
        if link is not None:
            self._notify(self._store_link(link))
            return
        with self._lock:
            idx = self._byname.get(name)
        if idx is not None:
            self._notify(self._drop_link(idx))

    def _drop_link(self, ifindex: int) -> str | None:
        with self._lock:
            old = self._links.pop(ifindex, None)
            if old is None:
                return None
            self._byname.pop(old.name, None)
            for key in [k for k in self._enabled if ifindex in k]:
                del self._enabled[key]
            if old.kind == "team":
                return old.name
            master = self._links.get(old.master)
            return master.name if master is not None and master.kind == "team" else None

    def _watch_options(self) -> None:
        while not self._stop.is_set():
            try:
                with TeamNL(events=True) as ev, TeamNL() as nl:
                    self._ready["links"].wait(INIT_TIMEOUT_S)
                    with self._lock:
                        teams = [lk.ifindex for lk in self._links.values() if lk.kind == "team"]
                    for team in teams:
                        try:
                            for port, on in nl.port_enabled(team).items():
                                self._store_enabled(team, port, on)
                        except Exception as e:
                            log.warning("team dataplane: OPTIONS_GET ifindex %d: %s", team, e)
                    self._ready["options"].set()
                    while not self._stop.is_set():
                        for options, _ports in ev.events():
                            for o in options:
                                if o.name != "enabled" or not o.port:
                                    continue
                                self._notify(
                                    self._store_enabled(
                                        o.team, o.port, None if o.removed else bool(o.value)
                                    )
                                )
            except Exception:
                log.exception("team dataplane: change_event watcher failed; restarting in 1 s")
                self._ready["options"].set()
                self._stop.wait(1.0)

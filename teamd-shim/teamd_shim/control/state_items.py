"""What the outside world sees of a LAG: teamdctl JSON, STATE_DB fields, APPL_DB fields.

Every teamdctl state item is declared once, in STATE_ITEMS (as libteam's teamd declares its
state values in one table and serves `state dump`, `state item get` and `state item set` from
it), and `state dump`, `state item get/set` and the tlm_teamd-style STATE_DB fields are all
derived from that table, so the three can never disagree. The teamsyncd-style fields (APPL_DB,
and STATE_DB's admin/oper status) come from the netdev, not from teamd's state: plain functions.

Orders are on the wire, so the table keeps them: items are listed in `state dump` order, and an
item's `state_db` and `served` are positions (in its STATE_DB hash, where the field order has
always been tlm_teamd's; in the list the control socket's errors name), not flags.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

from teamd_shim.io.dataplane.base import TeamDevice
from teamd_shim.io.links import LinkInfo
from teamd_shim.lacp import Lag, PortInfo, PortView
from teamd_shim.lacp.pdu import ZERO_INFO
from teamd_shim.lacp.port import COUNTERS, ERROR_COUNTERS
from teamd_shim.model.config import LagConfig

PORTS = "ports"  # `state dump`'s per-port subtree; per-port items live under ports.<port>.
NO_MAC = "00:00:00:00:00:00"


@dataclass(frozen=True)
class LagState:
    """What one LAG's items read, gathered per dump or request.

    The netdev is looked up only if an item reads it: `state item get` has never asked the
    dataplane anything, and must not start to (a kernel backend answers through netlink)."""

    lacp: Lag
    cfg: LagConfig
    device: Callable[[], TeamDevice]
    links: Mapping[str, LinkInfo]
    mode: str = "loadbalance"

    @cached_property
    def dev(self) -> TeamDevice:
        return self.device()


@dataclass(frozen=True)
class PortState:
    """What one member's items read: the LACP core's view of it (taken once) and its netdev."""

    name: str
    view: PortView
    link: LinkInfo | None

    @classmethod
    def of(cls, lag: LagState, name: str) -> PortState:
        return cls(name, lag.lacp.port_view(name), lag.links.get(name))

    @property
    def up(self) -> bool:
        return bool(self.link and self.link.up)


S = TypeVar("S", LagState, PortState)


@dataclass(frozen=True)
class StateItem(Generic[S]):
    """One teamdctl state item: its dotted path (under ports.<port>. for a per-port item), how
    to read it, how to set it from teamdctl's string (None: read-only), `state_db`: the
    position of its field in its STATE_DB hash (named by the path, as tlm_teamd names them;
    None: not in STATE_DB), and `served`: its position among the items `state item get`
    answers (None: `state dump` only, as it has always been here)."""

    path: str
    getter: Callable[[S], Any]
    setter: Callable[[S, str, float], None] | None = None
    state_db: int | None = None
    served: int | None = None
    parts: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.path.split(".")))


def _tree(items: Iterable[StateItem[S]], src: S) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        node = out
        for part in item.parts[:-1]:
            node = node.setdefault(part, {})
        node[item.parts[-1]] = item.getter(src)
    return out


def _ranked(pairs: Iterable[tuple[int | None, str]], what: str) -> tuple[str, ...]:
    """Paths in the order of their ranks, which must be 0..n-1 (a gap or a twin is a typo)."""
    ranked = sorted((r, p) for r, p in pairs if r is not None)
    if [r for r, _ in ranked] != list(range(len(ranked))):
        raise ValueError(f"state items: {what} positions are not 0..{len(ranked) - 1}: {ranked}")
    return tuple(p for _, p in ranked)


def _port_path(path: str) -> tuple[str, str]:
    """`ports.<port>.<item>` -> (port, item); ("", "") for any other path. A port name has no
    dot (the regex before this table said `[^.]+`)."""
    head, dot, rest = path.partition(".")
    port, dot2, sub = rest.partition(".")
    if head != PORTS or not dot or not port or not dot2:
        return "", ""
    return port, sub


class StateItems:
    """The table, and `state dump`, `state item get/set` and the STATE_DB field lists served
    from it: a LAG's items, then each member's."""

    def __init__(
        self, lag: Sequence[StateItem[LagState]], port: Sequence[StateItem[PortState]]
    ) -> None:
        self.lag = tuple(lag)
        self.port = tuple(port)
        prefix = f"{PORTS}.<port>."
        named: list[tuple[str, StateItem[LagState] | StateItem[PortState]]] = [
            *((i.path, i) for i in self.lag),
            *((prefix + i.path, i) for i in self.port),
        ]
        if len({p for p, _ in named}) != len(named):
            raise ValueError("state items: a path is declared twice")
        if any(i.setter is not None and i.served is None for _, i in named):
            raise ValueError("state items: a settable item must be served (set answers a get)")
        by_path = dict(named)
        self.served = _ranked(((i.served, p) for p, i in named), "served")
        self.settable = tuple(p for p in self.served if by_path[p].setter is not None)
        self.lag_fields = _ranked(((i.state_db, i.path) for i in self.lag), "LAG_TABLE")
        self.member_fields = _ranked(((i.state_db, i.path) for i in self.port), "LAG_MEMBER_TABLE")
        self._lag_served = {i.path: i for i in self.lag if i.served is not None}
        self._port_served = {i.path: i for i in self.port if i.served is not None}

    def dump(self, lag: LagState) -> dict[str, Any]:
        out = _tree(self.lag, lag)
        out[PORTS] = {p: self.port_dump(PortState.of(lag, p)) for p in lag.lacp.ports}
        return out

    def port_dump(self, port: PortState) -> dict[str, Any]:
        return _tree(self.port, port)

    def get(self, lag: LagState, path: str) -> Any:
        """`state item get`; KeyError naming the items there are."""
        item = self._lag_served.get(path)
        if item is not None:
            return item.getter(lag)
        port, sub = _port_path(path)
        port_item = self._port_served.get(sub)
        if port_item is not None and port in lag.lacp.ports:
            return port_item.getter(PortState.of(lag, port))
        raise KeyError(f"no state item {path!r} (known: {', '.join(self.served)})")

    def set(self, lag: LagState, path: str, value: str, now: float) -> None:
        """`state item set`; KeyError naming the settable items, ValueError for a bad value."""
        item = self._lag_served.get(path)
        if item is not None and item.setter is not None:
            item.setter(lag, value, now)
            return
        port, sub = _port_path(path)
        port_item = self._port_served.get(sub)
        if port_item is not None and port_item.setter is not None and port in lag.lacp.ports:
            port_item.setter(PortState.of(lag, port), value, now)
            return
        raise KeyError(f"state item {path!r} cannot be set (settable: {', '.join(self.settable)})")


# ---- the items -----------------------------------------------------------------------------


def _set_retry_count(lag: LagState, value: str, now: float) -> None:
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"runner.retry_count must be an integer 3..255, got {value!r}") from None
    lag.lacp.set_retry_count(count, now)  # its own ValueError for a count out of range


def _set_retry_feature(lag: LagState, value: str, now: float) -> None:
    if value.lower() not in ("true", "false"):
        raise ValueError(f"runner.enable_retry_count_feature must be true or false, got {value!r}")
    lag.lacp.set_retry_count_feature(value.lower() == "true", now)


def _const(value: Any) -> Callable[[Any], Any]:
    return lambda _src: value


def _lag(
    path: str,
    getter: Callable[[LagState], Any],
    *,
    state_db: int | None = None,
    served: int | None = None,
    setter: Callable[[LagState, str, float], None] | None = None,
) -> StateItem[LagState]:
    return StateItem(path, getter, setter, state_db, served)


def _port(
    path: str,
    getter: Callable[[PortState], Any],
    *,
    state_db: int | None = None,
    served: int | None = None,
) -> StateItem[PortState]:
    return StateItem(path, getter, None, state_db, served)


def _counter(name: str) -> Callable[[PortState], Any]:
    return lambda p: p.view.counters[name]


def _lacpdu_info(
    side: str, info: Callable[[PortView], PortInfo], first_db: int
) -> list[StateItem[PortState]]:
    """runner.<side>_lacpdu_info.*: a PortInfo's fields (teamdctl's names); port, state and
    system feed STATE_DB, in that order, from position `first_db`."""
    db = {"port": first_db, "state": first_db + 1, "system": first_db + 2}

    def getter(f: str) -> Callable[[PortState], Any]:
        return lambda p: info(p.view).to_dict()[f]

    return [
        _port(f"runner.{side}_lacpdu_info.{f}", getter(f), state_db=db.get(f))
        for f in ZERO_INFO.to_dict()
    ]


# STATE_DB's member fields after tlm_teamd's and our loopback / partner_retry_count: the
# counters that only move when something is wrong (ours too, hld §12)
_FIRST_ERROR_COUNTER_DB = 16

STATE_ITEMS = StateItems(
    lag=[
        _lag("setup.runner_name", _const("lacp")),
        _lag("setup.kernel_team_mode_name", lambda s: s.mode, state_db=0),
        _lag("setup.dbus_enabled", _const(False)),
        _lag("setup.zmq_enabled", _const(False)),
        _lag("setup.debug_level", _const(0)),
        _lag("setup.daemonized", _const(False)),
        _lag("setup.pid", lambda s: os.getpid(), state_db=1),
        _lag("setup.pid_file", _const("")),
        _lag("team_device.ifinfo.ifindex", lambda s: s.dev.ifindex, state_db=6),
        _lag("team_device.ifinfo.ifname", lambda s: s.cfg.name),
        _lag("team_device.ifinfo.dev_addr", lambda s: s.dev.dev_addr, state_db=5),
        _lag("team_device.ifinfo.dev_addr_len", _const(6)),
        _lag("runner.active", _const(True), state_db=2),
        _lag("runner.sys_prio", _const(65535)),
        _lag("runner.fast_rate", lambda s: s.cfg.fast_rate, state_db=4),
        # what lacp/selection.py does: the selected aggregator is kept while it has an eligible
        # port (Linux's ad_select=stable), which is teamd's lacp_prio_stable, not lacp_prio
        _lag("runner.select_policy", _const("lacp_prio_stable")),
        _lag("runner.fallback", lambda s: s.cfg.fallback, state_db=3),
        # SONiC's patched teamd (hld §13.7)
        _lag(
            "runner.enable_retry_count_feature",
            lambda s: s.lacp.retry_count_feature,
            served=1,
            setter=_set_retry_feature,
        ),
        _lag(
            "runner.retry_count",
            lambda s: s.lacp.own_retry_count,
            served=0,
            setter=_set_retry_count,
        ),
    ],
    port=[
        _port("ifinfo.ifindex", lambda p: p.link.ifindex if p.link else 0, state_db=1),
        _port("ifinfo.ifname", lambda p: p.name),
        _port("ifinfo.dev_addr", lambda p: p.link.mac if p.link else NO_MAC, state_db=0),
        _port("ifinfo.dev_addr_len", _const(6)),
        _port("link.up", lambda p: p.up, state_db=2),
        # from the netdev (ethtool, io/links.py), as teamd's ethtool link watch reports them
        _port("link.speed", lambda p: p.link.speed if p.up and p.link else 0),
        _port("link.duplex", lambda p: p.link.duplex if p.up and p.link else "half"),
        _port("link_watches.up", lambda p: p.up),
        _port("link_watches.list.link_watch_0.name", _const("ethtool")),
        _port("link_watches.list.link_watch_0.up", lambda p: p.up, state_db=3),
        _port("link_watches.list.link_watch_0.down_count", _counter("down_count")),
        _port("link_watches.list.link_watch_0.delay_up", _const(0)),
        _port("link_watches.list.link_watch_0.delay_down", _const(0)),
        _port("runner.selected", lambda p: p.view.selected, state_db=12),
        _port("runner.state", lambda p: p.view.state, state_db=13),
        _port("runner.key", lambda p: p.view.actor.key),
        _port("runner.prio", lambda p: p.view.actor.port_priority),
        _port("runner.aggregator.id", lambda p: p.view.aggregator_id, state_db=10),
        _port("runner.aggregator.selected", lambda p: p.view.aggregator_selected, state_db=11),
        *_lacpdu_info("actor", lambda v: v.actor, 4),
        *_lacpdu_info("partner", lambda v: v.partner, 7),
        _port("runner.loopback", lambda p: p.view.loopback, state_db=14),
        _port(
            "runner.partner_retry_count",
            lambda p: p.view.partner_retry_count,
            state_db=15,
            served=2,
        ),
        *(
            _port(
                f"runner.counters.{c}",
                _counter(c),
                state_db=(
                    _FIRST_ERROR_COUNTER_DB + ERROR_COUNTERS.index(c)
                    if c in ERROR_COUNTERS
                    else None
                ),
            )
            for c in COUNTERS
            if c != "down_count"
        ),
    ],
)
# the STATE_DB fields tlm_teamd writes (hld §4), plus ours (hld §12), in their hash's order
MEMBER_PATHS = STATE_ITEMS.member_fields
LAG_PATHS = STATE_ITEMS.lag_fields


def _s(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _get(d: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        d = d[part]
    return d


def port_dump(lag: Lag, port: str, link: LinkInfo | None) -> dict[str, Any]:
    return STATE_ITEMS.port_dump(PortState(port, lag.port_view(port), link))


def state_dump(
    lag: Lag,
    cfg: LagConfig,
    dev: TeamDevice,
    links: Mapping[str, LinkInfo],
    *,
    mode: str = "loadbalance",
) -> dict[str, Any]:
    """The teamdctl `state dump` JSON (same field names as libteam + SONiC's fallback field)."""
    return STATE_ITEMS.dump(LagState(lag, cfg, lambda: dev, links, mode))


def state_db_lag(dump: dict[str, Any], dev: TeamDevice) -> dict[str, str]:
    """STATE_DB LAG_TABLE|<lag>: tlm_teamd's dotted fields plus teamsyncd's."""
    out = {p: _s(_get(dump, p)) for p in LAG_PATHS}
    out.update(
        admin_status="up" if dev.admin_up else "down",
        oper_status="up" if dev.oper_up else "down",
        mtu=str(dev.mtu),
        state="ok",
    )
    return out


def state_db_member(port_dump_: dict[str, Any]) -> dict[str, str]:
    """STATE_DB LAG_MEMBER_TABLE|<lag>|<port>: tlm_teamd's dotted fields."""
    return {p: _s(_get(port_dump_, p)) for p in MEMBER_PATHS}


def appl_db_lag(dev: TeamDevice) -> dict[str, str]:
    """APPL_DB LAG_TABLE:<lag> as teamsyncd writes it."""
    return {
        "admin_status": "up" if dev.admin_up else "down",
        "oper_status": "up" if dev.oper_up else "down",
        "mtu": str(dev.mtu),
    }


def appl_db_member(enabled: bool) -> dict[str, str]:
    """APPL_DB LAG_MEMBER_TABLE:<lag>:<port> as teamsyncd writes it."""
    return {"status": "enabled" if enabled else "disabled"}

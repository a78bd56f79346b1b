"""What the outside world sees of a LAG: teamdctl JSON, STATE_DB fields, APPL_DB fields.

One source (the LACP core's views plus netdev facts) feeds all three, so `teamd-shim ctl ... state
dump`, tlm_teamd-style STATE_DB fields and teamsyncd-style APPL_DB fields can never disagree.
"""

from __future__ import annotations

import os
from typing import Any

from teamd_shim.io.dataplane.base import TeamDevice
from teamd_shim.io.links import LinkInfo
from teamd_shim.lacp import Lag
from teamd_shim.lacp.port import COUNTERS, ERROR_COUNTERS
from teamd_shim.model.config import LagConfig

# the STATE_DB member fields tlm_teamd writes (hld §13.5)
MEMBER_PATHS = (
    "ifinfo.dev_addr",
    "ifinfo.ifindex",
    "link.up",
    "link_watches.list.link_watch_0.up",
    "runner.actor_lacpdu_info.port",
    "runner.actor_lacpdu_info.state",
    "runner.actor_lacpdu_info.system",
    "runner.partner_lacpdu_info.port",
    "runner.partner_lacpdu_info.state",
    "runner.partner_lacpdu_info.system",
    "runner.aggregator.id",
    "runner.aggregator.selected",
    "runner.selected",
    "runner.state",
    # ours, not tlm_teamd's (hld §12): what a user needs to see a broken link or a loop
    "runner.loopback",
    "runner.partner_retry_count",
    *(f"runner.counters.{c}" for c in ERROR_COUNTERS),
)
LAG_PATHS = (
    "setup.kernel_team_mode_name",
    "setup.pid",
    "runner.active",
    "runner.fallback",
    "runner.fast_rate",
    "team_device.ifinfo.dev_addr",
    "team_device.ifinfo.ifindex",
)


def _s(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _get(d: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        d = d[part]
    return d


def port_dump(lag: Lag, port: str, link: LinkInfo | None) -> dict[str, Any]:
    view = lag.port_view(port)
    up = bool(link and link.up)
    return {
        "ifinfo": {
            "ifindex": link.ifindex if link else 0,
            "ifname": port,
            "dev_addr": link.mac if link else "00:00:00:00:00:00",
            "dev_addr_len": 6,
        },
        "link": {"up": up, "speed": 10000 if up else 0, "duplex": "full" if up else "half"},
        "link_watches": {
            "up": up,
            "list": {
                "link_watch_0": {
                    "name": "ethtool", "up": up, "down_count": view.get("down_count", 0),
                    "delay_up": 0, "delay_down": 0,
                }
            },
        },
        "runner": {
            "selected": view["selected"],
            "state": view["state"],
            "key": view["actor"]["key"],
            "prio": view["actor"]["port_priority"],
            "aggregator": {"id": view["aggregator_id"], "selected": view["aggregator_selected"]},
            "actor_lacpdu_info": view["actor"],
            "partner_lacpdu_info": view["partner"],
            "loopback": view["loopback"],
            "partner_retry_count": view["partner_retry_count"],
            "counters": {c: view[c] for c in COUNTERS if c != "down_count"},
        },
    }


def state_dump(lag: Lag, cfg: LagConfig, dev: TeamDevice, links: dict[str, LinkInfo],
               *, mode: str = "loadbalance") -> dict[str, Any]:
    """The teamdctl `state dump` JSON (same field names as libteam + SONiC's fallback field)."""
    return {
        "setup": {
            "runner_name": "lacp",
            "kernel_team_mode_name": mode,
            "dbus_enabled": False,
            "zmq_enabled": False,
            "debug_level": 0,
            "daemonized": False,
            "pid": os.getpid(),
            "pid_file": "",
        },
        "team_device": {
            "ifinfo": {"ifindex": dev.ifindex, "ifname": cfg.name, "dev_addr": dev.dev_addr,
                       "dev_addr_len": 6}
        },
        "runner": {
            "active": True,
            "sys_prio": 65535,
            "fast_rate": cfg.fast_rate,
            "select_policy": "lacp_prio",
            "fallback": False,
            # SONiC's patched teamd (hld §13.7)
            "enable_retry_count_feature": lag.retry_count_feature,
            "retry_count": lag.own_retry_count,
        },
        "ports": {p: port_dump(lag, p, links.get(p)) for p in lag.ports},
    }


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

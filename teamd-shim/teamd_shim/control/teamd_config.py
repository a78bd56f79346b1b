"""`teamdctl LAG config dump`: the teamd JSON config of a LAG, as teammgrd would have built it.

There is no teamd to hand a config to: the shim reads CONFIG_DB itself (hld §4). But operators
and scripts read a LAG's config through teamdctl, so the shim shows the config teamd would hold
for the accepted `LagConfig` (hld §13.5): teammgrd's `{"device", "hwaddr", "runner": {"active",
"name", "min_ports"?, "fast_rate"?}}` with the optional fields only where they differ from
teamd's default (teammgrd writes them only when configured, which the accepted config no longer
tells apart from the default), one `{"lacp_key", "link_watch"}` per accepted member as its
`port config update` gives, and the `tx_hash` teamd fills in when absent. Pure.
"""

from __future__ import annotations

from typing import Any

from teamd_shim.model.config import LagConfig

TX_HASH_DEFAULT = ("eth", "ipv4", "ipv6")  # libteam fills this in when the config has none


def teamd_config(cfg: LagConfig) -> dict[str, Any]:
    runner: dict[str, Any] = {"active": True, "name": "lacp"}
    if cfg.min_links != 1:
        runner["min_ports"] = cfg.min_links
    if cfg.fallback:
        runner["fallback"] = True
    if cfg.fast_rate:
        runner["fast_rate"] = True
    runner["tx_hash"] = list(TX_HASH_DEFAULT)
    return {
        "device": cfg.name,
        "hwaddr": cfg.system,
        "runner": runner,
        "ports": {p: {"lacp_key": cfg.key, "link_watch": {"name": "ethtool"}} for p in cfg.members},
    }

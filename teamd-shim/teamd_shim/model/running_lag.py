"""A LAG as the shim process drives it: accepted config, LACP core, applied dataplane view.

Its own module so that the daemon and the role layer can both name it without importing each
other.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from teamd_shim.lacp import Lag
from teamd_shim.model.config import LagConfig


@dataclass
class RunningLag:
    """A LAG this process drives: its accepted config, LACP core, and applied dataplane view."""

    cfg: LagConfig
    lacp: Lag
    timer: asyncio.TimerHandle | None = None
    carrier: bool = False
    enabled: dict[str, bool] = field(default_factory=dict)
    error: str | None = None  # a refused config change (TEAMD_CONFIG_ERROR_TABLE); old config kept

"""Dataplane backends: who the LACP decisions are written to.

`appdb` alone means no kernel LAG (e.g. a host kernel without the team driver): APPL_DB /
STATE_DB are the dataplane, as teamsyncd would have written them. `team` (team.py, the Linux team
driver) is used when the kernel has it; the shim's APPL_DB / STATE_DB output then follows the
kernel's netdev (teamsyncd / tlm_teamd semantics), because `Shim.device()` reads it from the
backend. `recording` wraps any backend and journals every write with the writer's pid and
ownership epoch, so tests can prove two owners never wrote at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from teamd_shim.io.dataplane.base import Dataplane, NullDataplane
from teamd_shim.io.dataplane.recording import RecordingDataplane
from teamd_shim.io.links import LinkWatcher

log = logging.getLogger(__name__)

CHOICES = ("auto", "team", "appdb")
NO_TEAM_MSG = "no kernel team driver: running without a kernel LAG (APPL_DB/STATE_DB only)"


class DataplaneError(RuntimeError):
    """The asked-for dataplane cannot run here; nothing was started."""


def make_dataplane(
    kind: str,
    links: LinkWatcher,
    on_change: Callable[[str], None] | None = None,
    *,
    on_sonic: bool = False,
) -> Dataplane:
    """`auto`: team when the kernel has the driver, else appdb (said once, at start).

    On a SONiC box (`on_sonic`: its database_config.json exists) `auto` never falls back:
    orchagent would build ASIC LAGs that have no kernel netdev, and nothing would say why. It
    refuses with the probe's error instead; `--dataplane appdb` is the explicit way (hld §10).

    pyroute2 is imported only here, so `appdb` never pays for it. Must run outside a running
    asyncio loop (pyroute2's sync sockets run their own).
    """
    if kind == "appdb":
        return NullDataplane()
    from teamd_shim.io.dataplane.team import TeamDataplane, kernel_team_probe

    problem = kernel_team_probe()
    if problem is not None:
        if kind == "team":
            raise DataplaneError(
                "--dataplane team: the kernel has no team driver (the generic "
                f"netlink family `team` is missing: {problem}; `modprobe team`?)"
            )
        if on_sonic:
            raise DataplaneError(
                "--dataplane auto on a SONiC box (its database_config.json exists) and the "
                f"team driver cannot be reached ({problem}): refusing to run without the "
                "kernel LAGs SONiC expects; `modprobe team`, or pass --dataplane appdb to run "
                "without them on purpose"
            )
        log.warning(NO_TEAM_MSG)
        return NullDataplane()
    return TeamDataplane(links, on_change)


__all__ = [
    "CHOICES",
    "Dataplane",
    "DataplaneError",
    "NullDataplane",
    "RecordingDataplane",
    "make_dataplane",
]

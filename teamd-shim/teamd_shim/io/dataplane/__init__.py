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


def make_dataplane(
    kind: str, links: LinkWatcher, on_change: Callable[[str], None] | None = None
) -> Dataplane:
    """`auto`: team when the kernel has the driver, else appdb (said once, at start).

    pyroute2 is imported only here, so `appdb` never pays for it. Must run outside a running
    asyncio loop (pyroute2's sync sockets run their own).
    """
    if kind == "appdb":
        return NullDataplane()
    from teamd_shim.io.dataplane.team import TeamDataplane, kernel_has_team

    if not kernel_has_team():
        if kind == "team":
            raise RuntimeError(
                "--dataplane team: the kernel has no team driver (the generic "
                "netlink family `team` is missing; `modprobe team`?)"
            )
        log.warning(NO_TEAM_MSG)
        return NullDataplane()
    return TeamDataplane(links, on_change)


__all__ = ["CHOICES", "Dataplane", "NullDataplane", "RecordingDataplane", "make_dataplane"]

"""The shim's side of teamd's `-w -L <dir>` (hld §6.2): what a stop leaves in the warm-boot
directory and what a warm start reads from it. The formats are io/warmboot.py's; the LACP side
of a warm start is lacp/warm_start.py.

- SIGUSR1 (a warm stop: warm reboot, `sonic-installer upgrade-docker --warm`, teamd.sh's warm
  stop): every LAG's carrier, members' `enabled` and partners' last PDUs, as teamd's
  `port_flush_data`;
- SIGUSR2 (fast reboot): each LAG's carrier and no member, as teamd writes then (a fast reboot
  starts cold);
- a cold stop (SIGTERM): the LAGs are removed, and so are their files;
- a start as the active that checkWarmStart calls warm: each LAG of the first config is
  started from its file, which is consumed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from teamd_shim.io import warmboot
from teamd_shim.model.running_lag import RunningLag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dump:
    """One LAG's state as a stop saves it, taken on the loop and written off it."""

    lag: str
    carrier: bool
    members: dict[str, bool]
    pdus: dict[str, bytes]


class WarmBoot:
    def __init__(self, directory: str | None) -> None:
        self.directory = directory  # None: no -L, nothing saved or read

    def collect(self, lags: Mapping[str, RunningLag], *, members: bool) -> list[Dump]:
        out = []
        for name, running in lags.items():
            carrier, enabled, pdus = running.lacp.warm_saved()
            out.append(Dump(name, carrier, enabled if members else {}, pdus if members else {}))
        return out

    def write(self, dumps: list[Dump]) -> None:
        """Blocking (a thread): a warm stop must not wait for a disk on the loop."""
        if self.directory is None:
            return
        for d in dumps:
            try:
                warmboot.save(self.directory, d.lag, d.carrier, d.members, d.pdus)
            except OSError as e:
                log.error(
                    "%s: warm-boot state not saved in %s (%s): a warm start after this stop "
                    "will renegotiate the LAG from nothing",
                    d.lag,
                    self.directory,
                    e,
                )
                continue
            log.info(
                "%s: warm-boot state saved in %s (carrier %s, %d member(s), %d partner PDU(s))",
                d.lag,
                self.directory,
                "up" if d.carrier else "down",
                len(d.members),
                len(d.pdus),
            )

    @staticmethod
    def names(lags: Mapping[str, RunningLag]) -> list[tuple[str, list[str]]]:
        """(LAG, members) of every LAG, taken on the loop for `remove`."""
        return [(name, list(running.lacp.ports)) for name, running in lags.items()]

    def remove(self, names: list[tuple[str, list[str]]]) -> None:
        """A cold stop, or owner again after a yield (a takeover, a resume): what a SIGUSR1
        saved no longer describes the LAGs, and a later warm start must not restore it."""
        if self.directory is None:
            return
        for lag, members in names:
            warmboot.remove(self.directory, lag, members)

    def reader(self) -> Callable[[str], warmboot.SavedLag | None] | None:
        directory = self.directory
        if directory is None:
            return None
        return lambda lag: warmboot.take(directory, lag)

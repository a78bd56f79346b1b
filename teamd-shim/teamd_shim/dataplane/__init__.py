"""Dataplane backends: who the LACP decisions are written to.

`appdb` alone means no kernel LAG (this host's kernel has no team driver): APPL_DB / STATE_DB are
the dataplane, as teamsyncd would have written them. `team` (the Linux team driver) comes with the
kernel-LAG work. `recording` wraps any backend and journals every write with the writer's pid and
ownership epoch, so tests can prove two owners never wrote at the same time.
"""

from .base import Dataplane, NullDataplane
from .recording import RecordingDataplane

__all__ = ["Dataplane", "NullDataplane", "RecordingDataplane"]

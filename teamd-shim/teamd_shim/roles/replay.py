"""A standby's restore: adopt a snapshot, catch up with links, replay the frames after the cut.

Pure (no I/O; `now` is an argument), so the cut is tested with real LACP cores and crafted
frames (hld §7, "The replay cut"). The cut is per port and exact: a snapshot says, for each
port, the kernel receive stamp of the last frame the owner had applied (`rx_cut`); the kernel
stamps an skb once for every packet socket on the port, so the standby replays exactly its
frames stamped later: none lost, none applied twice, whoever read them first. Only a port the
snapshot has no stamp for (nothing received yet) falls back to the snapshot's time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from teamd_shim.io.links import LinkInfo
from teamd_shim.lacp import Lag
from teamd_shim.model.contract import SnapshotMeta
from teamd_shim.model.running_lag import RunningLag

# received frames kept by a standby, replayed after a snapshot: a shadow entry can be one refresh
# round old (shadow.REFRESH_ROUNDS x SHADOW_EVERY_S = 2 s) when the active dies, and a hang is
# called 0.35 s later; every frame since the entry's cut must still be here (hld §14.7)
RX_KEEP_S = 5.0


@dataclass(frozen=True, slots=True)
class Received:
    port: str
    frame: bytes
    at: float  # monotonic, when this process read it
    stamp: int  # the kernel's receive stamp, ns (0: none)


class RxLog:
    """The frames a standby received in the last RX_KEEP_S."""

    def __init__(self) -> None:
        self._log: deque[Received] = deque()

    def add(self, port: str, frame: bytes, now: float, stamp: int) -> None:
        self._log.append(Received(port, frame, now, stamp))
        while self._log and self._log[0].at < now - RX_KEEP_S:
            self._log.popleft()

    def __iter__(self) -> Iterator[Received]:
        return iter(self._log)  # read on the loop, which alone adds to it

    def after_cut(
        self, cut: Mapping[str, int], t: float, port_t: Mapping[str, float] | None = None
    ) -> Iterator[Received]:
        """The frames the snapshot has not applied, in arrival order. `port_t`: per port, when
        its LAG's entry was taken, where entries are of different ages (a shadow, hld §14.7)."""
        for r in self:
            c = cut.get(r.port)
            if c and r.stamp:
                if r.stamp > c:
                    yield r
            elif r.at > (port_t.get(r.port, t) if port_t else t):
                yield r


def restore(
    lags: Mapping[str, RunningLag],
    meta: SnapshotMeta,
    snap: Mapping[str, dict[str, Any]],
    rx: RxLog,
    links: Mapping[str, LinkInfo],
    port_lag: Mapping[str, str],
    now: float,
) -> list[str]:
    """Adopt the snapshot into `lags`, then apply link changes since it was taken, then the
    frames received after its cut; returns what could not be adopted, for the READY detail.

    Links first: a partner PDU on a port that came up after the snapshot is only heard by a
    core that knows the link is up (before, replayed first, such a PDU was dropped and the new
    owner waited a partner period to hear it again)."""
    problems = []
    for name, running in lags.items():
        d = snap.get(name)
        if d is None:
            problems.append(f"{name}: not in the active's state")
            continue
        try:
            lag = Lag.from_dict(d)
        except ValueError as e:
            problems.append(f"{name}: unreadable state ({e})")
            continue
        if lag.settings != running.lacp.settings or set(lag.ports) != set(running.lacp.ports):
            problems.append(f"{name}: config differs from the active's")
            continue
        running.lacp = lag
        running.carrier = lag.carrier
        running.enabled = {p: lag.port_enabled(p) for p in lag.ports}
    for name, running in lags.items():
        snap_ports = snap.get(name, {}).get("ports", {})
        for port in running.lacp.ports:
            link = links.get(port)
            was_up = snap_ports.get(port, {}).get("link_up")
            if link is not None and was_up is not None and bool(was_up) != link.up:
                running.lacp.set_link(port, link.up, now)  # changed after the snapshot
    port_t = {p: meta.lag_t[lag] for p, lag in port_lag.items() if lag in meta.lag_t}
    for r in rx.after_cut(meta.rx_cut, meta.t, port_t):
        target = lags.get(port_lag.get(r.port, ""))
        if target is not None and r.port in target.lacp.ports:
            target.lacp.receive(r.port, r.frame, r.at)
    return problems

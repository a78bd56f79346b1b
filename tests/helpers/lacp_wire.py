"""The LACP wire simulator: LACP cores back to back on a zero-delay wire, a fake clock.

Shared by the unit tests of the LACP core and of the role layer (readiness, replay, liveness),
which drive real cores through it instead of mocks.
"""

from __future__ import annotations

from typing import Any

from teamd_shim.lacp import (
    ACTIVITY,
    AGGREGATION,
    COLLECTING,
    DISTRIBUTING,
    SYNC,
    TIMEOUT,
    Lag,
    LagSettings,
    decode_frame,
)
from teamd_shim.model.config import LagConfig

SYS_A = bytes.fromhex("0200000000aa")
SYS_B = bytes.fromhex("0200000000bb")
SYS_C = bytes.fromhex("0200000000cc")
PORTS = {"e0": 1, "e1": 2}
STEADY_FAST = ACTIVITY | TIMEOUT | AGGREGATION | SYNC | COLLECTING | DISTRIBUTING  # 0x3F


def make_lag(system: bytes, key: int, *, now: float = 0.0, link_up: bool = True, **kw: Any) -> Lag:
    lag = Lag(LagSettings("PortChannel1", system, key, **kw))
    for name, num in PORTS.items():
        mac = system[:4] + bytes([0x10, num])
        lag.add_port(name, port_number=num, mac=mac, link_up=link_up, now=now)
    return lag


class Wire:
    """Two Lags joined port-to-port by a zero-delay wire; records every frame sent."""

    def __init__(self, a: Lag, b: Lag, now: float = 0.0) -> None:
        self.a, self.b = a, b
        self.now = now
        self.cut: set[str] = set()  # "a" or "b": that side's transmissions are lost
        self.log: list[tuple[float, str, str, bytes]] = []

    def step(self) -> None:
        for _ in range(10):
            moved = False
            for side, x, y in (("a", self.a, self.b), ("b", self.b, self.a)):
                x.on_timer(self.now)
                for port, frame in x.frames_to_send(self.now):
                    moved = True
                    self.log.append((self.now, side, port, frame))
                    if side not in self.cut:
                        y.receive(port, frame, self.now)
            if not moved:
                return

    def run_until(self, end: float) -> None:
        self.step()
        while True:
            ds = [d for d in (self.a.next_deadline(), self.b.next_deadline()) if d is not None]
            if not ds or min(ds) > end:
                break
            self.now = max(self.now, min(ds))
            self.step()
        self.now = end
        self.step()

    def tx_times(self, side: str, port: str, since: float = 0.0) -> list[float]:
        return [t for t, s, p, _ in self.log if s == side and p == port and t >= since]


def negotiated_pair(**kw_b: Any) -> Wire:
    wire = Wire(make_lag(SYS_A, 1), make_lag(SYS_B, 2, **kw_b))
    wire.run_until(5.0)
    return wire


def state_of(frame: bytes) -> int:
    return decode_frame(frame)[1].actor.state


# frame builders

CFG = LagConfig(
    name="PortChannel1",
    admin_up=True,
    mtu=9100,
    min_links=1,
    fast_rate=True,
    key=1,
    system="02:00:00:00:00:aa",
    members=tuple(PORTS),
)


def partner_frame(b: Lag, port: str, now: float) -> bytes:
    """The PDU the partner `b` would send on `port` at `now`, fresh (its NTT honoured)."""
    b.on_timer(now)
    b.refresh(now)
    return b.would_send(port)

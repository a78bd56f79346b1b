"""Polling helpers shared by the lab-based integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from teamd_lab.record_analysis import load_caught_up, max_silence

if TYPE_CHECKING:
    from teamd_lab.lab import Lab

T = TypeVar("T")


def wait_for(pred: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll until `pred()` is truthy; fail the test naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        try:
            last = pred()
        except Exception as e:  # transient while things settle (redis restarting, ...)
            last = e  # type: ignore[assignment]
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def all_negotiated(bond_show: dict[str, dict]) -> bool:
    return bool(bond_show) and all(
        b.get("lacp_status") == "negotiated" and b["members"] and all(b["members"].values())
        for b in bond_show.values()
    )


def counters(lab: Lab) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (b, m): (s["link_expired"], s["link_defaulted"])
        for b, ms in lab.ovs.lacp_stats().items()
        for m, s in ms.items()
    }


def max_gaps(lab: Lab, start: float, end: float) -> dict[str, float]:
    """Longest silence per port: the window reaches back 2 s so a gap that spans the window's
    start (the old owner's last PDU before it) is counted, and the time from a port's last PDU
    to `end` counts too (a sender that stopped for good leaves no next PDU to measure to)."""
    frames = load_caught_up(Path(lab.state["recorder"]["out"]), end)
    return max_silence(frames, start - 2.0, end, subtype=1)


def lab_processes(workdir: Path, exes: tuple[bytes, ...] = (b"teamd-shim",)) -> list[int]:
    """Pids of our processes started for this lab (their command line names its private work
    dir): what a failed scenario may leave that Redis does not know."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(exes) for a in argv[:2]) and any(
            str(workdir).encode() in a for a in argv
        ):
            out.append(int(d.name))
    return out

"""Pure analysis of recorder files: per-port inter-arrival of the DUT's PDUs.

The handover claim is "no port goes longer than X without a PDU" (OVS in fast mode expires a
member after 3 s of silence). These functions are kept free of processes and sockets so they
can be tested on synthetic data and reused by benchmarks.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Frame:
    """One received frame: CLOCK_MONOTONIC arrival time, partner interface, raw bytes."""

    t: float
    iface: str
    data: bytes

    @property
    def subtype(self) -> int | None:
        """Slow Protocols subtype (1 = LACP, 2 = Marker), None if the frame is too short."""
        return self.data[14] if len(self.data) > 14 else None


@dataclass(frozen=True)
class GapStats:
    count: int  # frames seen on the port
    max_gap: float | None  # None with fewer than two frames
    median_gap: float | None


def parse_records(lines: Iterable[str]) -> list[Frame]:
    """Frames from recorder JSON lines; event lines and a torn last line are skipped."""
    frames = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "hex" not in obj:
            continue
        frames.append(Frame(float(obj["t"]), str(obj["iface"]), bytes.fromhex(obj["hex"])))
    return frames


def load_records(path: Path) -> list[Frame]:
    with open(path, encoding="utf-8") as f:
        return parse_records(f)


def load_events(path: Path) -> list[dict]:
    """The recorder's own start/stop/error lines (diagnostics)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "event" in obj:
                out.append(obj)
    return out


def window(
    frames: Iterable[Frame], start: float | None = None, end: float | None = None
) -> list[Frame]:
    """Frames with start <= t <= end (either bound optional)."""
    return [f for f in frames if (start is None or f.t >= start) and (end is None or f.t <= end)]


def arrivals(frames: Iterable[Frame], subtype: int | None = None) -> dict[str, list[float]]:
    """Sorted arrival times per interface, optionally only one Slow Protocols subtype."""
    out: dict[str, list[float]] = {}
    for f in frames:
        if subtype is not None and f.subtype != subtype:
            continue
        out.setdefault(f.iface, []).append(f.t)
    for ts in out.values():
        ts.sort()
    return out


def inter_arrivals(frames: Iterable[Frame], subtype: int | None = None) -> dict[str, list[float]]:
    """Per interface, the differences between consecutive arrivals."""
    return {
        i: [b - a for a, b in zip(ts, ts[1:], strict=False)]
        for i, ts in arrivals(frames, subtype).items()
    }


def gap_stats(frames: Iterable[Frame], subtype: int | None = None) -> dict[str, GapStats]:
    """Per interface: frame count, largest and median inter-arrival."""
    out = {}
    for iface, ts in arrivals(frames, subtype).items():
        gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
        out[iface] = GapStats(
            count=len(ts),
            max_gap=max(gaps) if gaps else None,
            median_gap=statistics.median(gaps) if gaps else None,
        )
    return out


def max_gap(frames: Iterable[Frame], subtype: int | None = None) -> dict[str, float | None]:
    return {i: s.max_gap for i, s in gap_stats(frames, subtype).items()}


def gaps_larger_than(
    frames: Iterable[Frame], threshold: float, subtype: int | None = None
) -> dict[str, list[tuple[float, float]]]:
    """Per interface, every gap > threshold as (time of the frame before it, gap length).

    Interfaces without such a gap map to an empty list, so `not any(result.values())` is
    the pass condition.
    """
    out: dict[str, list[tuple[float, float]]] = {}
    for iface, ts in arrivals(frames, subtype).items():
        out[iface] = [(a, b - a) for a, b in zip(ts, ts[1:], strict=False) if b - a > threshold]
    return out


def max_silence(
    frames: Iterable[Frame],
    start: float,
    end: float,
    subtype: int | None = 1,
    ifaces: Iterable[str] | None = None,
) -> dict[str, float]:
    """Per interface, the longest time in [start, end] without a frame: between two arrivals,
    and from the last arrival to `end` (a sender that went quiet and never came back has no
    "next" frame, so inter-arrivals alone would miss it); a port with no frame at all gets the
    whole window."""
    per = {i: [t for t in ts if start <= t <= end] for i, ts in arrivals(frames, subtype).items()}
    for i in ifaces or []:
        per.setdefault(i, [])
    out = {}
    for iface, ts in per.items():
        if not ts:
            out[iface] = end - start
            continue
        gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
        out[iface] = max([*gaps, end - ts[-1]])
    return out


def load_caught_up(path: Path, end: float, limit: float = 2.5) -> list[Frame]:
    """The frames of `path` once the recorder has written one received after `end` (or after
    `limit` s). A busy recorder writes a frame a little after the kernel stamped it; judging the
    silence up to `end` before it caught up would count its lag as silence. If nothing is
    received after `end` (every sender stopped), the wait ends at `limit` and the silence counts.
    """
    deadline = time.monotonic() + limit
    while True:
        frames = load_records(path)
        if any(f.t > end for f in frames) or time.monotonic() > deadline:
            return frames
        time.sleep(0.05)

"""Polling helpers shared by the lab-based integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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

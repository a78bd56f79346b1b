"""One loop timer per deadline owner (a LAG's LACP core, the role machine), re-armed in place.

Both sans-IO machines report their next absolute deadline (CLOCK_MONOTONIC, the loop's clock);
after every event the driver re-arms one `call_at` for it. Keeping a handle that is already set
for the same instant matters on the per-PDU path: most PDUs do not move the deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def rearm(
    loop: asyncio.AbstractEventLoop | None,
    handle: asyncio.TimerHandle | None,
    deadline: float | None,
    callback: Callable[..., Any],
    *args: Any,
) -> asyncio.TimerHandle | None:
    """The timer to keep for `deadline`: `handle` itself if already set for it, else a new one
    (the old cancelled); None when there is no deadline or no loop yet."""
    if handle is not None:
        if deadline is not None and handle.when() == deadline:
            return handle
        handle.cancel()
    if deadline is None or loop is None:
        return None
    return loop.call_at(deadline, callback, *args)

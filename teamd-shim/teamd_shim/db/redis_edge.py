"""The shim's one retry layer for Redis: background threads that must outlive any outage.

redis-py's own retries are off on every client (see ownership.client and the stub), so this is
the only place a Redis call is retried; LACP itself never waits on it.
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_never,
    wait_exponential_jitter,
)

TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def forever(on_lost: Callable[[RetryCallState], None]) -> Retrying:
    """Retry transient Redis errors forever, backing off to 1 s; `on_lost` runs before sleeps."""
    return Retrying(
        retry=retry_if_exception_type(TRANSIENT),
        wait=wait_exponential_jitter(multiplier=0.05, max=1.0, jitter=0.05),
        stop=stop_never,
        before_sleep=on_lost,
        reraise=True,
    )

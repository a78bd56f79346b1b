"""`timers.rearm` on a real event loop: kept, replaced, or gone, never two armed at once."""

from __future__ import annotations

import asyncio

from teamd_shim.io.timers import rearm


def test_rearm_keeps_replaces_or_drops_the_one_timer() -> None:
    async def go() -> list[str]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        t0 = loop.time()
        h = rearm(loop, None, t0 + 0.05, fired.append, "a")
        assert h is not None
        assert rearm(loop, h, t0 + 0.05, fired.append, "b") is h  # same instant: kept
        h2 = rearm(loop, h, t0 + 0.02, fired.append, "c")  # moved: the old one cancelled
        assert h2 is not h and h.cancelled()
        assert rearm(None, None, t0, fired.append, "d") is None  # no loop yet
        h3 = rearm(loop, None, t0 + 0.03, fired.append, "e")
        assert rearm(loop, h3, None, fired.append, "f") is None and h3 is not None
        assert h3.cancelled()  # no deadline: nothing armed
        await asyncio.sleep(0.1)
        return fired

    assert asyncio.run(go()) == ["c"]

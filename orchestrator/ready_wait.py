"""How long the `ready` stage waits for a new standby: while it makes progress (hld §7.2).

A fixed limit fails on a slow control CPU: under the kernel tier's software emulation a standby
took 11-24 s from its start to answering (its interpreter and imports), and a 20 s limit rolled
back 4 of 5 runs in one measurement, while a fast box would wait 20 s for a standby that hung at
once. So the limit is on the absence of progress, judged by what the standby shows:
- until its control socket answers, the CPU time its process spends (it is importing and
  starting): a process that is alive but spends nothing for `stall_s` is stuck;
- once it answers, what it says about READY (`ready_detail`, the LAGs it has loaded): it must
  change at least every `stall_s` (a standby idling on a snapshot that never comes spends a
  little CPU for ever, so CPU no longer counts);
- and never longer than `cap_s` in all.
Pure: the stage feeds it observations with the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CPU_STEP_S = 0.05  # CPU seconds that count as progress between two looks
CAP_FACTOR = 6.0  # the whole wait is at most this many stall limits


@dataclass
class ReadyWait:
    started: float
    stall_s: float
    cap_s: float = 0.0  # 0: CAP_FACTOR x stall_s
    last_progress: float = field(init=False)
    answered: bool = field(init=False, default=False)
    _cpu: float | None = field(init=False, default=None)
    _said: tuple[str, int] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.last_progress = self.started
        if not self.cap_s:
            self.cap_s = CAP_FACTOR * self.stall_s

    def starting(self, now: float, cpu_s: float | None) -> None:
        """No answer yet; `cpu_s` is the process's CPU time (None: not measurable here)."""
        if cpu_s is None or self.answered:
            return
        if self._cpu is None or cpu_s >= self._cpu + CPU_STEP_S:
            if self._cpu is not None:
                self.last_progress = now
            self._cpu = cpu_s

    def answer(self, now: float, ready_detail: str, lags: int) -> None:
        # numbers are not progress: "active's state is 3.2 s old" growing means stuck
        said = (re.sub(r"\d+(\.\d+)?", "#", ready_detail), lags)
        if not self.answered or said != self._said:
            self.last_progress = now
        self.answered = True
        self._said = said

    def expired(self, now: float) -> str | None:
        """Why to give up now, or None to wait on."""
        if now - self.started > self.cap_s:
            return f"not READY within {self.cap_s:.0f} s in all"
        if now - self.last_progress > self.stall_s:
            what = "what it says about READY" if self.answered else "its CPU time (starting up)"
            return f"no progress for {self.stall_s:.0f} s ({what} did not change)"
        return None

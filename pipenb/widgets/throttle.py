"""At most N redraws a second, and the last change always lands.

A run can emit tens of thousands of events a second; a browser cannot take a
redraw per event. Widgets mark themselves dirty on each event and let this
decide when to push: now if the last push is old enough, otherwise once at
the end of the interval (a timer on the running loop).
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable


class Throttle:
    def __init__(self, flush: Callable[[], None], per_second: float = 10.0):
        self._flush = flush
        self.interval = 1.0 / per_second
        self._last = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self.dirty = False
        self.count = 0          # how many flushes happened (tests and bench read it)
        self.times: list[float] = []

    def poke(self) -> None:
        """Something changed; flush now or schedule a flush at the end of the interval."""
        self.dirty = True
        if self._timer is not None:
            return
        wait = self._last + self.interval - time.monotonic()
        if wait <= 0:
            self._run()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next poke (or flush_now) after the interval pushes
        self._timer = loop.call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self.dirty:
            self._run()

    def _run(self) -> None:
        self.dirty = False
        self._last = time.monotonic()
        self.count += 1
        if len(self.times) < 10_000:
            self.times.append(self._last)
        self._flush()

    def flush_now(self) -> None:
        """Push pending changes now: a run ended or paused (once per ``run()``, not per event)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.dirty:
            self._run()

    def max_per_second(self) -> int:
        """The most flushes that fell in any one-second window."""
        best, start = 0, 0
        for end, t in enumerate(self.times):
            while t - self.times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best


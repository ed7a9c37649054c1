"""At most N redraws a second while a run goes, and the last change always lands.

A run can emit tens of thousands of events a second; neither the kernel nor
the browser can afford work per event. Widgets therefore only *append* what
they hear (a C-level ``list.append``) and this ticker, a timer on the run's
loop, turns the backlog into one redraw per interval while a run is going;
``flush_now`` pushes the end state when the run stops.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable


class Ticker:
    def __init__(self, flush: Callable[[], None], changed: Callable[[], bool], per_second: float = 10.0):
        self._flush = flush
        self._changed = changed
        self.interval = 1.0 / per_second
        self._handle: asyncio.TimerHandle | None = None
        self._deferred: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last = float("-inf")
        self.count = 0          # how many redraws happened (tests and bench read it)
        self.times: list[float] = []

    def start(self) -> None:
        """Tick on the running loop until ``stop`` (no loop: only ``flush_now`` redraws)."""
        if self._handle is not None:
            return
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._handle = self._loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self._handle = None
        if self._changed() and time.monotonic() - self._last >= self.interval:
            self._run()
        if self._loop is not None and not self._loop.is_closed():
            self._handle = self._loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def flush_now(self) -> None:
        """Redraw as soon as the rate allows (a run stopped: nobody will poke again).

        Within the interval of the last redraw it waits for the rest of it in a
        task; if the loop shuts down first, the task's cancellation still redraws.
        """
        wait = self._last + self.interval - time.monotonic()
        if wait <= 0:
            if self._changed():
                self._run()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if self._changed():
                self._run()
            return
        if self._deferred is None or self._deferred.done():
            self._deferred = loop.create_task(self._later())

    async def _later(self) -> None:
        try:
            while (wait := self._last + self.interval - time.monotonic()) > 0:
                await asyncio.sleep(wait)
        finally:
            self._deferred = None
            if self._changed():
                self._run()

    def _run(self) -> None:
        self._last = time.monotonic()
        self.count += 1
        if len(self.times) < 10_000:
            self.times.append(self._last)
        self._flush()

    def max_per_second(self) -> int:
        """The most redraws that fell in any one-second window."""
        best, start = 0, 0
        for end, t in enumerate(self.times):
            while t - self.times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best

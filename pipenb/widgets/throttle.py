"""At most N redraws a second while a run goes, and the last change always lands.

A run can emit tens of thousands of events a second; neither the kernel nor
the browser can afford work per event. Widgets therefore only *append* what
they hear (a C-level ``list.append``) and this ticker, a timer on the run's
loop, turns the backlog into one redraw per interval while a run is going;
``flush_now`` pushes the end state when the run stops.

``Debounce`` is the other way round: for a burst of changes of which only
the last matters (scrubbing a replay redraws its static snapshot once the
scrubbing stops). ``LoopCall`` hands work that a click or a comm message
brings (JupyterLab may deliver those on a subshell thread) to the loop the
view was made on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Callable


class Ticker:
    """Redraws at most ``per_second`` times a second, on the loop, and only when ``changed()``:
    calls ``flush()`` then. However fast a run emits events, a widget redraws about ten times a second.
    """

    def __init__(self, flush: Callable[[], None], changed: Callable[[], bool], per_second: float = 10.0):
        self._flush = flush
        self._changed = changed
        self.per_second = int(per_second)
        self.interval = 1.0 / per_second
        self._recent: deque[float] = deque()  # redraw times within the last second
        self._handle: asyncio.TimerHandle | None = None
        self._deferred: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
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
        last = self._recent[-1] if self._recent else float("-inf")
        if self._changed() and time.monotonic() - last >= self.interval and self._wait_for_slot() <= 0:
            self._run()
        if self._loop is not None and not self._loop.is_closed():
            self._handle = self._loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def flush_now(self) -> None:
        """Redraw now if the rate allows (a run stopped: nobody will poke again).

        Now, unless this would be the 11th redraw within a second; then it waits
        in a task (whose cancellation at loop shutdown still redraws).
        """
        if not self._changed():
            return
        wait = self._wait_for_slot()
        if wait <= 0:
            self._run()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._run()
            return
        if self._deferred is None or self._deferred.done():
            self._deferred = loop.create_task(self._later())

    def _wait_for_slot(self) -> float:
        """Seconds until one more redraw keeps every one-second window at the rate."""
        recent = self._recent
        now = time.monotonic()
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        return 0.0 if len(recent) < self.per_second else recent[0] + 1.0 - now

    async def _later(self) -> None:
        try:
            while (wait := self._wait_for_slot()) > 0:
                await asyncio.sleep(wait)
        finally:
            self._deferred = None
            if self._changed():
                self._run()

    def _run(self) -> None:
        now = time.monotonic()
        self._recent.append(now)
        self.count += 1
        if len(self.times) < 10_000:
            self.times.append(now)
        self._flush()

    def max_per_second(self) -> int:
        """The most redraws that fell in any one-second window."""
        best, start = 0, 0
        for end, t in enumerate(self.times):
            while t - self.times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best


class Debounce:
    """Calls ``fn`` once calls stop coming for ``delay`` seconds, on the loop of the thread that made it (at
    once without a loop); a call may come from any thread."""

    def __init__(self, fn, delay: float):
        self.fn, self.delay, self.handle = fn, delay, None
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    def __call__(self) -> None:
        if self.loop is None or self.loop.is_closed():
            self.fn()
        else:
            self.loop.call_soon_threadsafe(self._later)

    def _later(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.handle = self.loop.call_later(self.delay, self._fire)

    def _fire(self) -> None:
        self.handle = None
        self.fn()

    def cancel(self) -> None:
        """Drop the pending call, if any."""
        if self.handle is not None:
            self.handle.cancel()


class LoopCall:
    """Runs work on the kernel's loop thread: clicks and comm messages may arrive on another one.

    Made where the view is built: that thread's running loop is the one
    runs go on (none in a plain script: work is then done at once).
    """

    def __init__(self):
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self.thread = threading.get_ident()

    def __call__(self, fn, *args) -> None:
        """Run ``fn(*args)`` now when on the loop's thread (or without a loop), else hand it over."""
        loop = self.loop
        if loop is None or loop.is_closed() or threading.get_ident() == self.thread:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

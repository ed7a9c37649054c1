"""One thread and one heap for every timer pipenb arms (paused runs' expiries).

Thousands of paused runs cost a heap entry each; timers fire in a plain
script after ``run_sync`` returned as well as in a kernel; no thread is
started per run. A deadline far away (``1e12`` seconds) is waited for in
steps, never passed to ``wait()`` whole (it overflows).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable

_MAX_WAIT = 3600.0  # the timer thread sleeps at most this long at a time


class Timer:
    """One scheduled callback of the shared timer thread; ``cancel()`` keeps it from firing."""

    __slots__ = ("deadline", "callback")

    def __init__(self, deadline: float, callback: Callable[[], None] | None):
        self.deadline = deadline
        self.callback = callback

    def cancel(self) -> None:
        self.callback = None


class TimerWheel:
    """A single thread firing callbacks at deadlines kept in one heap (all registries share it)."""

    def __init__(self):
        self._heap: list = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._cancelled = 0

    def schedule(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, callback)
        with self._cond:
            earliest = not self._heap or timer.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (timer.deadline, next(self._seq), timer))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="pipenb-registry-timers", daemon=True)
                self._thread.start()
            elif earliest:  # the thread sleeps until the old head: wake it for the new one
                self._cond.notify()
        return timer

    def cancel(self, timer: Timer | None) -> None:
        if timer is None or timer.callback is None:
            return
        timer.cancel()
        with self._cond:
            self._cancelled += 1
            # Keep the heap from filling with dead entries when runs pause and resume often.
            if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e[2].callback is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(None if not self._heap else min(_MAX_WAIT, self._heap[0][0] - time.monotonic()))
                _, _, timer = heapq.heappop(self._heap)
                callback = timer.callback
                if callback is None:
                    self._cancelled = max(0, self._cancelled - 1)
                    continue
                timer.callback = None
            try:
                callback()
            except Exception:  # a failing expiry must not kill the timer thread
                pass

    def __len__(self) -> int:
        return len(self._heap)



WHEEL = TimerWheel()

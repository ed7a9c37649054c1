"""``StepContext``: what a step's second argument offers while it runs, and its progress reports.

``ctx.progress(done, total, message)`` may be called from any thread at any
rate: a report costs a clock read, and listeners hear at most about ten a
second per step, always including the last one (delivered when the step
ends). Reports made off the run's loop are handed to it.
"""

from __future__ import annotations

import threading
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_EVERY = 0.1  # seconds between delivered progress events of one step
_clock = time.monotonic


class Progress:
    """One step's progress reports, coalesced."""

    __slots__ = ("bus", "path", "stage_id", "step_id", "drive", "last", "pending")

    def __init__(self, bus, path, stage_id, step_id, drive):
        self.bus = bus
        self.path = path
        self.stage_id = stage_id
        self.step_id = step_id
        self.drive = drive  # the run's drive: its loop and thread
        self.last = 0.0
        self.pending: tuple | None = None

    def report(self, done, total=None, message=None) -> None:
        if "step:progress" not in self.bus.heard:
            return
        now = _clock()
        if now - self.last >= _EVERY:
            self.last = now
            self.pending = None
            self._send(done, total, message)
        else:
            self.pending = (done, total, message)

    def close(self) -> None:
        """The step ended: its last report, if held back, goes out now."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self._send(*pending)

    def _send(self, done, total, message) -> None:
        drive = self.drive
        if threading.get_ident() == drive.thread or drive.loop is None:
            self._emit(done, total, message)
        else:
            try:
                drive.loop.call_soon_threadsafe(self._emit, done, total, message)
            except RuntimeError:  # the loop is closed: nobody is left to tell
                pass

    def _emit(self, done, total, message) -> None:
        pending = self.bus.step_progress(self.path, stage_id=self.stage_id, step_id=self.step_id, done=done,
                                         total=total, message=message)
        if pending is not None and self.drive.loop is not None:
            self.drive.loop.create_task(pending)


class StepContext:
    """What a step's second argument offers: ids, the path, artifacts, signal, logger, progress."""

    __slots__ = ("run_id", "stage_id", "step_id", "path", "artifacts", "signal", "logger", "_progress")

    def __init__(self, run_id, stage_id, step_id, path, artifacts, signal, logger, *, progress: Progress | None = None):
        self.run_id = run_id
        self.stage_id = stage_id
        self.step_id = step_id
        self.path = path
        self.artifacts = artifacts
        self.signal = signal
        self.logger = logger
        self._progress = progress

    def progress(self, done, total=None, message=None) -> None:
        """Report how far the step is (``step:progress``); cheap enough to call per item."""
        if self._progress is not None:
            self._progress.report(done, total, message)

    def track(self, items: Iterable[T], total: int | None = None, message: str | None = None) -> Iterator[T]:
        """``for row in ctx.track(rows):`` reports progress as the loop goes."""
        if total is None:
            try:
                total = len(items)  # type: ignore[arg-type]
            except TypeError:
                total = None
        done = 0
        for item in items:
            yield item
            done += 1
            self.progress(done, total, message)

    def __repr__(self) -> str:
        return f"StepContext(run_id={self.run_id!r}, stage={self.stage_id!r}, step={self.step_id!r})"

"""``PipelineRegistry``: keeps paused runs alive for a while, then lets them go safely.

A paused run's context stays in memory for its pause timeout, so resuming it
is instant (the same object, nothing read or rebuilt). When the timeout fires
with no resume, the registry exports the run's artifacts into its checkpoint
and drops its strong reference: the context can be garbage-collected, and
``resume`` rebuilds it from the store.

One daemon thread and one heap serve every timer of every registry, so
thousands of paused runs cost a heap entry each, timers fire in a plain
script after ``run_sync`` returned as well as in a kernel, and no thread is
started per run. Every method takes a lock: widget clicks arrive on another
thread.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable

from .checkpoints import clear_checkpoint, read_checkpoint, write_checkpoint
from .lifecycle import PAUSED, RUNNING, is_resumable, can_run
from .listeners import Listeners

_MAX_WAIT = 3600.0  # the timer thread sleeps at most this long at a time (huge deadlines overflow wait())


@dataclass(frozen=True)
class RunRecord:
    """One line of ``registry.runs()``."""

    run_id: str
    pipeline_id: str
    status: str
    paused_at: str | None
    expires_at: float | None
    live: bool
    note: str = ""

    @property
    def time_left(self) -> float | None:
        return None if self.expires_at is None else max(0.0, self.expires_at - time.time())


class _Timer:
    __slots__ = ("deadline", "callback")

    def __init__(self, deadline: float, callback: Callable[[], None] | None):
        self.deadline = deadline
        self.callback = callback

    def cancel(self) -> None:
        self.callback = None


class _TimerWheel:
    """A single thread firing callbacks at deadlines kept in one heap (all registries share it)."""

    def __init__(self):
        self._heap: list = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._cancelled = 0

    def schedule(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(time.monotonic() + delay, callback)
        with self._cond:
            earliest = not self._heap or timer.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (timer.deadline, next(self._seq), timer))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="pipenb-registry-timers", daemon=True)
                self._thread.start()
            elif earliest:  # the thread sleeps until the old head: wake it for the new one
                self._cond.notify()
        return timer

    def cancel(self, timer: _Timer | None) -> None:
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


class _Entry:
    """What the registry knows of one run. Status comes from the live context while it is held."""

    __slots__ = ("run_id", "pipeline_id", "ctx", "store", "status", "paused_at", "expires_at",
                 "armed", "deadline", "timer", "unsubscribe")

    def __init__(self, ctx, store):
        self.run_id = ctx.run_id
        self.pipeline_id = ctx.pipeline_id
        self.ctx = ctx
        self.store = store
        self.status = ctx.status
        self.paused_at: str | None = None
        self.expires_at: float | None = None
        self.armed = -1  # the ctx.pause_count the expiry belongs to
        self.deadline = 0.0  # time.monotonic() of that expiry
        self.timer: _Timer | None = None
        self.unsubscribe: Callable[[], None] | None = None

    def disarm(self) -> None:
        self.armed = -1
        self.expires_at = None
        if self.timer is not None:
            _WHEEL.cancel(self.timer)
            self.timer = None

    def record(self) -> RunRecord:
        ctx = self.ctx
        if ctx is None:
            return RunRecord(self.run_id, self.pipeline_id, self.status, self.paused_at, None, False)
        status = ctx.status
        waiting = can_run(status)
        armed = status == PAUSED and self.armed == ctx.pause_count
        return RunRecord(self.run_id, self.pipeline_id, status, ctx.position if waiting else None,
                         self.expires_at if armed else None, True)


_WHEEL = _TimerWheel()


class PipelineRegistry:
    default: PipelineRegistry  # set below

    def __init__(self, default_timeout: float = 300.0):
        if isinstance(default_timeout, bool) or not isinstance(default_timeout, (int, float)) or default_timeout < 0:
            raise ValueError(f"default_timeout must be seconds >= 0, got {default_timeout!r}")
        self.default_timeout = float(default_timeout)
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.RLock()
        self._listeners = Listeners()
        self._finished: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    # -- the factory's binding ----------------------------------------------
    def register(self, ctx, store) -> None:
        with self._lock:
            old = self._entries.get(ctx.run_id)
            if old is not None:
                old.disarm()
                if old.unsubscribe is not None:
                    old.unsubscribe()
            entry = _Entry(ctx, store)
            # Two named, once-per-run events: a run continuing needs no event at all
            # (a timer checks the context's pause count when it fires).
            on_paused, on_done = self._listeners_for(ctx.run_id)
            offs = (ctx.on("pipeline:paused", on_paused), ctx.on("pipeline:success", on_done))
            entry.unsubscribe = lambda: [off() for off in offs]
            self._entries[ctx.run_id] = entry
        self._changed(ctx.run_id)

    def get_live_context(self, run_id: str):
        entry = self._entries.get(run_id)
        return entry.ctx if entry is not None else None

    def get_context(self, run_id: str):
        """The held context of a run, or of a finished run someone still holds (for its history)."""
        return self.get_live_context(run_id) or self._finished.get(run_id)

    def _listeners_for(self, run_id: str):
        # Bound to the run id, not the context, so the registry's own listener
        # never keeps a released context alive.
        def on_paused(event) -> None:
            if event.is_root:
                self._on_paused(run_id, event)

        def on_done(event) -> None:
            if event.is_root:
                self._forget(run_id)

        return on_paused, on_done

    def _on_paused(self, run_id: str, event) -> None:
        timeout = event.pause_timeout if event.pause_timeout is not None else self.default_timeout
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None or entry.ctx is None:
                return
            ctx = entry.ctx
            seq = ctx.pause_count  # the context counts this pause before the event fires
            if timeout <= 0:
                self._release(entry, PAUSED)
            elif timeout == float("inf"):  # never expires: held until resumed or discarded
                entry.disarm()
            else:
                instruction = ctx.pause_instruction
                if instruction is not None and instruction.persist:
                    self._export(entry)
                entry.armed = seq
                entry.expires_at = time.time() + timeout
                entry.deadline = deadline = time.monotonic() + timeout
                timer = entry.timer
                # A run that pauses again and again keeps its pending timer when
                # that one fires first: it then re-arms for the new deadline.
                if timer is None or timer.callback is None or timer.deadline > deadline:
                    _WHEEL.cancel(timer)
                    entry.timer = _WHEEL.schedule(timeout, lambda: self._fire(run_id))
        self._changed(run_id)

    def _forget(self, run_id: str) -> None:
        with self._lock:
            entry = self._entries.pop(run_id, None)
            if entry is None:
                return
            if entry.ctx is not None:  # finished: still there to look back at (fork) while someone holds it
                self._finished[run_id] = entry.ctx
            entry.disarm()
            if entry.unsubscribe is not None:
                entry.unsubscribe()
        self._changed(run_id)

    # -- expiry ---------------------------------------------------------------
    def _due(self, run_id: str, seq: int):
        entry = self._entries.get(run_id)
        if entry is None or entry.ctx is None or entry.armed != seq:
            return None
        ctx = entry.ctx
        if not is_resumable(ctx.status) or ctx.pause_count != seq:
            # The run continued (and maybe paused again) since this timer was armed.
            # A paused run that was then aborted still expires.
            return None
        return entry

    def _fire(self, run_id: str) -> None:
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None or entry.ctx is None or entry.armed < 0:
                return
            left = entry.deadline - time.monotonic()
            if left > 0:  # paused again since this timer was set: wait for that pause's deadline
                entry.timer = _WHEEL.schedule(left, lambda: self._fire(run_id))
                return
            seq = entry.armed
            entry = self._due(run_id, seq)
            if entry is None:
                return
            ctx = entry.ctx
        # Inside a kernel the run's loop is alive: expire there, where the run lives.
        if not ctx.call_soon(self._expire_if, run_id, seq):
            self._expire_if(run_id, seq)

    def _expire_if(self, run_id: str, seq: int) -> None:
        with self._lock:
            entry = self._due(run_id, seq)
            if entry is None:
                return
            self._release(entry)
        self._changed(run_id)

    def _export(self, entry: _Entry) -> None:
        cp = read_checkpoint(entry.store, entry.pipeline_id, entry.run_id)
        if cp is not None:
            write_checkpoint(entry.store, cp.with_bundle(entry.ctx.artifacts.export()))

    def _release(self, entry: _Entry, status: str | None = None) -> bool:
        """Export the artifacts into the checkpoint, then drop the strong reference."""
        ctx = entry.ctx
        if ctx is None:
            return False
        if ctx.status == RUNNING and status is None:
            return False  # never pull a running context out from under its run
        try:
            self._export(entry)
        except Exception as exc:
            ctx.logger.error(f"registry: export of run {entry.run_id} failed, keeping it live: {exc}", None)
            return False
        entry.status = status or ctx.status
        entry.paused_at = ctx.position
        entry.disarm()
        entry.ctx = None
        if entry.unsubscribe is not None:
            entry.unsubscribe()
            entry.unsubscribe = None
        return True

    # -- for people and widgets --------------------------------------------
    def runs(self) -> list[RunRecord]:
        """One record per known run: id, pipeline, status, paused-at, expires_at, live."""
        with self._lock:
            return [e.record() for e in self._entries.values()]

    def expire(self, run_id: str) -> bool:
        """Do the expiry of a held run now; False when there is nothing live to expire."""
        with self._lock:
            entry = self._entries.get(run_id)
            released = entry is not None and self._release(entry)
        if released:
            self._changed(run_id)
        return released

    def discard(self, run_id: str) -> bool:
        """Forget a run and clear its checkpoint; it can no longer be resumed."""
        with self._lock:
            entry = self._entries.pop(run_id, None)
            if entry is None:
                return False
            entry.disarm()
            if entry.unsubscribe is not None:
                entry.unsubscribe()
        clear_checkpoint(entry.store, entry.pipeline_id, run_id)
        self._changed(run_id)
        return True

    def on_change(self, listener: Callable[[str], Any]) -> Callable[[], None]:
        """Call ``listener(run_id)`` when a run is registered, pauses, expires, finishes or is discarded."""
        return self._listeners.add(listener)

    def _changed(self, run_id: str) -> None:
        self._listeners(run_id)

    def close(self) -> None:
        """Release every held run that is not running (exporting its artifacts), and all timers."""
        with self._lock:
            for entry in list(self._entries.values()):
                entry.disarm()
                self._release(entry)
        self._changed("*")

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"PipelineRegistry({len(self._entries)} runs, default_timeout={self.default_timeout})"


PipelineRegistry.default = PipelineRegistry()

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

from .checkpoints import read_checkpoint, write_checkpoint


@dataclass(frozen=True)
class RunRecord:
    """One line of ``registry.runs()``."""

    run_id: str
    pipeline_id: str
    status: str
    paused_at: str | None
    expires_at: float | None
    live: bool

    @property
    def time_left(self) -> float | None:
        return None if self.expires_at is None else max(0.0, self.expires_at - time.time())


class _Entry:
    __slots__ = ("run_id", "pipeline_id", "ctx", "ref", "store", "status", "paused_at", "expires_at",
                 "gen", "persist", "unsubscribe")

    def __init__(self, ctx, store):
        self.run_id = ctx.run_id
        self.pipeline_id = ctx.pipeline_id
        self.ctx = ctx
        self.ref = weakref.ref(ctx)
        self.store = store
        self.status = ctx.status
        self.paused_at = None
        self.expires_at = None
        self.gen = 0
        self.persist = False
        self.unsubscribe: Callable[[], None] | None = None


class _TimerWheel:
    """A single thread firing ``callback()`` at deadlines kept in one heap."""

    def __init__(self):
        self._heap: list = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, delay: float, callback: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), callback))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="pipenb-registry-timers", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:  # a failing expiry must not kill the timer thread
                pass

    def __len__(self) -> int:
        return len(self._heap)


_WHEEL = _TimerWheel()
_WATCHED = ("pipeline:start", "stage:paused", "pipeline:paused", "pipeline:success", "pipeline:failure")


class PipelineRegistry:
    default: PipelineRegistry  # set below

    def __init__(self, default_timeout: float = 300.0):
        if isinstance(default_timeout, bool) or not isinstance(default_timeout, (int, float)) or default_timeout < 0:
            raise ValueError(f"default_timeout must be seconds >= 0, got {default_timeout!r}")
        self.default_timeout = float(default_timeout)
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.RLock()
        self._listeners: tuple[Callable[[str], Any], ...] = ()
        self._closed = False

    # -- the factory's binding ----------------------------------------------
    def register(self, ctx, store) -> None:
        with self._lock:
            old = self._entries.get(ctx.run_id)
            if old is not None and old.ctx is not None and old.ctx is not ctx:
                old.gen += 1
            if old is not None and old.unsubscribe is not None and old.ref() is not ctx:
                old.unsubscribe()
            entry = _Entry(ctx, store)
            # Named events only: a "*" listener would make the engine build every event.
            handler = self._listener(ctx.run_id)
            offs = [ctx.on(name, handler) for name in _WATCHED]
            entry.unsubscribe = lambda: [off() for off in offs]
            if ctx.status in ("paused", "failed", "aborted"):
                entry.paused_at = ctx.position
            self._entries[ctx.run_id] = entry
        self._changed(ctx.run_id)

    def get_live_context(self, run_id: str):
        with self._lock:
            entry = self._entries.get(run_id)
            return entry.ctx if entry is not None else None

    # -- event handling -------------------------------------------------------
    def _listener(self, run_id: str):
        # Bound to the run id, not the context, so the registry never keeps a
        # released context alive through its own listener.
        def on_event(event) -> None:
            if len(event.path) != 1:
                return
            name = event.name
            if name == "pipeline:start":
                self._on_running(run_id)
            elif name == "stage:paused":
                self._set(run_id, persist=bool(getattr(event.instruction, "persist", False)))
            elif name == "pipeline:paused":
                self._on_paused(run_id, event)
            elif name == "pipeline:success":
                self._on_finished(run_id, event.status)
            elif name == "pipeline:failure":
                self._on_failed(run_id)

        return on_event

    def _set(self, run_id: str, **values) -> None:
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is not None:
                for k, v in values.items():
                    setattr(entry, k, v)

    def _on_running(self, run_id: str) -> None:
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None:
                return
            entry.gen += 1  # disarms any pending timer
            entry.status, entry.expires_at, entry.paused_at, entry.persist = "running", None, None, False
        self._changed(run_id)

    def _on_paused(self, run_id: str, event) -> None:
        timeout = event.pause_timeout if event.pause_timeout is not None else self.default_timeout
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None or entry.ctx is None:
                return
            entry.status = "paused"
            entry.paused_at = "/".join(event.checkpoint.resume_at)
            entry.gen += 1
            gen = entry.gen
            if timeout <= 0:
                self._release(entry)
            else:
                if entry.persist:
                    self._export(entry)
                entry.expires_at = time.time() + timeout
                _WHEEL.schedule(timeout, lambda: self._fire(run_id, gen))
        self._changed(run_id)

    def _on_finished(self, run_id: str, status: str) -> None:
        with self._lock:
            entry = self._entries.pop(run_id, None)
            if entry is None:
                return
            entry.gen += 1
            if entry.unsubscribe is not None:
                entry.unsubscribe()
        self._changed(run_id)

    def _on_failed(self, run_id: str) -> None:
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None:
                return
            entry.gen += 1
            entry.status, entry.expires_at = "failed", None
        self._changed(run_id)

    # -- expiry ---------------------------------------------------------------
    def _fire(self, run_id: str, gen: int) -> None:
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None or entry.gen != gen or entry.ctx is None:
                return
            ctx = entry.ctx
            loop = ctx._loop
        # Inside a kernel the run's loop is alive: expire there, where the run lives.
        if loop is not None and loop.is_running() and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._expire_if, run_id, gen)
                return
            except RuntimeError:
                pass
        self._expire_if(run_id, gen)

    def _expire_if(self, run_id: str, gen: int) -> None:
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None or entry.gen != gen or entry.ctx is None:
                return
            self._release(entry)
        self._changed(run_id)

    def _export(self, entry: _Entry) -> None:
        ctx = entry.ctx
        cp = read_checkpoint(entry.store, entry.pipeline_id, entry.run_id)
        if cp is not None:
            write_checkpoint(entry.store, cp.with_bundle(ctx.artifacts.export()))

    def _release(self, entry: _Entry) -> None:
        """Export the artifacts into the checkpoint, then drop the strong reference."""
        ctx = entry.ctx
        if ctx is None:
            return
        if ctx.status in ("paused", "failed", "aborted", "running"):
            try:
                self._export(entry)
            except Exception as exc:
                ctx._logger.error(f"registry: export of run {entry.run_id} failed: {exc}", None)
                return  # keep the context: releasing it now would lose its artifacts
        entry.status = ctx.status if ctx.status != "running" else "paused"
        entry.gen += 1
        entry.ctx = None
        entry.expires_at = None
        if entry.unsubscribe is not None:
            entry.unsubscribe()
            entry.unsubscribe = None

    # -- for people and widgets --------------------------------------------
    def runs(self) -> list[RunRecord]:
        with self._lock:
            out = []
            for e in self._entries.values():
                ctx = e.ctx
                status = ctx.status if ctx is not None else e.status
                out.append(RunRecord(e.run_id, e.pipeline_id, status, e.paused_at, e.expires_at, ctx is not None))
            return out

    def expire(self, run_id: str) -> bool:
        """Do the expiry of a paused run now; False when there is nothing live to expire."""
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None or entry.ctx is None:
                return False
            self._release(entry)
            released = entry.ctx is None
        self._changed(run_id)
        return released

    def discard(self, run_id: str) -> bool:
        """Forget a run and clear its checkpoint; it can no longer be resumed."""
        with self._lock:
            entry = self._entries.pop(run_id, None)
            if entry is None:
                return False
            entry.gen += 1
            if entry.unsubscribe is not None:
                entry.unsubscribe()
            store = entry.store
        from .checkpoints import clear_checkpoint

        clear_checkpoint(store, entry.pipeline_id, run_id)
        self._changed(run_id)
        return True

    def on_change(self, listener: Callable[[str], Any]) -> Callable[[], None]:
        self._listeners = self._listeners + (listener,)

        def unsubscribe() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def _changed(self, run_id: str) -> None:
        for listener in self._listeners:
            try:
                listener(run_id)
            except Exception:
                pass

    def close(self) -> None:
        """Release every live paused run (exporting its artifacts) and forget all timers."""
        with self._lock:
            for entry in list(self._entries.values()):
                entry.gen += 1
                if entry.ctx is not None and entry.ctx.status != "running":
                    self._release(entry)
        self._changed("*")

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"PipelineRegistry({len(self._entries)} runs, default_timeout={self.default_timeout})"


PipelineRegistry.default = PipelineRegistry()

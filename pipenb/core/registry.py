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

import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, Callable

from .artifacts import not_saved_note, save_unsaved, unsaveable_artifact
from .checkpoints import clear_checkpoint, read_checkpoint, write_checkpoint
from .lifecycle import PAUSED, PREPARED, can_run, forget_driver, is_resumable
from ._listeners import Listeners
from ._logs import warn
from .kept import hide
from .store import InMemoryStore
from .state import approx_size
from .run_record import RunRecord
from ._timers import WHEEL, Timer

FINISHED_KEPT = 1000  # finished runs listed per registry (oldest dropped first): a long-lived kernel stays small
_FOREVER = float("inf")


class _Entry:
    """What the registry knows of one run. Status comes from the live context while it is held."""

    __slots__ = ("run_id", "pipeline_id", "ctx", "store", "status", "paused_at", "expires_at",
                 "armed", "deadline", "timer", "unsubscribe", "note", "release", "sized")

    def __init__(self, ctx, store, release=None):
        self.run_id = ctx.run_id
        self.pipeline_id = ctx.pipeline_id
        self.ctx = ctx
        self.store = store
        self.status = ctx.status
        self.paused_at: str | None = None
        self.expires_at: float | None = None
        self.armed = -1  # the ctx.pause_count the expiry belongs to
        self.deadline = 0.0  # time.monotonic() of that expiry
        self.timer: Timer | None = None
        self.unsubscribe: Callable[[], None] | None = None
        self.note = ""  # why the run is held as it is (an artifact that cannot be saved, ...)
        self.release = release  # frees the run's store in its provider (memory stores), or None
        self.sized: tuple = (None, None)  # (state snapshot, its approximate size)

    def disarm(self) -> None:
        self.armed = -1
        self.expires_at = None
        if self.timer is not None:
            WHEEL.cancel(self.timer)
            self.timer = None

    def record(self) -> RunRecord:
        ctx = self.ctx
        if ctx is None:
            return RunRecord(self.run_id, self.pipeline_id, self.status, self.paused_at, None, False, self.note)
        status = ctx.status
        waiting = can_run(status)
        armed = (status == PAUSED or status == PREPARED) and self.armed == ctx.pause_count
        state = ctx.state
        if self.sized[0] is not state:
            self.sized = (state, approx_size(state))
        note = self.note or (not_saved_note(ctx.artifacts) if self.store.keeps_artifacts else "")
        return RunRecord(self.run_id, self.pipeline_id, status, ctx.position if waiting else None,
                         self.expires_at if armed else None, True, note, self.sized[1])


class PipelineRegistry:
    """Keeps paused runs alive in the kernel for a while, then lets them go safely.

    A paused run stays in memory for its pause's ``timeout`` (None: ``default_timeout``
    seconds; ``float("inf")``: until resumed or discarded), so ``resume`` returns the very
    same context at once; when the time is up its artifacts are exported into its
    checkpoint and the context released, and ``resume`` rebuilds it from the store.
    ``PipelineRegistry.default`` serves every factory not given another one::

        registry = PipelineRegistry(default_timeout=60)
        factory = PipelineFactory(pipeline, registry=registry)
        registry.runs()            # RunRecord per held run
        registry.discard(run_id)   # free everything of a run
    """

    default: PipelineRegistry  # set below

    def __init__(self, default_timeout: float = 300.0):
        if isinstance(default_timeout, bool) or not isinstance(default_timeout, (int, float)) or default_timeout < 0:
            raise ValueError(f"default_timeout must be seconds >= 0, got {default_timeout!r}")
        self.default_timeout = float(default_timeout)
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.RLock()
        self._listeners = Listeners()
        self._finished: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        # run id -> (pipeline id, status) of the newest FINISHED_KEPT finished runs, until removed
        self._done: OrderedDict[str, tuple[str, str]] = OrderedDict()

    # -- the factory's binding ----------------------------------------------
    def register(self, ctx, store, release: Callable[[str], None] | None = None) -> None:
        """Hold ``ctx``; ``release(run_id)`` frees its store's memory when the run is discarded or dropped."""
        with self._lock:
            old = self._entries.get(ctx.run_id)
            if old is not None:
                old.disarm()
                if old.unsubscribe is not None:
                    old.unsubscribe()
            entry = _Entry(ctx, store, release)
            # One once-per-run event: a run continuing needs no event at all (a timer checks the context's
            # pause count when it fires); pauses come through ``paused()``, which the factory's contexts call.
            entry.unsubscribe = ctx.on("pipeline:success", self._listener_for(ctx.run_id))
            self._entries[ctx.run_id] = entry
            self._done.pop(ctx.run_id, None)  # the same run id again: it is not finished any more
            if ctx.status == PREPARED and 0 < self.default_timeout < float("inf"):
                self._arm(entry, 0, self.default_timeout)  # a run prepared and never run goes too
        self._changed(ctx.run_id)

    def get_live_context(self, run_id: str):
        """The context the registry holds for ``run_id`` (a run not yet expired), or None."""
        entry = self._entries.get(run_id)
        return entry.ctx if entry is not None else None

    def get_context(self, run_id: str):
        """The held context of a run, or of a finished run someone still holds (for its history)."""
        return self.get_live_context(run_id) or self._finished.get(run_id)

    def _listener_for(self, run_id: str):
        # Bound to the run id, not the context: the registry's own listener never keeps a released context alive.
        def on_done(event) -> None:
            if event.is_root:
                self._forget(run_id)

        return on_done

    def paused(self, run_id: str, timeout: float | None = None) -> bool:
        """The held run ``run_id`` paused (``timeout``: its pause's own, None for the default): hold it that
        long. Its context calls this as its ``run()`` returns; a run not held here is ignored. True when the
        stored checkpoint may have changed (the artifacts exported into it), so the context reads it again."""
        if timeout is None:
            timeout = self.default_timeout
        wrote = False
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None or entry.ctx is None:
                return False
            ctx = entry.ctx
            seq = ctx.pause_count  # the context counts this pause before the event fires
            if timeout <= 0:
                self._release(entry, PAUSED)
                wrote = True
            elif timeout == _FOREVER:  # never expires: held until resumed or discarded
                entry.disarm()
            else:
                instruction = ctx.pause_instruction
                if entry.store.durable or (instruction is not None and instruction.persist):
                    # The pause survives a kernel crash: the artifacts go into the checkpoint now.
                    self._try_export(entry)
                    wrote = True
                self._arm(entry, seq, timeout)
        self._changed(run_id)
        return wrote

    def _arm(self, entry: _Entry, seq: int, timeout: float) -> None:
        run_id = entry.run_id
        entry.armed = seq
        entry.expires_at = time.time() + timeout
        entry.deadline = deadline = time.monotonic() + timeout
        timer = entry.timer
        # A run that pauses again and again keeps its pending timer when
        # that one fires first: it then re-arms for the new deadline.
        if timer is None or timer.callback is None or timer.deadline > deadline:
            WHEEL.cancel(timer)
            entry.timer = WHEEL.schedule(timeout, lambda: self._fire(run_id))

    def _try_export(self, entry: _Entry) -> bool:
        """Export; on failure keep the context (the only copy) and say why in the record's note. A store that keeps
        artifacts wrote them with each commit: nothing to export, but one it could not write keeps the context too."""
        if entry.store.keeps_artifacts:
            entry.note = save_unsaved(entry.ctx.artifacts, entry.store, entry.ctx.history)
            if entry.note:
                warn(entry.ctx.logger, f"registry: run {entry.run_id}: {entry.note}")
            return not entry.note
        try:
            self._export(entry)
        except Exception as exc:
            culprit = unsaveable_artifact(entry.ctx.artifacts)
            what = f"artifact {culprit[0]!r} ({culprit[1]})" if culprit else "its artifacts"
            entry.note = (f"{what} cannot be saved into the checkpoint, so the run stays live in this kernel "
                          f"only: {type(exc).__name__}: {exc}")
            warn(entry.ctx.logger, f"registry: run {entry.run_id}: {entry.note}")
            return False
        entry.note = ""
        return True

    def _forget(self, run_id: str) -> None:
        with self._lock:
            entry = self._entries.pop(run_id, None)
            if entry is None:
                return
            if entry.ctx is not None:  # finished: still there to look back at (fork) while someone holds it
                self._finished[run_id] = entry.ctx
                self._done[run_id] = (entry.pipeline_id, entry.ctx.status)
                self._done.move_to_end(run_id)
                while len(self._done) > FINISHED_KEPT:
                    self._done.popitem(last=False)
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
        never_ran = ctx.status == PREPARED and ctx.lifecycle.attempts == 0
        if not (is_resumable(ctx.status) or never_ran) or ctx.pause_count != seq:
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
                entry.timer = WHEEL.schedule(left, lambda: self._fire(run_id))
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
            released = self._release(entry, due=seq)
        if released:
            self._changed(run_id)

    def _export(self, entry: _Entry) -> None:
        cp = read_checkpoint(entry.store, entry.pipeline_id, entry.run_id)
        if cp is not None:
            write_checkpoint(entry.store, cp.with_bundle(entry.ctx.artifacts.export()))

    def _release(self, entry: _Entry, status: str | None = None, due: int | None = None) -> bool:
        """Export the artifacts into the checkpoint, then drop the strong reference.

        Decided and done under the run's lifecycle lock (``Lifecycle.let_go``):
        a run being started at that moment is either claimed first (it is
        running, so it is kept) or let go first (its drive then registers the
        context again), never half of each. Never a running context; with
        ``due`` (a timer's pause count), only if that pause is still the run's.
        """
        ctx = entry.ctx
        if ctx is None:
            return False
        return ctx.lifecycle.let_go(lambda: self._let_go(entry, ctx, status, due))

    def _let_go(self, entry: _Entry, ctx, status: str | None, due: int | None) -> bool:
        if due is not None and self._due(entry.run_id, due) is None:
            return False  # it ran (and maybe paused again) since the timer fired: that pause has its own timer
        if not ctx.lifecycle.is_driver:
            # A newer context of the run was built in this process since: this copy is stale. Write nothing.
            entry.note = "a newer context of this run was made since; this one was dropped unsaved"
        elif not entry.store.is_current():
            # Another process took the run over since: its state is newer than ours. Write nothing.
            entry.note = "driven by another process since; this kernel's copy was dropped unsaved"
        elif ctx.status == PREPARED and ctx.lifecycle.attempts == 0 and not entry.store.durable:
            # Prepared and never run, in memory: nothing to resume from; free its state.
            entry.note = "prepared and never run; released after the registry's timeout"
            if entry.release is not None:
                entry.release(entry.run_id)
            entry.store = InMemoryStore()  # nothing to keep: the record must not hold the freed state
        elif not self._try_export(entry):
            return False
        entry.status = status or ctx.status
        entry.paused_at = ctx.position
        entry.disarm()
        entry.ctx = None
        entry.sized = (None, None)  # the last state measured for runs(): it would keep that state alive
        if entry.unsubscribe is not None:
            entry.unsubscribe()
            entry.unsubscribe = None
        if entry.store.durable:
            entry.store.unload()  # the state is in the file: the store this entry keeps need not hold it too
        return True

    # -- for people and widgets --------------------------------------------
    def runs(self) -> list[RunRecord]:
        """One record per known run: id, pipeline, status, paused-at, expires_at, live."""
        with self._lock:
            return [e.record() for e in self._entries.values()]

    def finished(self) -> list[RunRecord]:
        """The completed and terminated runs of this process, oldest first, until removed (``remove``; the newest
        ``FINISHED_KEPT``). ``live``: something still holds the run's context, so it can be opened (history,
        replay, fork, report); a finished run is never resumed."""
        with self._lock:
            return [RunRecord(run_id, pid, status, None, None, run_id in self._finished)
                    for run_id, (pid, status) in self._done.items()]

    def remove(self, run_id: str) -> bool:
        """Take a finished run out of ``finished()`` and, if its context is held, its store's list (``factory.remove``
        reaches the store anyway); False if it is not a finished run listed here (``discard`` a run that can continue)."""
        with self._lock:
            if self._done.pop(run_id, None) is None:
                return False
            held = self._finished.pop(run_id, None)
        hide(held.store if held is not None else None)  # not listed from its store after a restart; nothing deleted
        self._changed(run_id)
        return True

    def expire(self, run_id: str) -> bool:
        """Do the expiry of a held run now; False when there is nothing live to expire."""
        with self._lock:
            entry = self._entries.get(run_id)
            released = entry is not None and self._release(entry)
        if released:
            self._changed(run_id)
        return released

    def discard(self, run_id: str) -> bool:
        """Forget a run and clear its checkpoint; it can no longer be resumed. Its memory is freed
        (a memory store's state, the held context); an old context object of it refuses to run."""
        with self._lock:
            entry = self._entries.pop(run_id, None)
            held = self._finished.pop(run_id, None)
            finished = self._done.pop(run_id, None) is not None
            if entry is not None:
                entry.disarm()
        if entry is None:  # a finished run: its record goes, and its store lists it no more (as ``remove``)
            if finished:
                hide(held.store if held is not None else None)
                self._changed(run_id)
            return finished
        with self._lock:
            if entry.unsubscribe is not None:
                entry.unsubscribe()
            ctx, entry.ctx = entry.ctx, None
        if ctx is not None:
            ctx.abort("discarded")
        forget_driver(run_id)
        clear_checkpoint(entry.store, entry.pipeline_id, run_id)
        if entry.release is not None:
            entry.release(run_id)
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


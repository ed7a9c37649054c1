"""``RunContext``: one run of one pipeline, and the controls a person has over it.

A context is what ``prepare``/``resume`` hand out and what the widgets drive:
run it (``run``, ``start``, ``step``, ``run_sync``), watch it (``on``), steer
it (``request_pause``, ``breakpoints``, ``update_state``, ``abort``). The
controls are safe to call from another thread (JupyterLab runs widget clicks
on a subshell thread): they only set flags, or hand work to the run's loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from .artifacts import ArtifactContainer
from .checkpoints import checkpoint_patch, read_checkpoint
from .errors import AbortedError, PipelineError
from .events import EventBus
from .execution import Engine, _PauseSignal
from .result import PipelineRunResult, Result
from .state import PIPELINE_DATA_KEY, is_mapping, user_view

STATUSES = ("prepared", "running", "paused", "completed", "terminated", "failed", "aborted")
_RESUMABLE = ("paused", "failed", "aborted")


class AbortSignal:
    """Polled by long steps: ``if ctx.signal.aborted: return``."""

    __slots__ = ("aborted", "reason")

    def __init__(self):
        self.aborted = False
        self.reason: Any = None

    def __repr__(self) -> str:
        return f"AbortSignal(aborted={self.aborted}, reason={self.reason!r})"


class RunContext:
    def __init__(
        self, *, pipeline, run_id: str, store, logger, entry: tuple,
        container: ArtifactContainer | None = None, status: str = "prepared",
        on_finish: Callable[[str], None] | None = None, router_only: bool = False,
    ):
        self.run_id = run_id
        self.pipeline_id = pipeline.id
        self.pipeline = pipeline
        self._store = store
        self._logger = logger
        self._bus = EventBus(run_id, logger)
        self.artifacts = container if container is not None else ArtifactContainer()
        self.breakpoints: set[str] = set()
        self.signal = AbortSignal()
        self._status = status
        self._cursor: tuple = entry
        self._router_only = router_only  # resume at _cursor's router: its sub-pipeline already ran
        self._pause_request: tuple | None = None
        self._step_budget: int | None = None
        self._in_async_step = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._task: asyncio.Task | None = None
        self._lock = threading.Lock()
        self._on_finish = on_finish
        self._active = False  # an engine is driving this context (until run() returns)
        self._view_src = None
        self._view = None
        self.pause_instruction = None  # the router's Pause of the current pause, if any
        self.pause_count = 0  # how many times this context has paused (registry timers check it)

    # -- what a person looks at --------------------------------------------
    @property
    def status(self) -> str:
        return self._status

    @property
    def state(self):
        snap = self._store.get()
        if snap is not self._view_src:
            self._view, self._view_src = user_view(snap), snap
        return self._view

    @property
    def checkpoint(self):
        return read_checkpoint(self._store, self.pipeline_id, self.run_id)

    @property
    def store(self):
        return self._store

    @property
    def position(self) -> str:
        """Address of the stage the run is at (running) or continues at (paused)."""
        return "/".join(self._cursor)

    def on(self, event: str, handler) -> Callable[[], None]:
        """Subscribe to an event name or ``"*"``; returns the unsubscribe function."""
        return self._bus.on(event, handler)

    def record(self):
        """An ``EventLog`` of this run's events from now on, built into events only when read.

        For views that keep every event (tables, graphs): recording costs one
        row of references per event and no object; ``log.close()`` stops it.
        """
        return self._bus.record()

    # -- running ------------------------------------------------------------
    def _claim(self) -> PipelineError | None:
        with self._lock:
            if self._active or self._status in ("running", "completed", "terminated"):
                what = "is already running" if self._status == "running" or self._active else f"has {self._status}"
                return PipelineError(
                    f"run {self.run_id} of pipeline {self.pipeline_id!r} {what}; "
                    f"prepare() a new run to start again"
                )
            self._resumed = self._status in _RESUMABLE
            self._status = "running"
            self.signal = AbortSignal()
            self._pause_request = None
            self.pause_instruction = None
            return None

    async def run(self) -> Result:
        """Run (or continue) to completion, a pause, a failure or an abort."""
        refused = self._claim()
        if refused is not None:
            self._step_budget = None
            return Result.err(refused)
        return await self._drive()

    async def step(self) -> Result:
        """Run exactly one stage, then pause again (reason ``"step"``)."""
        self._step_budget = 1
        return await self.run()

    def run_sync(self) -> Result:
        from .sync import run_sync

        return run_sync(self.run())

    def start(self) -> asyncio.Task:
        """Run as a background task on the running loop; the notebook cell returns at once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise PipelineError(
                f"run {self.run_id}: start() needs a running event loop (a Jupyter kernel has one); "
                f"in a script use ctx.run_sync() or await ctx.run()"
            ) from None
        refused = self._claim()
        if refused is not None:
            async def _refused():
                return Result.err(refused)

            return loop.create_task(_refused())
        self._task = loop.create_task(self._drive())
        return self._task

    async def _drive(self) -> Result:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._task = asyncio.current_task()
        self._active = True
        engine = Engine(self)
        self._router_only = False
        try:
            status = await engine.run(self._cursor, self._resumed)
        except _PauseSignal as sig:
            # The store's copy: the registry may have added the artifacts bundle (persist=True).
            cp = self.checkpoint or sig.checkpoint
            result = Result.ok(PipelineRunResult(self.run_id, "paused", self.state, cp))
        except PipelineError as exc:
            result = Result.err(exc)
        except asyncio.CancelledError:
            # The task itself was cancelled (not through abort): keep the run resumable.
            self._settle_failure(AbortedError(f"run {self.run_id} was cancelled"), engine)
            raise
        else:
            result = Result.ok(PipelineRunResult(self.run_id, status, self.state, None))
        finally:
            self._step_budget = None
            self._in_async_step = False
            self._active = False
        return result

    # The engine calls these just before the root pipeline's last event, so that
    # listeners of that event already see the run's new status and checkpoint.
    def _settle_paused(self) -> None:
        self.pause_count += 1
        self._status = "paused"

    def _settle_failure(self, exc: BaseException, engine: Engine) -> None:
        """Keep a checkpoint at the stage that failed so ``resume`` retries it."""
        self._status = "aborted" if isinstance(exc, AbortedError) else "failed"
        stage = self.pipeline.resolve(self._cursor)[-1]
        # A sub-pipeline stage that failed in its router retries only the router.
        self._router_only = engine.routing_after_sub == self._cursor
        try:
            self._store.set(checkpoint_patch(engine._checkpoint(self._cursor, stage), self._router_only))
        except Exception as err:
            self._logger.error(f"run {self.run_id}: could not write its failure checkpoint: {err}", None)

    def _settle_finished(self, status: str) -> None:
        self._status = status
        if PIPELINE_DATA_KEY in self._store.get():
            try:
                self._store.set(checkpoint_patch(None))
            except Exception as exc:
                self._logger.error(f"run {self.run_id}: could not clear its checkpoint: {exc}", None)
        if self._on_finish is not None:
            self._on_finish(self.run_id)

    def _uncancel(self) -> None:
        task = self._task
        if task is not None and hasattr(task, "uncancel"):
            while task.cancelling():
                task.uncancel()

    # -- steering -----------------------------------------------------------
    def abort(self, reason: Any = None) -> None:
        """Stop the run: an awaiting step is cancelled, a running sync step's stage is not committed."""
        with self._lock:
            if self._status in ("completed", "terminated", "aborted"):
                return
            self.signal.reason = reason
            self.signal.aborted = True
            if self._status != "running":
                self._status = "aborted"
                return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._thread:
            self._cancel_step()
        else:
            loop.call_soon_threadsafe(self._cancel_step)

    def _cancel_step(self) -> None:
        if self._in_async_step and self._task is not None and not self._task.done():
            self._task.cancel()

    def request_pause(self, timeout: float | None = None) -> None:
        """Pause at the next stage boundary (``timeout`` as in ``Pause``)."""
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
            raise ValueError(f"request_pause timeout must be seconds >= 0 or None, got {timeout!r}")
        self._pause_request = (timeout,)

    def update_state(self, patch) -> None:
        """Edit the state of a run that is not running (paused, failed, ...) before resuming it."""
        if not is_mapping(patch):
            raise TypeError(f"update_state needs a mapping patch, got {type(patch).__name__}: {patch!r}")
        if PIPELINE_DATA_KEY in patch:
            raise PipelineError(f"run {self.run_id}: the key {PIPELINE_DATA_KEY!r} is reserved for the engine")
        with self._lock:
            if self._status in ("running", "completed", "terminated"):
                raise PipelineError(
                    f"run {self.run_id} is {self._status}; update_state works on a prepared, paused, "
                    f"failed or aborted run"
                )
            self._store.set(patch)

    def __repr__(self) -> str:
        return f"<RunContext {self.pipeline_id!r} run {self.run_id} {self._status} at {self.position!r}>"

    def _repr_html_(self) -> str:
        from ..display import run_context_html

        return run_context_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..display import run_context_mimebundle

        return run_context_mimebundle(self, include, exclude)

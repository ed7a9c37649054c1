"""Running a stage's steps, wherever each one runs (SPEC 8).

A stage's steps run in order, each on the state left by the one before.
Where a sync action runs is the nearest ``executor=`` (step, stage, factory)
or the drive's default: ``"inline"`` for ``run()``/``step()``, ``"thread"``
for ``start()`` and the widgets. A stage whose sync steps all run on pipenb's
thread pool hands the whole stage to one thread in one hop (a hop costs about
a hundred microseconds on these machines; a step, a few), and its step events
are delivered from there. Steps on other executors (process pools, Dask) hop
one by one: their action, state and patch travel by cloudpickle.

An abort stops the waiting at once; an abandoned step's late result is
dropped and logged, never committed.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from . import executors
from .errors import AbortedError, PipelineError, StepError
from .routing import describe
from .state import EMPTY, PIPELINE_DATA_KEY, is_mapping, merge
from .step_context import Progress, StepContext

if TYPE_CHECKING:
    from .definitions import Pipeline, Stage

_perf = time.perf_counter
_INLINE, _POOL, _EACH = 0, 1, 2  # how a stage's steps run


class RunParts(NamedTuple):
    """What the engine and the step runner of one run both work with."""

    run_id: str
    bus: Any
    life: Any  # the run's Lifecycle
    artifacts: Any
    logger: Any


class StepRunner:
    """Runs the steps of a run's stages (one per context; ``for_drive`` binds it to each drive)."""

    __slots__ = ("run_id", "bus", "drive", "artifacts", "logger", "factory_executor", "default", "_plans")

    def __init__(self, parts: RunParts, factory_executor):
        self.run_id, self.bus, life, self.artifacts, self.logger = parts
        self.drive = life.drive  # the drive whose steps run (its abort signal, loop, default executor)
        self.factory_executor = factory_executor
        self.default = "inline"
        self._plans: dict[int, tuple] = {}

    def replan(self) -> None:
        """The definition changed (a rebound context): work out where steps run again."""
        self._plans = {}

    def for_drive(self, drive) -> StepRunner:
        """Ready for ``drive`` (a ``lifecycle.Drive``), whose sync steps default to its ``default_executor``."""
        self.drive = drive
        self.default = drive.default_executor
        if self._plans:  # worked out again each drive: executors may have been changed in between
            self._plans = {}
        return self

    def _plan(self, stage: Stage) -> tuple | None:
        """(mode, executor per step) for a stage, worked out once per drive; None: all inline."""
        if self.default == "inline" and self.factory_executor is None and not stage.sets_executor:
            return None  # the common case keeps nothing per stage
        plan = self._plans.get(id(stage))
        if plan is None:
            where = [None if step.is_async else executors.resolve(step.executor, stage.executor,
                                                                  self.factory_executor, self.default)
                     for step in stage.steps]
            sync = [w for w in where if w is not None]
            if all(w == "inline" for w in sync):
                mode = _INLINE
            elif len(sync) == len(where) and all(w == "thread" for w in sync):
                mode = _POOL
            else:
                mode = _EACH
            plan = self._plans[id(stage)] = (mode, where, stage)  # the stage keeps id() unique meanwhile
        return plan

    def run(self, pipe: Pipeline, stage: Stage, path: tuple, addr: tuple, working):
        """Awaitable of the stage's (patches, results, working state); raises StepError / AbortedError."""
        plan = self._plan(stage)
        if plan is None:
            return self._each(pipe, stage, path, addr, working, None)
        mode, where, _ = plan
        if mode == _POOL:
            return self._hop(executors.call, "thread", self._sync_steps, (pipe, stage, path, addr, working),
                             stage, stage.steps[0])
        return self._each(pipe, stage, path, addr, working, None if mode == _INLINE else where)

    async def _each(self, pipe, stage, path, addr, working, where):
        """The steps in order: inline on the loop's thread (the hot path, kept flat), or a hop each (``where``)."""
        drive, bus = self.drive, self.bus
        signal = drive.signal
        patches: list = []
        results: dict = {}
        want_start, want_success = "step:start" in bus.heard, "step:success" in bus.heard
        for i, step in enumerate(stage.steps):
            ex = where[i] if where is not None else None
            if signal.aborted:
                self._check_abort(addr, step)
            if want_start:
                pending = bus.step_start(path, stage_id=stage.id, step_id=step.id)
                if pending is not None:
                    await drive.interruptible(pending)
            t0 = _perf()
            progress = None
            try:
                if step.nargs == 2 or ex is not None:
                    progress = Progress(bus, path, stage.id, step.id, drive)
                if ex is None or ex == "inline":
                    out = self._call(step, stage, path, working, progress) if step.nargs == 2 else step.action(working)
                    if step.is_async or (out is not None and type(out) is not dict and inspect.isawaitable(out)):
                        out = await drive.interruptible(out)
                else:
                    out = await self._away(ex, step, stage, path, working, progress)
            except (asyncio.CancelledError, AbortedError):
                raise
            except PipelineError as exc:  # an executor's own failure (cannot send, shut down): named already
                if isinstance(exc, StepError) and exc.step_id == step.id:
                    await self._failed(path, stage, step, exc, t0)
                raise
            except Exception as exc:
                err = self._step_error(pipe, stage, step, addr, exc)
                await self._failed(path, stage, step, err, t0)
                raise err from exc
            finally:
                if progress is not None:
                    progress.close()
            fast = type(out) is dict and PIPELINE_DATA_KEY not in out
            if fast:
                try:
                    working = merge(working, out)
                except RecursionError:
                    fast = False
                else:
                    patches.append(out)
                    results[step.id] = out
            if not fast:
                try:
                    working = self._take(pipe, stage, step, addr, out, working, (patches, results))
                except StepError as err:
                    await self._failed(path, stage, step, err, t0)
                    raise
            if want_success:
                pending = bus.step_success(path, stage_id=stage.id, step_id=step.id, patch=results[step.id],
                                           duration=_perf() - t0)
                if pending is not None:
                    await drive.interruptible(pending)
        return patches, results, working

    def _away(self, ex, step, stage, path, working, progress):
        """Awaitable of one step on executor ``ex`` (a thread, a process pool, Dask)."""
        fn = self._remote_call if not executors.is_local(ex) else self._call
        return self._hop(executors.call, ex, fn, self._args(step, stage, path, working, progress, ex), stage, step)

    def _args(self, step, stage, path, working, progress, ex) -> tuple:
        if not executors.is_local(ex):
            remote = executors.RemoteStepContext(self.run_id, stage.id, step.id, path, executors.describe(ex))
            return (step.action, step.nargs, working, remote)
        return (step, stage, path, working, progress)

    @staticmethod
    def _remote_call(action, nargs, working, remote):
        return action(working, remote) if nargs == 2 else action(working)

    def _call(self, step, stage, path, working, progress):
        if step.nargs == 2:
            return step.action(working, StepContext(self.run_id, stage.id, step.id, path, self.artifacts,
                                                    self.drive.signal, self.logger, progress=progress))
        return step.action(working)  # a step that takes only the state

    async def _hop(self, call, ex, fn, args, stage, step):
        drive = self.drive
        label = f"step {step.id!r} of stage {stage.id!r}" if len(stage.steps) == 1 or fn is not self._sync_steps \
            else f"stage {stage.id!r}"
        try:
            return await call(ex, fn, args, where=label, stage_id=stage.id, step_id=step.id,
                              abort_event=drive.abort_future())
        except executors.Abandoned as exc:
            if exc.late is not None:
                exc.late.add_done_callback(lambda fut, what=label: self._dropped(what, fut))
            on = {"thread": "on a worker thread", "inline": "on the event loop"}.get(ex) if isinstance(ex, str) \
                else None
            raise AbortedError(f"run {self.run_id} aborted while {label} was running "
                               f"{on or 'on ' + executors.describe(ex)}; "
                               f"the stage was not committed", reason=drive.signal.reason) from None

    def _dropped(self, what: str, fut) -> None:
        outcome = "raised" if not fut.cancelled() and fut.exception() is not None else "returned"
        self.logger.info(f"run {self.run_id}: {what} {outcome} after the run was aborted; its result was dropped",
                         None)

    # -- a whole stage on one pool thread ----------------------------------------------
    def _sync_steps(self, pipe, stage, path, addr, working):
        """The stage's sync steps, in order, on one pool thread; events are delivered from here."""
        bus, drive = self.bus, self.drive
        signal = drive.signal
        patches: list = []
        results: dict = {}
        for step in stage.steps:
            self._check_abort(addr, step)
            if "step:start" in bus.heard:
                _deliver(bus.step_start(path, stage_id=stage.id, step_id=step.id), drive)
            t0 = _perf()
            progress = Progress(bus, path, stage.id, step.id, drive)
            try:
                out = self._call(step, stage, path, working, progress)
            except Exception as exc:
                if signal.aborted:
                    raise AbortedError(f"run {self.run_id} aborted during step {step.id!r}") from exc
                err = self._step_error(pipe, stage, step, addr, exc)
                if "step:failure" in bus.heard:
                    _deliver(bus.step_failure(path, stage_id=stage.id, step_id=step.id, error=err,
                                              duration=_perf() - t0), drive)
                raise err from exc
            finally:
                progress.close()
            if signal.aborted:  # the run went on without this step: say nothing more
                raise AbortedError(f"run {self.run_id} aborted during step {step.id!r}")
            try:
                working = self._take(pipe, stage, step, addr, out, working, (patches, results))
            except StepError as err:
                if "step:failure" in bus.heard:
                    _deliver(bus.step_failure(path, stage_id=stage.id, step_id=step.id, error=err,
                                              duration=_perf() - t0), drive)
                raise
            if "step:success" in bus.heard:
                _deliver(bus.step_success(path, stage_id=stage.id, step_id=step.id, patch=results[step.id],
                                          duration=_perf() - t0), drive)
        return patches, results, working

    # -- shared -------------------------------------------------------------------------
    def _check_abort(self, addr, step) -> None:
        signal = self.drive.signal
        if signal.aborted:
            raise AbortedError(f"run {self.run_id} aborted in stage {'/'.join(addr)!r} before step {step.id!r}",
                               reason=signal.reason)

    def _take(self, pipe, stage, step, addr, out, working, kept):
        """Check a step's patch and merge it into the working state (StepError when it is not one); ``kept`` is
        the stage's (patches, results) so far."""
        patches, results = kept
        if out is None:
            out = EMPTY
        elif type(out) is not dict and not is_mapping(out):
            raise self._bad(pipe, stage, step, addr, f"returned {type(out).__name__} {describe(out)}; a step must "
                                                     f"return a mapping (patch) or None")
        elif PIPELINE_DATA_KEY in out:
            raise self._bad(pipe, stage, step, addr, f"wrote the reserved key {PIPELINE_DATA_KEY!r}; it belongs "
                                                     f"to the engine")
        else:
            try:
                working = merge(working, out)
            except RecursionError:
                raise self._bad(pipe, stage, step, addr, "returned a patch nested too deeply to merge (a mapping "
                                                         "that contains itself, or thousands of levels)") from None
            patches.append(out)
        results[step.id] = out
        return working

    def _bad(self, pipe, stage, step, addr, what: str) -> StepError:
        return StepError(f"step {step.id!r} of stage {'/'.join(addr)!r} in pipeline {pipe.id!r} {what}",
                         stage_id=stage.id, step_id=step.id)

    def _step_error(self, pipe, stage, step, addr, exc) -> StepError:
        return StepError(
            f"step {step.id!r} of stage {'/'.join(addr)!r} in pipeline {pipe.id!r} (run {self.run_id}) "
            f"raised {type(exc).__name__}: {exc}",
            stage_id=stage.id, step_id=step.id,
        )

    async def _failed(self, path, stage, step, err, t0) -> None:
        if "step:failure" in self.bus.heard:
            pending = self.bus.step_failure(path, stage_id=stage.id, step_id=step.id, error=err,
                                            duration=_perf() - t0)
            if pending is not None:
                await pending



def _deliver(pending: Any, drive) -> None:
    """From a pool thread: an async listener's awaitable is awaited on the drive's loop, in order."""
    if pending is not None and drive.loop is not None and threading.get_ident() != drive.thread:
        asyncio.run_coroutine_threadsafe(pending, drive.loop).result()

"""The engine loop: run a pipeline level by level, one atomic stage at a time.

One async implementation serves every entry point (``run``, ``step``,
``start``, ``run_sync``). Control leaves a level by exception: ``_PauseSignal``
unwinds a pause through the parent stages so that each level closes its
``stage:start``/``pipeline:start`` with a matching event; ``PipelineError``
does the same for failures. Events are built only when someone listens.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING

from .checkpoints import PipelineCheckpoint, checkpoint_patch, now_iso
from .errors import AbortedError, PipelineError, RoutingError, StepError, StoreError
from .events import PathNode
from .routing import END, Pause, check_decision, describe, where
from .step_context import StepContext
from .state import EMPTY, PIPELINE_DATA_KEY, FrozenDict, is_mapping, merge, with_key

if TYPE_CHECKING:
    from .context import RunContext
    from .definitions import Pipeline, Stage

_perf = time.perf_counter
_YIELD_EVERY = 0.02  # seconds of sync work before giving the event loop a turn


class _RouterOnly(tuple):
    """``after`` of a sub-pipeline whose parent stage has a router: go back to that router."""


class _PauseSignal(Exception):
    def __init__(self, checkpoint, timeout, reason, instruction):
        self.checkpoint = checkpoint
        self.timeout = timeout
        self.reason = reason
        self.instruction = instruction


class Engine:
    """Runs one root pipeline for a ``RunContext``; holds no state between runs."""

    __slots__ = ("ctx", "bus", "store", "pipeline", "_skip", "_last_yield", "_cursor_writes", "_swap",
                 "_router_only", "routing_after_sub", "_paths")

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.bus = ctx._bus
        self.store = ctx._store
        self.pipeline = ctx.pipeline
        self._skip: tuple | None = None
        self._last_yield = _perf()
        self._cursor_writes = bool(getattr(self.store, "durable", False))
        self._swap = getattr(self.store, "compare_and_set", None)
        # A pipeline stage whose sub-pipeline already ran: entering it runs only its router.
        self._router_only: tuple | None = ctx._cursor if ctx._router_only else None
        # Event paths by stage address: one shared tuple per stage, not a new
        # one for each of its events that an EventLog keeps.
        self._paths: dict[tuple, tuple] = {}
        self.routing_after_sub: tuple | None = None  # the pipeline stage whose router is running

    # -- entry --------------------------------------------------------------
    async def run(self, entry: tuple, resumed: bool) -> str:
        """Run from ``entry``; returns ``"completed"``/``"terminated"`` or raises."""
        self._skip = entry if resumed else None
        return await self._level(self.pipeline, (), (), entry, resumed, ())

    def committed(self):
        return self.ctx.state  # cached per store snapshot

    async def _emit(self, name: str, path: tuple, *values) -> None:
        # For the once-per-level events; the per-stage and per-step ones inline
        # this (no coroutine to build when nobody listens asynchronously).
        out = self.bus.emit(name, path, *values)
        if out is not None:
            await out

    # -- a pipeline level ---------------------------------------------------
    async def _level(self, pipe: Pipeline, parent_path: tuple, prefix: tuple, entry: tuple, resumed: bool,
                     after: tuple | None) -> str:
        """Run one pipeline level. ``after`` is where the run goes on when this level
        ends: an address, ``()`` when the run completes, None when a router decides."""
        bus = self.bus
        path = parent_path + (PathNode(pipe.id, None),)
        if "pipeline:start" in bus.heard:
            await self._emit(
                "pipeline:start", path, pipe.id,
                "/".join(entry) if entry else pipe.ordered[0].id, self.committed(), resumed,
            )
        idx = pipe.position[entry[0]] if entry else 0
        sub_entry = entry[1:] if entry else ()
        count = 0
        status = "completed"
        try:
            while True:
                stage = pipe.ordered[idx]
                addr = prefix + (stage.id,)
                count += 1
                if count > pipe.max_transitions:
                    raise RoutingError(
                        f"pipeline {pipe.id!r} exceeded max_transitions={pipe.max_transitions} "
                        f"(stopped before stage {stage.id!r}); a router probably loops forever",
                        stage_id=stage.id,
                    )
                now = _perf()
                if now - self._last_yield > _YIELD_EVERY:
                    # Let widgets, timers and other tasks run during long sync runs.
                    self._last_yield = now
                    await asyncio.sleep(0)
                self._boundary(stage, addr)
                decision = await self._stage(pipe, stage, parent_path, addr, sub_entry, after)
                sub_entry = ()
                if decision is None:
                    idx += 1
                    if idx == len(pipe.ordered):
                        break
                elif decision is END:
                    status = "terminated"
                    break
                else:
                    idx = pipe.position[decision]
        except _PauseSignal as sig:
            if not parent_path:
                self.ctx._settle_paused()
            if "pipeline:paused" in bus.heard:
                await self._emit(
                    "pipeline:paused", path, sig.checkpoint, self.committed(),
                    sig.timeout, sig.reason,
                )
            raise
        except PipelineError as exc:
            if not parent_path:
                self.ctx._settle_failure(exc, self)
            if "pipeline:failure" in bus.heard:
                await self._emit("pipeline:failure", path, exc, self.committed())
            raise
        if not parent_path:
            self.ctx._settle_finished(status)
        if "pipeline:success" in bus.heard:
            await self._emit("pipeline:success", path, self.committed(), status)
        return status

    def _boundary(self, stage: Stage, addr: tuple) -> None:
        """Pause before a stage if asked to (request, step budget, breakpoint)."""
        ctx = self.ctx
        if self._skip is not None:
            if self._skip[: len(addr)] == addr:
                if len(addr) == len(self._skip):
                    self._skip = None
                return
            self._skip = None
        reason = None
        if ctx.signal.aborted:
            ctx._cursor = addr
            raise AbortedError(f"run {ctx.run_id} aborted before stage {'/'.join(addr)!r}", reason=ctx.signal.reason)
        leaf = stage.pipeline is None  # request and step pauses land on a stage with steps
        if leaf and ctx._pause_request is not None:
            reason = "request"
        elif leaf and ctx._step_budget is not None and ctx._step_budget <= 0:
            reason = "step"
        elif ctx.breakpoints and "/".join(addr) in ctx.breakpoints:
            reason = "breakpoint"
        if reason is None:
            return
        timeout = ctx._pause_request[0] if reason == "request" else None
        ctx._pause_request = None
        cp = self._checkpoint(addr, stage)
        ctx._cursor = addr
        self.store.set(checkpoint_patch(cp))
        raise _PauseSignal(cp, timeout, reason, None)

    def _checkpoint(self, resume_at: tuple, stage: Stage) -> PipelineCheckpoint:
        ctx = self.ctx
        return PipelineCheckpoint(
            run_id=ctx.run_id, pipeline_id=self.pipeline.id, resume_at=resume_at,
            paused_at_stage_id=stage.id, paused_at_stage_label=stage.label, paused_on=now_iso(),
        )

    # -- one stage ----------------------------------------------------------
    async def _stage(self, pipe: Pipeline, stage: Stage, parent_path: tuple, addr: tuple, sub_entry: tuple,
                     after: tuple | None):
        ctx = self.ctx
        bus = self.bus
        path = self._paths.get(addr)
        if path is None:
            path = self._paths[addr] = parent_path + (PathNode(pipe.id, stage.id),)
        ctx._cursor = addr
        t0 = _perf()
        if "stage:start" in bus.heard:
            pending = bus.emit("stage:start", path, stage.id, stage.label)
            if pending is not None:
                await pending
        try:
            if stage.pipeline is not None:
                if self._router_only == addr:
                    self._router_only = None  # its sub-pipeline finished before the pause or crash
                else:
                    sub_after = (self._next_address(pipe, stage, addr, None, after) if stage.router is None
                                 else _RouterOnly(addr))
                    await self._level(stage.pipeline, path, addr, sub_entry, bool(sub_entry), sub_after)
                self.routing_after_sub = addr
                ctx._cursor = addr
                patches, results, snapshot = (), {}, None
                working = self.committed() if stage.router is not None else None
            else:
                patches, results, working, snapshot = await self._steps(pipe, stage, path, addr)
            decision = None
            if stage.router is not None:
                decision = self._route(pipe, stage, working, results)
                if stage.router_async or (decision is not None and type(decision) is not str
                                          and type(decision) is not Pause and inspect.isawaitable(decision)):
                    decision = await self._await_route(pipe, stage, decision)
                decision = check_decision(pipe, stage, decision)
            if ctx.signal.aborted:
                raise AbortedError(
                    f"run {ctx.run_id} aborted in stage {'/'.join(addr)!r}; the stage was not committed",
                    reason=ctx.signal.reason,
                )
            cp, clear, router_only = None, False, False
            if type(decision) is Pause:
                cp = self._checkpoint(addr[:-1] + (decision.stage_id,), stage)
            elif self._cursor_writes and not (stage.pipeline is not None and stage.router is None):
                # Durable stores also learn where to continue, so a crash after
                # this commit resumes at the next stage, never redoing this one.
                nxt = self._next_address(pipe, stage, addr, decision, after)
                if type(nxt) is _RouterOnly:
                    cp, router_only = self._checkpoint(tuple(nxt), stage), True
                elif nxt:
                    cp = self._checkpoint(nxt, stage)
                clear = nxt == ()
            self._commit(patches, cp, addr, snapshot, working, clear, router_only)
            self.routing_after_sub = None
            if cp is not None and type(decision) is Pause:
                ctx._cursor = cp.resume_at
        except _PauseSignal as sig:
            if "stage:paused" in bus.heard:
                await self._emit("stage:paused", path, stage.id, sig.instruction,
                                 _perf() - t0)
            raise
        except asyncio.CancelledError:
            if not ctx.signal.aborted:
                raise
            ctx._uncancel()
            err = AbortedError(f"run {ctx.run_id} aborted in stage {'/'.join(addr)!r}", reason=ctx.signal.reason)
            await self._stage_failed(path, stage, err, t0)
            raise err from None
        except PipelineError as exc:
            await self._stage_failed(path, stage, exc, t0)
            raise
        if ctx._step_budget is not None and stage.pipeline is None:
            ctx._step_budget -= 1
        if results:
            ctx.artifacts.record("/".join(addr) + "/", results)
        if type(decision) is Pause:
            if "stage:paused" in bus.heard:
                await self._emit("stage:paused", path, stage.id, decision, _perf() - t0)
            ctx.pause_instruction = decision
            raise _PauseSignal(cp, decision.timeout, "router", decision)
        if "stage:success" in bus.heard:
            pending = bus.emit("stage:success", path, stage.id, results, decision,
                               _perf() - t0)
            if pending is not None:
                await pending
        return decision

    async def _stage_failed(self, path, stage, exc, t0) -> None:
        if "stage:failure" in self.bus.heard:
            await self._emit("stage:failure", path, stage.id, exc, _perf() - t0)

    @staticmethod
    def _next_address(pipe: Pipeline, stage: Stage, addr: tuple, decision, after: tuple | None) -> tuple | None:
        """Where the run goes on after ``stage`` decided ``decision``: an address, () or None."""
        if decision is END:
            return after
        if decision is not None:
            return addr[:-1] + (decision,)
        i = pipe.position[stage.id] + 1
        return addr[:-1] + (pipe.ordered[i].id,) if i < len(pipe.ordered) else after

    def _commit(self, patches, cp, addr, snapshot, working, clear=False, router_only=False) -> None:
        """Write a stage's patches (and checkpoint, or its removal) in one transaction."""
        if not patches and cp is None and not clear:
            return
        store = self.store
        try:
            # Fast path: the stage's merged state *is* the new state (plus the
            # engine's key); swap it in if nothing else wrote meanwhile, instead
            # of merging every patch a second time.
            if self._swap is not None and snapshot is not None:
                if cp is not None:
                    reserved = FrozenDict(checkpoint=cp, router_only=True) if router_only else FrozenDict(checkpoint=cp)
                else:
                    reserved = None if clear else snapshot.get(PIPELINE_DATA_KEY)
                new = working if reserved is None else with_key(working, PIPELINE_DATA_KEY, reserved)
                if self._swap(snapshot, new):
                    return
            with store.transaction():
                for patch in patches:
                    store.set(patch)
                if cp is not None or clear:
                    store.set(checkpoint_patch(cp, router_only))
        except PipelineError:
            raise
        except Exception as exc:
            raise StoreError(
                f"run {self.ctx.run_id}: commit of stage {'/'.join(addr)!r} failed, nothing of it was kept: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def _steps(self, pipe: Pipeline, stage: Stage, path: tuple, addr: tuple):
        """Run a stage's steps; returns (patches, results, working state, store snapshot it built on)."""
        ctx = self.ctx
        bus = self.bus
        snapshot = self.store.get()
        working = self.ctx.state
        patches: list = []
        results: dict = {}
        want_start, want_success = "step:start" in bus.heard, "step:success" in bus.heard
        signal = ctx.signal
        for step in stage.steps:
            if signal.aborted:
                raise AbortedError(
                    f"run {ctx.run_id} aborted in stage {'/'.join(addr)!r} before step {step.id!r}",
                    reason=signal.reason,
                )
            if want_start:
                pending = bus.emit("step:start", path, stage.id, step.id)
                if pending is not None:
                    await pending
            t0 = _perf()
            try:
                if step.nargs == 2:
                    out = step.action(working, StepContext(ctx.run_id, stage.id, step.id, path, ctx.artifacts,
                                                           signal, ctx._logger))
                else:
                    out = step.action(working)
                if step.is_async or (out is not None and type(out) is not dict and inspect.isawaitable(out)):
                    ctx._in_async_step = True
                    try:
                        out = await out
                    finally:
                        ctx._in_async_step = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                err = StepError(
                    f"step {step.id!r} of stage {'/'.join(addr)!r} in pipeline {pipe.id!r} (run {ctx.run_id}) "
                    f"raised {type(exc).__name__}: {exc}",
                    stage_id=stage.id, step_id=step.id,
                )
                await self._step_failed(path, stage, step, err, t0)
                raise err from exc
            if out is None:
                out = EMPTY
            elif type(out) is not dict and not is_mapping(out):
                await self._bad_patch(pipe, stage, step, path, addr, t0,
                                      f"returned {type(out).__name__} {describe(out)}; a step must return a "
                                      f"mapping (patch) or None", TypeError(f"bad patch type {type(out).__name__}"))
            elif PIPELINE_DATA_KEY in out:
                await self._bad_patch(pipe, stage, step, path, addr, t0,
                                      f"wrote the reserved key {PIPELINE_DATA_KEY!r}; it belongs to the engine",
                                      KeyError(PIPELINE_DATA_KEY))
            else:
                patches.append(out)
                working = merge(working, out)
            results[step.id] = out
            if want_success:
                pending = bus.emit("step:success", path, stage.id, step.id, out,
                                   _perf() - t0)
                if pending is not None:
                    await pending
        return patches, results, working, snapshot

    async def _bad_patch(self, pipe, stage, step, path, addr, t0, what: str, cause: Exception):
        err = StepError(
            f"step {step.id!r} of stage {'/'.join(addr)!r} in pipeline {pipe.id!r} {what}",
            stage_id=stage.id, step_id=step.id,
        )
        await self._step_failed(path, stage, step, err, t0)
        raise err from cause

    async def _step_failed(self, path, stage, step, err, t0) -> None:
        if "step:failure" in self.bus.heard:
            await self._emit("step:failure", path, stage.id, step.id, err,
                             _perf() - t0)

    def _route(self, pipe: Pipeline, stage: Stage, working, results):
        try:
            if stage.router_nargs == 2:
                return stage.router(working, results)
            return stage.router(working)
        except Exception as exc:
            raise RoutingError(f"{where(pipe, stage)} raised {type(exc).__name__}: {exc}",
                               stage_id=stage.id) from exc

    async def _await_route(self, pipe: Pipeline, stage: Stage, pending):
        self.ctx._in_async_step = True
        try:
            return await pending
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise RoutingError(f"{where(pipe, stage)} raised {type(exc).__name__}: {exc}",
                               stage_id=stage.id) from exc
        finally:
            self.ctx._in_async_step = False

"""The engine: run a pipeline level by level, one atomic stage at a time.

One async implementation serves every entry point (``run``, ``step``,
``start``, ``run_sync``). The engine gets everything it needs as arguments
(definition, store, bus, lifecycle, artifacts, history) and returns an
``Outcome``; it moves the run's ``Lifecycle`` forward through its named
transitions and reads the claimed ``Drive`` (abort signal, step budget).
Inside, control leaves a level by exception: ``_PauseSignal`` unwinds a pause
through the parent stages so that each level closes its ``stage:start`` /
``pipeline:start`` with a matching event; errors do the same for failures.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING

from .checkpoints import PipelineCheckpoint, checkpoint_patch, now_iso, read_checkpoint
from .checkpoints import router_only as stored_router_only
from .errors import AbortedError, PipelineError, RoutingError
from .events import PathNode
from .lifecycle import ABORT, ABORTED, COMPLETED, FAILED, PAUSED, RUNNING, TERMINATED
from .routing import END, Pause, check_decision, where
from .state import PIPELINE_DATA_KEY
from .commit import commit_stage
from .history import combined
from .lookback import stage_code

if TYPE_CHECKING:
    from .steps import RunParts, StepRunner
    from .definitions import Pipeline, Stage

_perf = time.perf_counter
_now = time.time
_YIELD_EVERY = 0.02  # seconds of sync work before giving the event loop a turn


class Outcome:
    """How a drive ended: completed/terminated/paused (with its checkpoint), or failed/aborted (with the error)."""

    __slots__ = ("status", "checkpoint", "error")

    def __init__(self, status: str, checkpoint: PipelineCheckpoint | None = None, error: PipelineError | None = None):
        self.status = status
        self.checkpoint = checkpoint
        self.error = error


class _RouterOnly(tuple):
    """``after`` of a sub-pipeline whose parent stage has a router: go back to that router."""


class _PauseSignal(Exception):
    def __init__(self, checkpoint, timeout, reason, instruction):
        self.checkpoint = checkpoint
        self.timeout = timeout
        self.reason = reason
        self.instruction = instruction


class Engine:
    """Drives one root pipeline once; holds nothing between drives."""

    __slots__ = ("run_id", "pipeline", "store", "bus", "life", "artifacts", "history", "logger", "view",
                 "breakpoints", "steps", "_skip", "_last_yield", "_durable", "_rows", "_router_only", "_paths", "routing_after_sub",
                 "_landed", "drive")

    def __init__(self, parts: RunParts, *, pipeline, store, history, view, breakpoints, steps: StepRunner):
        self.run_id, self.bus, self.life, self.artifacts, self.logger = parts
        self.drive = self.life.drive    # the drive claimed for this engine
        self.pipeline = pipeline
        self.store = store
        self.history = history          # None when the factory keeps none
        self.view = view                # () -> the user state now (cached per store snapshot)
        self.breakpoints = breakpoints  # the context's live set of stage addresses
        self.steps = steps
        self._skip: tuple | None = None
        self._last_yield = _perf()
        self._durable = store.durable
        self._rows = history is not None and store.keeps_history  # history rows persist with each commit
        # A pipeline stage whose sub-pipeline already ran: entering it runs only its router.
        self._router_only: tuple | None = self.life.take_router_only()
        # Event paths by stage address: one shared tuple per stage, not a new
        # one for each of its events that an EventLog keeps.
        self._paths: dict[tuple, tuple] = {}
        self.routing_after_sub: tuple | None = None  # the pipeline stage whose router is running
        self._landed: tuple | None = None  # a stage whose commit landed before an interrupt

    async def run(self) -> Outcome:
        """Drive from the lifecycle's cursor. A ``BaseException`` that is not an
        ``Exception`` (KeyboardInterrupt) leaves the run aborted and propagates."""
        life = self.life
        entry, resumed = life.cursor, self.drive.resumed
        self._skip = entry if resumed else None
        try:
            status = await self._level(self.pipeline, (), (), entry, resumed, ())
        except _PauseSignal as sig:
            return Outcome(PAUSED, checkpoint=sig.checkpoint)
        except PipelineError as exc:
            return Outcome(life.status, error=exc)
        return Outcome(status)

    # -- a pipeline level ---------------------------------------------------
    async def _level(self, pipe: Pipeline, parent_path: tuple, prefix: tuple, entry: tuple, resumed: bool,
                     after: tuple | None) -> str:
        """Run one pipeline level. ``after`` is where the run goes on when this level
        ends: an address, ``()`` when the run completes, None when a router decides."""
        bus = self.bus
        path = parent_path + (PathNode(pipe.id, None),)
        root = not parent_path
        status = COMPLETED
        try:
            if "pipeline:start" in bus.heard:
                pending = bus.pipeline_start(path, pipeline_id=pipe.id,
                                             entry="/".join(entry) if entry else pipe.ordered[0].id,
                                             state=self.view(), resumed=resumed)
                if pending is not None:
                    await self.drive.interruptible(pending)
            idx = pipe.position[entry[0]] if entry else 0
            sub_entry = entry[1:] if entry else ()
            count = 0
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
                    status = TERMINATED
                    break
                else:
                    idx = pipe.position[decision]
        except _PauseSignal as sig:
            if root:
                self.life.paused(sig.checkpoint.resume_at, sig.instruction)
            if "pipeline:paused" in bus.heard:
                pending = bus.pipeline_paused(path, checkpoint=sig.checkpoint, final_state=self.view(),
                                              pause_timeout=sig.timeout, reason=sig.reason)
                if pending is not None:
                    await pending
            raise
        except BaseException as exc:
            err, reraise = self._classify(exc, self.life.cursor)
            if root:
                self._stopped(err, interrupted=reraise)
            if "pipeline:failure" in bus.heard:
                pending = bus.pipeline_failure(path, error=err, state=self.view())
                if pending is not None:
                    await pending
            if reraise or err is exc:
                raise
            raise err from (None if isinstance(exc, asyncio.CancelledError) else exc)
        if root:
            self._finished(status)
        if "pipeline:success" in bus.heard:
            pending = bus.pipeline_success(path, final_state=self.view(), status=status)
            if pending is not None:
                await pending
        return status

    def _classify(self, exc: BaseException, addr: tuple) -> tuple[PipelineError, bool]:
        """The error a failure is reported as, and whether the original must propagate."""
        if isinstance(exc, PipelineError):
            return exc, False
        drive = self.drive
        where_ = "/".join(addr)
        if isinstance(exc, asyncio.CancelledError) and drive.signal.aborted:
            drive.uncancel()
            return AbortedError(f"run {self.run_id} aborted in stage {where_!r}; the stage was not committed",
                                reason=drive.signal.reason), False
        if isinstance(exc, Exception):  # a fault of pipenb or a store: the run fails, resumable
            err = PipelineError(f"run {self.run_id}: stage {where_!r} failed inside pipenb: "
                                f"{type(exc).__name__}: {exc}")
            err.__cause__ = exc
            return err, False
        # KeyboardInterrupt (the notebook's interrupt button), SystemExit, a cancelled task.
        return AbortedError(f"run {self.run_id} interrupted in stage {where_!r} by {type(exc).__name__}; "
                            f"the stage was not committed", reason=exc), True

    def _stopped(self, err: PipelineError, interrupted: bool = False) -> None:
        """Keep a checkpoint at the stage that failed so a retry runs it again."""
        life = self.life
        status = ABORTED if isinstance(err, AbortedError) else FAILED
        # A sub-pipeline stage that failed in its router retries only the router.
        router_only = self.routing_after_sub == life.cursor
        if interrupted and self._landed == life.cursor:
            # The interrupt came after the stage reached the store, whose commit
            # (durable stores) already says where to continue, or that the run ended.
            stored = read_checkpoint(self.store, self.pipeline.id, self.run_id)
            if stored is None:
                life.stopped(status)
            else:
                life.stopped(status, stored_router_only(self.store), at=tuple(stored.resume_at))
            return
        try:
            stage = self.pipeline.resolve(life.cursor)[-1]
            self.store.set(checkpoint_patch(self._checkpoint(life.cursor, stage), router_only, status))
        except Exception as exc:
            self.logger.error(f"run {self.run_id}: could not write its failure checkpoint: {exc}", None)
        life.stopped(status, router_only)

    def _finished(self, status: str) -> None:
        if PIPELINE_DATA_KEY in self.store.get():
            try:
                self.store.set(checkpoint_patch(None))
            except Exception as exc:
                self.logger.error(f"run {self.run_id}: could not clear its checkpoint: {exc}", None)
        self.life.finished(status)

    def _boundary(self, stage: Stage, addr: tuple) -> None:
        """The run reaches the stage at ``addr`` (the cursor moves there); stop before it if aborted, or
        pause if asked to (request, step budget, breakpoint)."""
        life = self.life
        if self._skip is not None:
            if self._skip[: len(addr)] == addr:
                if len(addr) == len(self._skip):
                    self._skip = None
                life.move_to(addr)
                return
            self._skip = None
        # request and step pauses land on a stage with steps
        found = life.arrive(addr, stage.pipeline is None, self.breakpoints, self.view)
        if found is None:
            return
        if found is ABORT:
            raise AbortedError(f"run {self.run_id} aborted before stage {'/'.join(addr)!r}",
                               reason=self.drive.signal.reason)
        cp = self._checkpoint(addr, stage)
        self.store.set(checkpoint_patch(cp, status=PAUSED))
        raise _PauseSignal(cp, found[1], found[0], None)

    def _checkpoint(self, resume_at: tuple, stage: Stage) -> PipelineCheckpoint:
        return PipelineCheckpoint(
            run_id=self.run_id, pipeline_id=self.pipeline.id, resume_at=resume_at,
            paused_at_stage_id=stage.id, paused_at_stage_label=stage.label, paused_on=now_iso(),
        )

    # -- one stage ----------------------------------------------------------
    async def _stage(self, pipe: Pipeline, stage: Stage, parent_path: tuple, addr: tuple, sub_entry: tuple,
                     after: tuple | None):
        life = self.life
        bus = self.bus
        path = self._paths.get(addr)
        if path is None:
            path = self._paths[addr] = parent_path + (PathNode(pipe.id, stage.id),)
        t0 = _perf()
        history = self.history
        if history is not None:
            started, mark, code = _now(), self.artifacts.mark(), stage_code(pipe, stage)
        if "stage:start" in bus.heard:
            pending = bus.stage_start(path, stage_id=stage.id, label=stage.label)
            if pending is not None:
                await self.drive.interruptible(pending)
        try:
            if stage.pipeline is not None:
                if self._router_only == addr:
                    self._router_only = None  # its sub-pipeline finished before the pause or crash
                else:
                    sub_after = (self._next_address(pipe, stage, addr, None, after) if stage.router is None
                                 else _RouterOnly(addr))
                    await self._level(stage.pipeline, path, addr, sub_entry, bool(sub_entry), sub_after)
                self.routing_after_sub = addr
                life.move_to(addr)
                patches, results, snapshot = (), {}, None
                working = self.view() if stage.router is not None else None
            else:
                snapshot = self.store.get()
                patches, results, working = await self.steps.run(pipe, stage, path, addr, self.view())
            decision = None
            if stage.router is not None:
                decision = self._route(pipe, stage, working, results)
                if stage.router_async or (decision is not None and type(decision) is not str
                                          and type(decision) is not Pause and inspect.isawaitable(decision)):
                    decision = await self._await_route(pipe, stage, decision)
                decision = check_decision(pipe, stage, decision)
            if self.drive.signal.aborted:
                raise AbortedError(
                    f"run {self.run_id} aborted in stage {'/'.join(addr)!r}; the stage was not committed",
                    reason=self.drive.signal.reason,
                )
            cp, clear, router_only = None, False, False
            if type(decision) is Pause:
                cp = self._checkpoint(addr[:-1] + (decision.stage_id,), stage)
            elif self._durable and not (stage.pipeline is not None and stage.router is None):
                # Durable stores also learn where to continue, so a crash after
                # this commit resumes at the next stage, never redoing this one.
                nxt = self._next_address(pipe, stage, addr, decision, after)
                if type(nxt) is _RouterOnly:
                    cp, router_only = self._checkpoint(tuple(nxt), stage), True
                elif nxt:
                    cp = self._checkpoint(nxt, stage)
                clear = nxt == ()
            row = None
            if self._rows and stage.pipeline is None:  # the history row commits with the stage
                row = (history.next_seq, "/".join(addr), stage.id, stage.label, tuple(patches), decision, started,
                       _perf() - t0, code)
            try:
                commit_stage(self.store, self.run_id, addr, patches, cp, snapshot, working, clear, router_only,
                             row, PAUSED if type(decision) is Pause else RUNNING)
            except BaseException as exc:
                if not isinstance(exc, Exception) and snapshot is not None and self.store.get() is not snapshot:
                    self._landed = addr  # interrupted after the commit reached the store
                raise
            self.routing_after_sub = None
        except _PauseSignal as sig:
            if "stage:paused" in bus.heard:
                pending = bus.stage_paused(path, stage_id=stage.id, instruction=sig.instruction,
                                           duration=_perf() - t0)
                if pending is not None:
                    await pending
            raise
        except BaseException as exc:
            err, reraise = self._classify(exc, addr)
            if "stage:failure" in bus.heard:
                pending = bus.stage_failure(path, stage_id=stage.id, error=err, duration=_perf() - t0)
                if pending is not None:
                    await pending
            if reraise or err is exc:
                raise
            raise err from (None if isinstance(exc, asyncio.CancelledError) else exc)
        duration = _perf() - t0
        key = "/".join(addr)
        if stage.pipeline is None:
            if self.drive.step_budget is not None:
                self.drive.spend_step()
            if history is not None:
                history.add(key, stage.id, stage.label, patches[0] if len(patches) == 1 else combined(patches),
                            decision, started, duration, working, mark, code)
        if results:
            self.artifacts.record(key + "/", results)
        if type(decision) is Pause:
            if "stage:paused" in bus.heard:
                pending = bus.stage_paused(path, stage_id=stage.id, instruction=decision, duration=duration)
                if pending is not None:
                    await pending
            raise _PauseSignal(cp, decision.timeout, "router", decision)
        if "stage:success" in bus.heard:
            pending = bus.stage_success(path, stage_id=stage.id, results=results, next=decision,
                                        duration=duration)
            if pending is not None:
                await self.drive.interruptible(pending)
        return decision

    @staticmethod
    def _next_address(pipe: Pipeline, stage: Stage, addr: tuple, decision, after: tuple | None) -> tuple | None:
        """Where the run goes on after ``stage`` decided ``decision``: an address, () or None."""
        if decision is END:
            return after
        if decision is not None:
            return addr[:-1] + (decision,)
        i = pipe.position[stage.id] + 1
        return addr[:-1] + (pipe.ordered[i].id,) if i < len(pipe.ordered) else after

    def _route(self, pipe: Pipeline, stage: Stage, working, results):
        try:
            if stage.router_nargs == 2:
                return stage.router(working, results)
            return stage.router(working)
        except Exception as exc:
            raise RoutingError(f"{where(pipe, stage)} raised {type(exc).__name__}: {exc}",
                               stage_id=stage.id) from exc

    async def _await_route(self, pipe: Pipeline, stage: Stage, pending):
        try:
            return await self.drive.interruptible(pending)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise RoutingError(f"{where(pipe, stage)} raised {type(exc).__name__}: {exc}",
                               stage_id=stage.id) from exc

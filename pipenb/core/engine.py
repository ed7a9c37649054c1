"""The engine: run a pipeline level by level, one atomic stage at a time.

One async implementation serves every entry point (``run``, ``step``,
``start``, ``run_sync``). The engine gets everything it needs as arguments
(definition, store, bus, lifecycle, artifacts, history) and returns an
``Outcome``; it moves the run's ``Lifecycle`` forward through its named
transitions and reads the claimed ``Drive`` (abort signal, step budget).
Inside, control leaves a level by exception: ``PauseSignal`` unwinds a pause
through the parent stages so that each level closes its ``stage:start`` /
``pipeline:start`` with a matching event; errors do the same for failures. A
router's pause at the root level (the common pause) returns instead: raising
through three coroutine frames was a tenth of a pause's cost.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING

from .checkpoints import PipelineCheckpoint, checkpoint_patch, finished_patch, read_checkpoint, stamped
from .checkpoints import router_only as stored_router_only
from .errors import AbortedError, PipelineError, RoutingError
from .events import PathNode, paths_for
from .lifecycle import ABORT, ABORTED, COMPLETED, FAILED, PAUSED, TERMINATED
from .routing import Pause, check_decision, where
from .kept import needs_end_note
from .commit import StageWork, artifacts_saved, commit_stage, stage_artifacts
from .history import HistoryRow
from .lookback import stage_code
from .outcome import Outcome, PauseSignal
from .plan import HISTORY_MEMORY, HISTORY_OFF, HISTORY_ROWS, StagePlan, plan_stage, sub_after

if TYPE_CHECKING:
    from .steps import RunParts, StepRunner
    from .definitions import Pipeline, Stage

_perf = time.perf_counter
_now = time.time
_new = tuple.__new__
_YIELD_EVERY = 0.02  # seconds of sync work before giving the event loop a turn


class Engine:
    """Drives one root pipeline once; holds nothing between drives."""

    __slots__ = ("run_id", "pipeline", "store", "bus", "life", "artifacts", "history", "logger", "view",
                 "breakpoints", "steps", "_skip", "_last_yield", "_durable", "_keep", "_router_only", "_paths",
                 "routing_after_sub", "_landed", "drive", "_arts", "_pausing")

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
        self._arts = store.keeps_artifacts  # each commit writes the artifacts its stage put or replaced
        # What history the run keeps: none, records in memory, and rows that persist with each commit.
        self._keep = HISTORY_OFF if history is None else HISTORY_ROWS if store.keeps_history else HISTORY_MEMORY
        # A pipeline stage whose sub-pipeline already ran: entering it runs only its router.
        self._router_only: tuple | None = self.life.take_router_only()
        # Event paths and address keys by stage address: one shared tuple per stage, not a new one for each of
        # its events that an EventLog keeps; kept with the definition, for every run and drive of it.
        self._paths: dict[tuple, tuple] = paths_for(pipeline)
        self._pausing: PauseSignal | None = None  # a router's pause, on its way out of the levels
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
        except PauseSignal as sig:
            return Outcome(PAUSED, checkpoint=sig.checkpoint, timeout=sig.timeout)
        except PipelineError as exc:
            return Outcome(life.status, error=exc)
        if status == PAUSED:  # a router paused at the root level: returned, not raised
            sig = self._pausing
            return Outcome(PAUSED, sig.checkpoint, None, sig.timeout)
        return Outcome(status)

    # -- a pipeline level ---------------------------------------------------
    async def _level(self, pipe: Pipeline, parent_path: tuple, prefix: tuple, entry: tuple, resumed: bool,
                     after: tuple | None) -> str:
        """Run one pipeline level. ``after`` is where the run goes on when this level
        ends: an address, ``()`` when the run completes, None when a router decides."""
        bus = self.bus
        path = self._paths.get((None, *prefix))  # a level's path (None: no stage address starts so)
        if path is None:
            path = self._paths[(None, *prefix)] = parent_path + (PathNode(pipe.id, None),)
        root = not parent_path
        status = COMPLETED
        try:
            if "pipeline:start" in bus.heard:
                pending = bus.pipeline_start(path, pipeline_id=pipe.id,
                                             entry="/".join(entry) if entry else pipe.ordered[0].id,
                                             state=self.view(), resumed=resumed)
                if pending is not None:
                    await self.drive.interruptible(pending)
            idx, sub_entry, count = (pipe.position[entry[0]], entry[1:], 0) if entry else (0, (), 0)
            while True:
                stage = pipe.ordered[idx]
                addr = prefix + (stage.id,)
                count += 1
                if count > pipe.max_transitions:
                    raise _looping(pipe, stage)
                now = _perf()
                if now - self._last_yield > _YIELD_EVERY:  # widgets, timers and other tasks get a turn
                    self._last_yield = now
                    await asyncio.sleep(0)
                self._boundary(stage, addr)
                plan = await self._stage(pipe, stage, parent_path, addr, sub_entry, after)
                sub_entry = ()
                if plan.goto is None:
                    status = PAUSED if plan.paused else TERMINATED if plan.terminated else COMPLETED
                    break
                idx = plan.goto
            if status == PAUSED:  # a router paused the run: returned at the root, raised from a sub-pipeline
                if not root:
                    raise self._pausing
                pending = self._level_paused(path, root, self._pausing)
                if pending is not None:
                    await pending
                return PAUSED
        except PauseSignal as sig:
            pending = self._level_paused(path, root, sig)
            if pending is not None:
                await pending
            raise
        except BaseException as exc:
            err = await self._level_failed(path, root, exc)
            if err is exc:
                raise
            raise err from (None if isinstance(exc, asyncio.CancelledError) else exc)
        if root:
            self._finished(status)
        if "pipeline:success" in bus.heard:
            pending = bus.pipeline_success(path, final_state=self.view(), status=status)
            if pending is not None:
                await pending
        return status

    def _level_paused(self, path: tuple, root: bool, sig: PauseSignal):
        """A level paused (at the root: the run did); the awaitable a ``pipeline:paused`` listener returned."""
        if root:
            self.life.paused(sig.checkpoint.resume_at, sig.instruction)
        if "pipeline:paused" in self.bus.heard:
            return self.bus.pipeline_paused(path, checkpoint=sig.checkpoint, final_state=self.view(),
                                            pause_timeout=sig.timeout, reason=sig.reason)
        return None

    async def _level_failed(self, path: tuple, root: bool, exc: BaseException):
        """Report a level that failed (at the root: the run stopped); what to raise (``exc`` itself when it
        propagates as it is)."""
        err, reraise = self._classify(exc, self.life.cursor)
        if root:
            self._stopped(err, interrupted=reraise)
        if "pipeline:failure" in self.bus.heard:
            pending = self.bus.pipeline_failure(path, error=err, state=self.view())
            if pending is not None:
                await pending
        return exc if reraise else err

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
        if needs_end_note(self.store, status):  # unless the last commit wrote it
            try:
                self.store.set(finished_patch(self.pipeline.id, status))  # listed after a restart, never resumed
            except Exception as exc:
                self.logger.error(f"run {self.run_id}: could not note its end in its store: {exc}", None)
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
        raise PauseSignal(cp, found[1], found[0], None)

    def _checkpoint(self, resume_at: tuple, stage: Stage) -> PipelineCheckpoint:
        return stamped(self.run_id, self.pipeline.id, resume_at, stage.id, stage.label)

    # -- one stage: run, decide, commit, report ---------------------------------
    async def _stage(self, pipe: Pipeline, stage: Stage, parent_path: tuple, addr: tuple, sub_entry: tuple,
                     after: tuple | None) -> StagePlan:
        """Run one stage, decide where the run goes on, commit what the plan says, report it."""
        bus = self.bus
        known = self._paths.get(addr)
        if known is None:
            known = self._paths[addr] = (parent_path + (PathNode(pipe.id, stage.id),), "/".join(addr))
        path, key = known
        tick = self.artifacts.tick() if self._arts else 0
        clock = ((_perf(), _now(), self.artifacts.mark(), stage_code(pipe, stage), tick) if self._keep
                 else (_perf(), 0.0, 0, None, tick))
        if "stage:start" in bus.heard:
            pending = bus.stage_start(path, stage_id=stage.id, label=stage.label)
            if pending is not None:
                await self.drive.interruptible(pending)
        try:
            if stage.pipeline is None:  # the hot path, kept inline: a stage costs a few µs
                snapshot, base = self.store.get(), self.view()
                patches, results, working = await self.steps.run(pipe, stage, path, addr, base)
                work = _new(StageWork, (patches, results, working, snapshot, base))
            else:
                work = await self._run_sub(pipe, stage, path, addr, sub_entry, after)
            decision = None
            if stage.router is not None:  # the router's answer, checked (awaited only when it is awaitable)
                decision = self._route(pipe, stage, work.working, work.results)
                if stage.router_async or (decision is not None and type(decision) is not str
                                          and type(decision) is not Pause and inspect.isawaitable(decision)):
                    decision = await self._await_route(pipe, stage, decision)
                decision = check_decision(pipe, stage, decision)
            if self.drive.signal.aborted:
                raise AbortedError(f"run {self.run_id} aborted in stage {'/'.join(addr)!r}; the stage was not "
                                   f"committed", reason=self.drive.signal.reason)
            plan = plan_stage(pipe, stage, addr, decision, after, self._durable, self._keep)
            cp = self._commit(plan, stage, work, decision, clock)
        except PauseSignal as sig:
            await self._stage_paused(path, stage, sig.instruction, clock[0])
            raise
        except BaseException as exc:
            err = await self._stage_failed(path, stage, addr, exc, clock)
            if err is exc:
                raise
            raise err from (None if isinstance(exc, asyncio.CancelledError) else exc)
        duration = self._report(key, plan, stage, work, decision, clock)
        if plan.paused:
            if "stage:paused" in bus.heard:
                await self._stage_paused(path, stage, decision, clock[0], duration)
            self._pausing = PauseSignal(cp, decision.timeout, "router", decision)  # the level raises or returns it
        elif "stage:success" in bus.heard:
            pending = bus.stage_success(path, stage_id=stage.id, results=work.results, next=decision,
                                        duration=duration)
            if pending is not None:
                await self.drive.interruptible(pending)
        return plan

    async def _run_sub(self, pipe: Pipeline, stage: Stage, path: tuple, addr: tuple, sub_entry: tuple,
                       after: tuple | None) -> StageWork:
        """A pipeline stage's sub-pipeline (whose stages commit on their own)."""
        if self._router_only == addr:
            self._router_only = None  # its sub-pipeline finished before the pause or crash
        else:
            await self._level(stage.pipeline, path, addr, sub_entry, bool(sub_entry),
                              sub_after(pipe, stage, addr, after))
        self.routing_after_sub = addr
        self.life.move_to(addr)
        working = self.view() if stage.router is not None else None
        return _new(StageWork, ((), {}, working, None, working))

    def _commit(self, plan: StagePlan, stage: Stage, work: StageWork, decision, clock: tuple):
        """Commit the stage as ``plan`` says; the checkpoint written with it, if any."""
        cp = self._checkpoint(plan.resume_at, stage) if plan.resume_at is not None else None
        row = None
        if plan.row:  # the history row commits with the stage
            row = HistoryRow.of_stage(self.history.next_seq, plan.address, stage, work.patches, decision, clock,
                                      _perf() - clock[0], outputs=work.results if self._arts else None)
        arts = (stage_artifacts(self.artifacts, plan.address, work.results, row, self.history, clock[4]) if self._arts
                else None)
        try:
            skipped = commit_stage(self.store, self.run_id, plan, cp, work, row, arts[1] if arts and arts[1] else None)
        except BaseException as exc:
            if not isinstance(exc, Exception) and work.snapshot is not None and self.store.get() is not work.snapshot:
                self._landed = plan.address  # interrupted after the commit reached the store
            raise
        self.routing_after_sub = None
        if arts is not None:
            artifacts_saved(self.artifacts, arts[0], skipped, self.logger, self.run_id)
        return cp

    async def _stage_failed(self, path: tuple, stage: Stage, addr: tuple, exc: BaseException, clock: tuple):
        """Report a stage that failed; what to raise (``exc`` itself when it propagates as it is)."""
        err, reraise = self._classify(exc, addr)
        if self._arts:  # all or nothing on disk: what the stage put is never written, unless put again
            self.artifacts.withhold(clock[4])
        if "stage:failure" in self.bus.heard:
            pending = self.bus.stage_failure(path, stage_id=stage.id, error=err, duration=_perf() - clock[0])
            if pending is not None:
                await pending
        return exc if reraise else err

    def _report(self, key: str, plan: StagePlan, stage: Stage, work: StageWork, decision, clock: tuple) -> float:
        """After the commit (``key``: the stage's address as text): the step budget, the history record, the
        artifacts; the stage's duration."""
        duration = _perf() - clock[0]
        if plan.record:
            # The state as committed (the next stage's input, shared); a store that merged the patches holds its own.
            self.history.add_stage(key, stage, decision, clock, duration, work,
                                   self.view() if plan.row else work.working)
        if stage.pipeline is None and self.drive.step_budget is not None:
            self.drive.spend_step()
        if work.results and not self._arts:  # a store that keeps artifacts had them recorded with its commit
            self.artifacts.record(key + "/", work.results, saved=True)  # nothing to write them to
        return duration

    async def _stage_paused(self, path: tuple, stage: Stage, instruction, t0: float, duration=None) -> None:
        if "stage:paused" in self.bus.heard:
            pending = self.bus.stage_paused(path, stage_id=stage.id, instruction=instruction,
                                            duration=_perf() - t0 if duration is None else duration)
            if pending is not None:
                await pending

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


def _looping(pipe: Pipeline, stage: Stage) -> RoutingError:
    return RoutingError(f"pipeline {pipe.id!r} exceeded max_transitions={pipe.max_transitions} (stopped before "
                        f"stage {stage.id!r}); a router probably loops forever", stage_id=stage.id)

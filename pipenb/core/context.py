"""``RunContext``: one run of one pipeline, and the controls a person has over it.

A context is what ``prepare``/``resume`` hand out and what the widgets drive:
run it (``run``, ``start``, ``step``, ``run_sync``), watch it (``on``,
``record``, ``history``), steer it (``request_pause``, ``breakpoints``,
``update_state``, ``abort``). The lifecycle itself (statuses, cursor, and
each drive's loop and abort signal) lives in ``lifecycle.Lifecycle`` and
``lifecycle.Drive``; the context reads them and steers them by their methods.
The controls are safe to call from another thread (JupyterLab runs widget
clicks on a subshell thread): they only set flags, or hand work to the run's
loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

from .artifacts import ArtifactContainer
from .breakpoints import Breakpoints
from .bus import EventBus
from .checkpoints import read_checkpoint
from . import interrupt
from .engine import Engine
from .steps import RunParts, StepRunner
from .errors import PipelineError, ResumeError, RunStateError
from .history import History, HistoryRow, StageRecord
from .kept import fork_source
from .keeper import RunKeeper
from .lifecycle import ABORTED, FAILED, PAUSED, PREPARED, RUNNING, Lifecycle
from .result import PipelineRunResult, Result
from .state import PIPELINE_DATA_KEY, is_mapping, run_note, user_view


class RunContext:
    """One run of one pipeline, and every control a person has over it.

    ``factory.prepare()`` and ``factory.resume()`` hand one out (wrapped in a ``Result``).
    Run it (``await run()``, ``start()`` in the background, ``await step()``, ``run_sync()``),
    watch it (``on``, ``record``, ``history``, ``state``, ``status``), steer it
    (``request_pause``, ``breakpoints``, ``update_state``, ``abort``). The controls are safe
    from another thread (a widget's click handler)::

        ctx = (await factory.prepare(initial_state={"n": 1})).unwrap()
        ctx.on("stage:success", lambda e: print(e.stage_address))
        result = (await ctx.run()).unwrap()
        result.status, ctx.history.diff(-1)
    """

    def __init__(
        self, *, pipeline, run_id: str, store, logger, entry: tuple,
        container: ArtifactContainer | None = None, status: str = PREPARED,
        keeper: RunKeeper | None = None, router_only: bool = False, history: History | None = None,
        executor=None,
    ):
        self.run_id = run_id
        self.pipeline_id = pipeline.id
        self.pipeline = pipeline
        self.store = store
        self.logger = logger
        self.artifacts = container if container is not None else ArtifactContainer()
        self.breakpoints = Breakpoints(pipeline)
        self.lifecycle = Lifecycle(run_id, status, entry, router_only, pipeline.id)
        self._bus = EventBus(run_id, logger)
        self._history = history
        if history is not None:
            history.definition = pipeline  # what ``history.stale()`` compares with
        self._parts = RunParts(run_id, self._bus, self.lifecycle, self.artifacts, logger)
        self._steps = StepRunner(self._parts, executor)
        # Told of each pause before run() returns (the registry arms its timer: a direct call, not a
        # "pipeline:paused" listener, so a pause builds no event nobody asked for), each finish, each rejoin.
        self._keeper = keeper
        self._view_src = None
        self._view = None

    # -- what a person looks at --------------------------------------------
    @property
    def status(self) -> str:
        """The run's status: ``"prepared"``, ``"running"``, ``"paused"``, ``"completed"``, ``"terminated"``, ``"failed"`` or ``"aborted"``."""
        return self.lifecycle.status

    @property
    def signal(self):
        """The current drive's ``AbortSignal`` (``signal.aborted`` turns true when the run is aborted)."""
        return self.lifecycle.signal

    @property
    def state(self):
        """The user state now (without the engine's reserved key)."""
        return self._user_state()

    def _user_state(self):
        snap = self.store.get()
        if snap is not self._view_src:
            self._view, self._view_src = user_view(snap), snap
        return self._view

    @property
    def checkpoint(self):
        """The stored ``PipelineCheckpoint`` (where a paused or failed run continues), or None."""
        return read_checkpoint(self.store, self.pipeline_id, self.run_id)

    @property
    def forked_from(self):
        """``ForkSource(run_id, at, seq)`` of the run this one was forked from (``factory.fork``), or None;
        kept in its store, so a fork read back from a SQLite file in another process says it too."""
        return fork_source(self.store.get())

    @property
    def position(self) -> str:
        """Address of the stage the run is at (running) or continues at (paused)."""
        return "/".join(self.lifecycle.cursor)

    @property
    def history(self) -> History:
        """One ``StageRecord`` per committed stage, oldest first (empty when the factory keeps none)."""
        return self._history if self._history is not None else History(self.state, 0)

    @property
    def pause_instruction(self):
        """The router's ``Pause`` of the current pause, if a router paused it."""
        return self.lifecycle.pause_instruction

    @property
    def pause_count(self) -> int:
        """How many times this run has paused so far."""
        return self.lifecycle.pause_count

    def committed_stages(self) -> set[str]:
        """Addresses of the stages that committed in this run so far (what a graph colours done)."""
        return self._history.addresses() if self._history is not None else set()

    def on(self, event: str, handler) -> Callable[[], None]:
        """Subscribe to an event name or ``"*"``; returns the unsubscribe function."""
        return self._bus.on(event, handler)

    def record(self):
        """An ``EventLog`` of this run's events from now on, built into events only when read.

        For views that keep every event (tables, graphs): recording costs one
        row of references per event and no object; ``log.close()`` stops it.
        """
        return self._bus.record()

    @property
    def recording(self) -> bool:
        """Whether some ``EventLog`` records this run now."""
        return self._bus.recording.rows is not None

    # -- running ------------------------------------------------------------
    async def run(self) -> Result:
        """Run (or continue) to completion, a pause, a failure or an abort.

        In a Jupyter cell the kernel's stop button ends the cell with
        ``KeyboardInterrupt`` and leaves the run aborted and resumable.
        """
        return await self._awaited(step=False)

    async def step(self) -> Result:
        """Run exactly one stage, then pause again (reason ``"step"``)."""
        return await self._awaited(step=True)

    async def _awaited(self, step: bool) -> Result:
        guard = interrupt.awaited()
        if guard is None:  # not a kernel's main thread: nothing to take over
            return await self._drive(step=step)
        guard.enter(self)
        try:
            result = await self._drive(step=step)
        finally:
            interrupted = guard.leave(self)
        if interrupted:
            raise KeyboardInterrupt(f"run {self.run_id} interrupted; it is {self.status} and can be resumed")
        return result

    def run_sync(self) -> Result:
        """``run()`` from a plain script or a Jupyter cell (the cell waits; ``start()`` keeps it live)."""
        from .sync import run_sync

        return run_sync(self.run(), on_interrupt=self._interrupted)

    def _interrupted(self) -> None:
        self.abort(KeyboardInterrupt("interrupted while run_sync() waited"))

    def start(self, step: bool = False) -> asyncio.Task:
        """Run as a background task on the running loop; the notebook cell returns at once.

        Sync steps run on pipenb's worker threads unless ``executor=`` says
        otherwise, so the kernel's loop stays free: widgets redraw, clicks land.
        ``step=True`` runs one stage, then pauses again.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise PipelineError(
                f"run {self.run_id}: start() needs a running event loop (a Jupyter kernel has one); "
                f"in a script use ctx.run_sync() or await ctx.run()"
            ) from None
        refused = self._claim(step=step, default_executor="thread")
        return loop.create_task(self._drive(step=step, refused=refused))

    def _claim(self, step: bool, default_executor: str = "inline") -> Result | None:
        """Claim a drive (None), or the error result saying why this run cannot run now."""
        life = self.lifecycle
        try:
            drive = life.claim(step, default_executor)
        except RunStateError as exc:
            return Result.err(exc)
        if self.store.leases:
            # One driver per run across processes: the store's lease, taken before anything runs.
            try:
                elsewhere = self.store.acquire(life.token)
            except PipelineError as exc:  # the store failed (locked, gone): the drive fails, resumable
                life.unclaim()
                life.stopped(FAILED)
                return Result.err(exc)
            if elsewhere is not None:
                life.unclaim()
                return Result.err(RunStateError(f"run {self.run_id} of pipeline {self.pipeline_id!r} {elsewhere}; "
                                                f"{self._lease_advice()}"))
        if drive.rejoin and self._keeper is not None:
            # The registry let this run go (its timeout) before this drive: it must know the run again,
            # or its pause would be listed as released and resume would not find it.
            self._keeper.rejoined(self)
        return None

    def _lease_advice(self) -> str:
        """What to do when the store's lease refused this context (only on that path: it reads the lease)."""
        if not self.store.is_current() and self.store.running_elsewhere() is None:
            # Taken over and left: this object is out of date, and resume builds the current one (never this one).
            return ("this object is out of date: run the context that factory.resume(run_id) returns now, which "
                    "has the run's current state")
        return ("wait for it to pause or end there, or stop that process (the next factory.resume(run_id) then "
                "takes the run over)")

    async def _drive(self, step: bool, refused: Result | None | bool = False) -> Result:
        """Drive the run; ``refused`` is the claim already made by ``start()`` (False: claim now)."""
        if refused is False:
            refused = self._claim(step)
        if refused is not None:
            return refused
        life = self.lifecycle
        drive = life.drive
        drive.bind()
        engine = Engine(self._parts, pipeline=self.pipeline, store=self.store, history=self._history,
                        view=self._user_state, breakpoints=self.breakpoints, steps=self._steps.for_drive(drive))
        try:
            outcome = await engine.run()
        finally:
            drive.release()
            if self.store.leases:
                try:
                    self.store.release_lease(life.token)
                except PipelineError as exc:
                    self.logger.error(f"run {self.run_id}: could not release its lease: {exc}", None)
        if outcome.error is not None:
            return Result.err(outcome.error)
        if outcome.status == PAUSED:
            cp = outcome.checkpoint
            if self._keeper is not None and self._keeper.paused(self.run_id, outcome.timeout):
                cp = self.checkpoint or cp  # the registry wrote the artifacts bundle into the stored one
            return Result.ok(PipelineRunResult(self.run_id, PAUSED, self.state, cp))
        if self._keeper is not None:
            self._keeper.finished(self.run_id)
        return Result.ok(PipelineRunResult(self.run_id, outcome.status, self.state, None))

    # -- steering -----------------------------------------------------------
    def abort(self, reason: Any = None) -> None:
        """Stop the run: an awaiting step is cancelled, a running sync step's stage is not committed."""
        drive = self.lifecycle.abort(reason)  # the running drive to interrupt, if any
        if drive is None:
            self._note_aborted()
            return
        loop = drive.loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == drive.thread:
            drive.interrupt()
        else:
            loop.call_soon_threadsafe(drive.interrupt)

    def _note_aborted(self) -> None:
        """A run aborted while it waited: its durable store says so too, so a list read from the file in another
        process shows it aborted, not paused (it stays resumable either way)."""
        if self.status != ABORTED or not self.store.durable or not self.store.is_current():
            return
        note = run_note(self.store.get())
        if note is not None and note.checkpoint is not None and note.status != ABORTED:
            try:
                self.store.set({PIPELINE_DATA_KEY: {"status": ABORTED}})
            except PipelineError as exc:
                self.logger.error(f"run {self.run_id}: could not note its abort in its store: {exc}", None)

    def request_pause(self, timeout: float | None = None) -> None:
        """Pause at the next stage boundary (``timeout`` as in ``Pause``)."""
        self.lifecycle.request_pause(timeout)

    def update_state(self, patch) -> None:
        """Edit the state of a run that is not running (paused, failed, ...) before resuming it.

        The edit is a record of the history (address ``"<stage> (edit)"``), so
        the next stage's ``state_before`` is the state it really starts from.
        A running, completed or terminated run raises ``RunStateError``.
        """
        if not is_mapping(patch):
            raise TypeError(f"update_state needs a mapping patch, got {type(patch).__name__}: {patch!r}")
        if PIPELINE_DATA_KEY in patch:
            raise PipelineError(f"run {self.run_id}: the key {PIPELINE_DATA_KEY!r} is reserved for the engine")
        life = self.lifecycle
        with life.lock:
            life.check_editable()  # RunStateError: running, or ended for good
            history = self._history
            if history is None:
                self.store.set(patch)
                return
            row = HistoryRow.of_edit(history.next_seq, self.position, patch, time.time())
            before = self.state
            with self.store.transaction():
                self.store.set(patch)
                if self.store.keeps_history:
                    self.store.append_history(row)
            history.add(StageRecord(0, row.address, None, row.label, row.patches[0], None, row.started, 0.0,
                                    self.state), before, self.artifacts.mark())

    def rebind(self, pipeline, executor=None) -> None:
        """Run ``pipeline`` (a newer definition with the same id), on ``executor``, from where this run continues.

        What ``factory.resume`` does: the factory you resume with decides the
        code and where it runs, so after the cell defining the pipeline was
        re-run, the next ``run()``/``step()`` executes the new step and router
        functions. A ``ResumeError`` names the address the new definition
        lacks (the context keeps its old one); a running context is never rebound.
        """
        if self.lifecycle.active or self.status == RUNNING:  # never rebind a running context
            return
        if pipeline.id != self.pipeline_id:
            raise ResumeError(f"run {self.run_id} belongs to pipeline {self.pipeline_id!r}, not {pipeline.id!r}")
        try:
            pipeline.resolve(self.lifecycle.cursor)
        except KeyError as exc:
            raise ResumeError(
                f"run {self.run_id} continues at {self.position!r}, which the new definition of pipeline "
                f"{pipeline.id!r} does not have ({exc.args[0]}); it keeps running the old definition"
            ) from None
        self.pipeline = self.breakpoints.pipeline = pipeline
        if self._history is not None:
            self._history.definition = pipeline
        self._steps.factory_executor = executor
        self._steps.replan()

    def is_current(self) -> bool:
        """Whether this object may still drive its run: no newer context of it was built in this process, and
        (a store with leases, e.g. SQLite) no other context or process took the run over since it was loaded."""
        if not self.lifecycle.is_driver:
            return False
        return not self.store.leases or self.store.is_current()

    def call_soon(self, fn: Callable, *args) -> bool:
        """Run ``fn(*args)`` on the loop this run lives on, from any thread; False when it has none running."""
        loop = self.lifecycle.drive.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return False
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            return False
        return True

    def __repr__(self) -> str:
        return f"<RunContext {self.pipeline_id!r} run {self.run_id} {self.status} at {self.position!r}>"


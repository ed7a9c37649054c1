"""The run lifecycle: statuses, what each allows, the run's facts and each drive's plumbing.

Every question "may this run do X now?" is answered here, by a predicate over
the status, so the context, the registry and the dashboard never restate the
lifecycle; a refusal is a ``RunStateError`` whose message says what to do
next (``refusal``). Two objects, split by how long they live:

- ``Lifecycle``: the run's facts, as long as the context lives: the status,
  the cursor (where the run is or continues), a person's pause request, the
  pauses so far, the driver generation, whether the registry let it go, and
  its lock. It moves only through named transitions (``claim``, ``let_go``,
  ``arrive``, ``move_to``, ``paused``, ``stopped``, ``finished``, ``abort``...).
- ``Drive``: one ``run()``/``step()``/``start()`` call's plumbing: the loop,
  thread and task driving it, the abort signal and abort future of this
  attempt, the step budget, whether user code may be cancelled, the default
  executor. ``claim`` makes a new one for each drive, so nothing of a drive
  outlives it: no field is ever reset by hand, and a late abort of an old
  drive cannot reach a new one.

Only this module assigns their fields (a test scans pipenb/ for it); the
engine, the step runner and the context call the methods.

One run, one driver: each context built for a run id (``prepare`` or a
resume that rebuilt it) takes a new generation of that run; an older object
of the same run refuses to run, so a run never executes twice at once.

The registry letting a run go (``let_go``) and a drive claiming it
(``claim``) take the same lock, so one of them happens first, whole: a run
claimed first is not let go; a run let go first is claimed knowing it
(``Drive.rejoin``), and its context hands itself back to the registry.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import threading
from typing import Any, Callable

from .errors import RunStateError

PREPARED = "prepared"
RUNNING = "running"
PAUSED = "paused"
COMPLETED = "completed"
TERMINATED = "terminated"
FAILED = "failed"
ABORTED = "aborted"
STATUSES = (PREPARED, RUNNING, PAUSED, COMPLETED, TERMINATED, FAILED, ABORTED)

ABORT = ("abort", None)  # what ``Lifecycle.arrive`` answers when the drive was aborted

FINISHED = frozenset({COMPLETED, TERMINATED})       # ended for good: nothing continues it
RESUMABLE = frozenset({PAUSED, FAILED, ABORTED})    # stopped with a checkpoint to continue from
WAITING = RESUMABLE | {PREPARED}                    # not running, can run: has a stage to continue at


def can_run(status: str) -> bool:
    """Run, resume, retry or step: a run that is not running and not finished."""
    return status in WAITING


def can_pause(status: str) -> bool:
    """Whether ``request_pause`` applies: only a ``"running"`` run."""
    return status == RUNNING


def can_abort(status: str) -> bool:
    """Whether ``abort`` applies: a running, paused or prepared run."""
    return status in (RUNNING, PAUSED, PREPARED)


def can_edit(status: str) -> bool:
    """``update_state`` before the run continues."""
    return status in WAITING


def is_finished(status: str) -> bool:
    """Whether the status is final (completed, terminated): nothing runs again."""
    return status in FINISHED


def is_resumable(status: str) -> bool:
    """Whether ``factory.resume`` can continue a run with this status."""
    return status in RESUMABLE


def check_timeout(value, what: str) -> float | None:
    """A pause timeout: seconds >= 0 (``inf`` = never expires) or None; a clear error otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be seconds >= 0 (inf: never expires) or None, got {value!r}")
    return float(value)


class AbortSignal:
    """Polled by long steps: ``if ctx.signal.aborted: return``."""

    __slots__ = ("aborted", "reason")

    def __init__(self):
        self.aborted = False
        self.reason: Any = None

    def __repr__(self) -> str:
        return f"AbortSignal(aborted={self.aborted}, reason={self.reason!r})"


# run id -> the generation of its current driver; unique numbers, so an old
# context never matches again, even after a finished run's entry is dropped.
_generations: dict[str, int] = {}
_counter = itertools.count(1)
_PID = os.getpid()


def _next_generation(run_id: str) -> int:
    gen = _generations[run_id] = next(_counter)
    return gen


def forget_driver(run_id: str) -> None:
    """A run ended for good (or was discarded): no context may drive it again from this process."""
    _generations.pop(run_id, None)


def refusal(status: str, action: str) -> str:
    """Why ``action`` ("run" or "edit") is not allowed in ``status``, and what to do next instead."""
    if status == RUNNING:
        if action == "edit":
            return ("is running; update_state edits a run that is not running: ctx.request_pause() (or wait "
                    "for a pause), then edit it")
        return ("is already running (one drive at a time); wait for it to end (the awaited run() or the task "
                "start() returned), or ctx.request_pause() / ctx.abort() it")
    if status in FINISHED:
        return (f"has {status} and stays so; prepare() a new run to start again, or factory.fork(run_id, at=...) "
                f"to rerun it from one of its stages")
    return f"is {status}"


class Drive:
    """One drive of a run (a ``run()``/``step()``/``start()`` call): its loop, task, abort signal, budget.

    Made by ``Lifecycle.claim``; the engine and the step runner read it and
    call its methods. The lifecycle keeps the newest one (``Lifecycle.drive``)
    also after it ended: an abort of a paused run raises its signal, which
    ``ctx.signal`` shows until the next drive brings a fresh one.
    """

    __slots__ = ("attempt", "signal", "step_budget", "default_executor", "resumed", "loop", "thread", "task",
                 "active", "cancellable", "abort_event", "rejoin")

    def __init__(self, attempt: int = 0, step: bool = False, default_executor: str = "inline", resumed: bool = False,
                 loop: asyncio.AbstractEventLoop | None = None, *, rejoin: bool = False):
        self.attempt = attempt                  # which drive of the run this is (1, 2, ...; 0: none yet)
        self.signal = AbortSignal()             # this attempt's abort: a late abort never reaches a later one
        self.step_budget: int | None = 1 if step else None  # stages left before a "step" pause
        self.default_executor = default_executor  # where sync steps run when no executor= says
        self.resumed = resumed                  # continues a stopped run: parents of the cursor are skipped
        self.loop = loop
        self.thread: int | None = threading.get_ident() if loop is not None else None
        self.task: asyncio.Task | None = None
        self.active = loop is not None          # an engine is driving (until run() returns)
        self.cancellable = False                # awaiting user code (async step, router, listener)
        self.abort_event: asyncio.Future | None = None  # done on the loop when an abort must stop a wait
        self.rejoin = rejoin                    # the registry had let the run go: the context must rejoin it

    def bind(self) -> None:
        """The task now driving (abort cancels its awaited user code)."""
        self.task = asyncio.current_task()

    def abort_future(self) -> asyncio.Future:
        """On the loop: a future that is done once this drive is aborted (executors stop waiting on it)."""
        fut = self.abort_event
        if fut is None:
            fut = self.abort_event = self.loop.create_future()
            if self.signal.aborted:
                fut.set_result(True)
        return fut

    def spend_step(self) -> None:
        """A stage with steps committed: one less before a "step" pause."""
        if self.step_budget is not None:
            self.step_budget -= 1

    def release(self) -> None:
        """The drive is over (whatever its outcome)."""
        self.cancellable = False
        self.active = False

    def interrupt(self) -> None:
        """On the loop: stop this drive's wait for user code, if it is still driving and was aborted."""
        if not self.active or not self.signal.aborted:
            return
        if self.abort_event is not None and not self.abort_event.done():
            self.abort_event.set_result(True)  # a step on a thread or executor: stop waiting for it
        task = self.task
        if self.cancellable and task is not None and not task.done():
            task.cancel()

    async def interruptible(self, awaitable):
        """Await user code (an async step, router or listener) that an abort may cancel."""
        self.cancellable = True
        try:
            return await awaitable
        finally:
            self.cancellable = False

    def uncancel(self) -> None:
        task = self.task
        if task is not None and hasattr(task, "uncancel"):  # Python 3.11+
            while task.cancelling():
                task.uncancel()

    def __repr__(self) -> str:
        return f"<Drive {self.attempt} active={self.active} {self.signal!r}>"


class Lifecycle:
    """One run's facts, as the engine moves them and the context reports them (``drive``: its newest drive)."""

    __slots__ = ("run_id", "pipeline_id", "status", "cursor", "router_only", "pause_request", "pause_count",
                 "pause_instruction", "attempts", "generation", "token", "lock", "drive", "released",
                 "_before_claim")

    def __init__(self, run_id: str, status: str, cursor: tuple, router_only: bool = False, pipeline_id: str = ""):
        self.run_id = run_id
        self.pipeline_id = pipeline_id
        self.status = status
        self.cursor = cursor            # the stage the run is at (running) or continues at
        self.router_only = router_only  # continue at the cursor's router: its sub-pipeline already ran
        self.pause_request: tuple | None = None  # (timeout,) when a person asked for a pause
        self.pause_count = 0            # pauses so far (registry timers check it)
        self.pause_instruction = None   # the router's Pause of the current pause, if any
        self.attempts = 0               # drives claimed so far (0: never ran)
        self.generation = _next_generation(run_id)
        # This context, in a store's lease (one driver per run across processes; the lease names the host).
        self.token = f"{_PID}-{self.generation}"
        self.lock = threading.Lock()
        self.drive = Drive()            # the newest drive (none yet: an idle one, whose signal abort raises)
        self.released = False           # the registry let the run go (dropped its strong reference) since
        self._before_claim: tuple | None = None

    @property
    def signal(self) -> AbortSignal:
        return self.drive.signal

    @property
    def active(self) -> bool:
        """An engine is driving this run now (until its run() returns)."""
        return self.drive.active

    @property
    def is_driver(self) -> bool:
        """False once a newer context of the same run was built (resume after expiry)."""
        return _generations.get(self.run_id) == self.generation

    def _name(self) -> str:
        return f"run {self.run_id} of pipeline {self.pipeline_id!r}" if self.pipeline_id else f"run {self.run_id}"

    # -- drives -----------------------------------------------------------------
    def claim(self, step: bool, default_executor: str = "inline") -> Drive:
        """Start a drive on the running loop: its new ``Drive``; ``RunStateError`` when the run cannot run now."""
        with self.lock:
            if self.drive.active or self.status == RUNNING:
                raise RunStateError(f"{self._name()} {refusal(RUNNING, 'run')}")
            if not can_run(self.status):
                raise RunStateError(f"{self._name()} {refusal(self.status, 'run')}")
            if not self.is_driver:
                raise RunStateError(f"{self._name()} {self._superseded()}")
            self._before_claim = (self.status, self.pause_request, self.drive, self.released)
            self.attempts += 1
            drive = self.drive = Drive(self.attempts, step, default_executor, self.status in RESUMABLE,
                                       asyncio.get_running_loop(), rejoin=self.released)
            self.released = False
            self.status = RUNNING
            self.pause_request = None
            self.pause_instruction = None
            return drive

    def unclaim(self) -> None:
        """The drive cannot start after all (another process drives the run): as before ``claim``."""
        with self.lock:
            self.drive.release()
            self.status, self.pause_request, self.drive, self.released = self._before_claim

    def _superseded(self) -> str:
        """Why this object may no longer drive its run (it is not the driver), and what to do instead."""
        if _generations.get(self.run_id) is None:
            return ("has no driver in this process any more: it was discarded (registry.discard) or finished "
                    "through another context of it; factory.resume(run_id) says whether anything is left to resume")
        how = ("the registry let this one go (its pause timeout, or it was out of date) and factory.resume built "
               "a newer context since" if self.released else
               "factory.resume built a newer context of the run in this process since")
        return (f"is driven by another object: {how}; this one may not run it. Run the context that "
                f"factory.resume(run_id) returns now instead")

    def let_go(self, release: Callable[[], bool]) -> bool:
        """The registry drops its strong reference: ``release()`` (its export) runs under the lock, so no drive
        can claim the run meanwhile; False, and nothing done, when a drive has claimed it (running)."""
        with self.lock:
            if self.status == RUNNING:
                return False
            if not release():
                return False
            self.released = True
            return True

    def take_router_only(self) -> tuple | None:
        """For a new drive: the stage whose router alone runs first (its sub-pipeline already ran), once."""
        at, self.router_only = (self.cursor if self.router_only else None), False
        return at

    def move_to(self, address: tuple) -> None:
        """The run is now at the stage ``address`` (or continues there)."""
        self.cursor = address

    # -- outcomes: set just before the run's last event, so its listeners see them
    def paused(self, resume_at: tuple, instruction) -> None:
        self.cursor = resume_at
        self.pause_instruction = instruction
        self.pause_count += 1
        self.status = PAUSED

    def stopped(self, status: str, router_only: bool = False, at: tuple | None = None) -> None:
        """Failed or aborted at the cursor (or at ``at``), which a retry runs again."""
        if at is not None:
            self.cursor = at
        self.status = status
        self.router_only = router_only

    def finished(self, status: str) -> None:
        self.status = status
        if self.is_driver:
            forget_driver(self.run_id)

    # -- steering (any thread) --------------------------------------------------
    def request_pause(self, timeout: float | None) -> None:
        """Pause at the next stage boundary (``timeout`` as in ``Pause``)."""
        self.pause_request = (check_timeout(timeout, "request_pause timeout"),)

    def abort(self, reason) -> Drive | None:
        """Raise the signal; the drive that must be interrupted on its loop, if one is running."""
        with self.lock:
            signal = self.drive.signal
            if self.status in FINISHED or self.status == ABORTED:
                return None
            signal.reason = reason
            signal.aborted = True
            if self.status != RUNNING:
                self.status = ABORTED
                return None
            return self.drive

    def check_editable(self) -> None:
        """``RunStateError`` unless the state may be edited now (call it holding ``lock``)."""
        if not can_edit(self.status):
            raise RunStateError(f"{self._name()} {refusal(self.status, 'edit')}")

    def arrive(self, address: tuple, leaf: bool, breakpoints, view=None) -> tuple[str, float | None] | None:
        """The run reaches the stage at ``address`` (the cursor moves there): whether to stop before it,
        ``ABORT`` (the drive was aborted), a pause (reason, timeout), or None. Once per stage: kept flat.
        ``view()``: the user state, for a conditional breakpoint (``Breakpoints.check``)."""
        self.cursor = address
        drive = self.drive
        if drive.signal.aborted:
            return ABORT
        if leaf:  # request and step pauses land on a stage with steps
            if self.pause_request is not None:
                timeout = self.pause_request[0]
                self.pause_request = None
                return "request", timeout
            if drive.step_budget is not None and drive.step_budget <= 0:
                return "step", None
        if breakpoints and "/".join(address) in breakpoints:
            check = getattr(breakpoints, "check", None)  # a plain set: unconditional breakpoints
            reason = "breakpoint" if check is None else check("/".join(address), view)
            if reason is not None:
                return reason, None
        return None

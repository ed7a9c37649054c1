"""The run lifecycle: statuses, what each allows, and the facts of one run's drive.

Every question "may this run do X now?" is answered here, by a predicate over
the status, so the context, the registry and the dashboard never restate the
lifecycle. ``Lifecycle`` holds what changes while a run is driven: the status,
the cursor (where the run is or continues), the pause request, the step
budget, the abort signal, the loop and task driving it. The engine receives
it as an argument and moves it forward through its methods; the context is
the person-facing surface over it.

One run, one driver: each context built for a run id (``prepare`` or a
resume that rebuilt it) takes a new generation of that run; an older object
of the same run refuses to run, so a run never executes twice at once.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import threading
from typing import Any

PREPARED = "prepared"
RUNNING = "running"
PAUSED = "paused"
COMPLETED = "completed"
TERMINATED = "terminated"
FAILED = "failed"
ABORTED = "aborted"
STATUSES = (PREPARED, RUNNING, PAUSED, COMPLETED, TERMINATED, FAILED, ABORTED)

FINISHED = frozenset({COMPLETED, TERMINATED})       # ended for good: nothing continues it
RESUMABLE = frozenset({PAUSED, FAILED, ABORTED})    # stopped with a checkpoint to continue from
WAITING = RESUMABLE | {PREPARED}                    # not running, can run: has a stage to continue at


def can_run(status: str) -> bool:
    """Run, resume, retry or step: a run that is not running and not finished."""
    return status in WAITING


def can_pause(status: str) -> bool:
    return status == RUNNING


def can_abort(status: str) -> bool:
    return status in (RUNNING, PAUSED, PREPARED)


def can_edit(status: str) -> bool:
    """``update_state`` before the run continues."""
    return status in WAITING


def is_finished(status: str) -> bool:
    return status in FINISHED


def is_resumable(status: str) -> bool:
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


class Lifecycle:
    """One run's drive, as the engine moves it and the context reports it."""

    __slots__ = ("run_id", "status", "cursor", "router_only", "resumed", "pause_request", "step_budget",
                 "signal", "loop", "thread", "task", "active", "attempt", "cancellable", "pause_count",
                 "pause_instruction", "generation", "lock", "abort_event", "default_executor", "token",
                 "_before_claim")

    def __init__(self, run_id: str, status: str, cursor: tuple, router_only: bool = False):
        self.run_id = run_id
        self.status = status
        self.cursor = cursor            # the stage the run is at (running) or continues at
        self.router_only = router_only  # continue at the cursor's router: its sub-pipeline already ran
        self.resumed = False
        self.pause_request: tuple | None = None  # (timeout,) when a person asked for a pause
        self.step_budget: int | None = None      # stages left before a "step" pause
        self.signal = AbortSignal()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: int | None = None
        self.task: asyncio.Task | None = None
        self.active = False       # an engine is driving (until run() returns)
        self.attempt = 0          # counts drives: a late abort never reaches a later attempt
        self.cancellable = False  # awaiting user code (async step, router, listener): abort cancels it
        self.pause_count = 0      # pauses so far (registry timers check it)
        self.pause_instruction = None  # the router's Pause of the current pause, if any
        self.generation = _next_generation(run_id)
        # This context, in a store's lease (one driver per run across processes; the lease names the host).
        self.token = f"{_PID}-{self.generation}"
        self._before_claim: tuple | None = None
        self.lock = threading.Lock()
        self.abort_event: asyncio.Future | None = None  # done on the loop when an abort must stop a wait
        self.default_executor = "inline"  # where sync steps run when no executor= says: "thread" under start()

    @property
    def is_driver(self) -> bool:
        """False once a newer context of the same run was built (resume after expiry)."""
        return _generations.get(self.run_id) == self.generation

    def claim(self, step: bool, default_executor: str = "inline") -> str | None:
        """Start a drive; the reason when this run cannot run now."""
        with self.lock:
            if self.active or self.status == RUNNING:
                return "is already running"
            if not can_run(self.status):
                return f"has {self.status}; prepare() a new run to start again"
            if not self.is_driver:
                return ("is driven by a newer context (it was resumed after this one was released); "
                        "use factory.resume(run_id) for the current one")
            self._before_claim = (self.status, self.signal, self.pause_request)
            self.resumed = self.status in RESUMABLE
            self.status = RUNNING
            self.signal = AbortSignal()
            self.pause_request = None
            self.pause_instruction = None
            self.step_budget = 1 if step else None
            self.default_executor = default_executor
            self.attempt += 1
            self.active = True
            self.loop = asyncio.get_running_loop()
            self.thread = threading.get_ident()
            return None

    def unclaim(self) -> None:
        """The drive cannot start after all (another process drives the run): as before ``claim``."""
        with self.lock:
            self.status, self.signal, self.pause_request = self._before_claim
            self.active = False
            self.step_budget = None

    def bind(self) -> None:
        """The task now driving (abort cancels its awaited user code)."""
        self.task = asyncio.current_task()
        self.abort_event = None

    def abort_future(self) -> asyncio.Future:
        """On the loop: a future that is done once this drive is aborted (executors stop waiting on it)."""
        fut = self.abort_event
        if fut is None:
            fut = self.abort_event = self.loop.create_future()
            if self.signal.aborted:
                fut.set_result(True)
        return fut

    def release(self) -> None:
        """The drive is over (whatever its outcome)."""
        self.step_budget = None
        self.cancellable = False
        self.active = False

    # -- outcomes: set just before the run's last event, so its listeners see them
    def paused(self, resume_at: tuple, instruction) -> None:
        self.cursor = resume_at
        self.pause_instruction = instruction
        self.pause_count += 1
        self.status = PAUSED

    def stopped(self, status: str, router_only: bool = False) -> None:
        """Failed or aborted at the cursor, which a retry runs again."""
        self.status = status
        self.router_only = router_only

    def finished(self, status: str) -> None:
        self.status = status
        if self.is_driver:
            forget_driver(self.run_id)

    # -- steering (any thread) --------------------------------------------------
    def abort(self, reason) -> bool:
        """Raise the signal; True when a running drive must be interrupted on its loop."""
        with self.lock:
            if self.status in FINISHED or self.status == ABORTED:
                return False
            self.signal.reason = reason
            self.signal.aborted = True
            if self.status != RUNNING:
                self.status = ABORTED
                return False
            return True

    def interrupt(self, attempt: int) -> None:
        """On the loop: stop drive ``attempt``'s wait for user code, if it is still that drive."""
        if attempt != self.attempt or not self.active or not self.signal.aborted:
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

    def take_pause_reason(self, leaf: bool, address: tuple, breakpoints, view=None) -> tuple[str, float | None] | None:
        """Whether to pause before the stage at ``address``: (reason, timeout) or None. ``view()``: the user state,
        for a conditional breakpoint (``Breakpoints.check``)."""
        if leaf and self.pause_request is not None:
            timeout = self.pause_request[0]
            self.pause_request = None
            return "request", timeout
        if leaf and self.step_budget is not None and self.step_budget <= 0:
            return "step", None
        if breakpoints and "/".join(address) in breakpoints:
            check = getattr(breakpoints, "check", None)  # a plain set: unconditional breakpoints
            reason = "breakpoint" if check is None else check("/".join(address), view)
            if reason is not None:
                return reason, None
        return None

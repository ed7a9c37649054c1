"""The kernel's stop button during a run a cell waits for (SPEC 13).

ipykernel turns an interrupt during an awaiting cell into a cancel of the
cell's task, scheduled from the signal handler *without waking the loop*: a
run waiting on a thread or an ``asyncio.sleep`` hears nothing until that wait
ends (seconds later), an inline sync step never hears it, and the cell ends
with ``CancelledError``. So while a cell awaits ``ctx.run()``/``ctx.step()``
(only then: in a Jupyter kernel, on the main thread) pipenb takes SIGINT
itself and gives the previous handler back when the drive ends:

- the signal lands while an awaited run's sync step executes inline (the
  task running is that drive's): ``KeyboardInterrupt`` is raised right
  there, and the engine leaves the run aborted, its stage uncommitted (SPEC 8);
- the loop is waiting (a step on a thread or an executor, an async step): the
  run is aborted through the loop, which is woken up; the awaiting ``run()``
  then raises ``KeyboardInterrupt``.

A run started with ``ctx.start()`` is never touched, not even its inline
steps on the same loop: only the drives that a cell awaits are registered
here. Outside a kernel nothing is installed.

The OS may hand a process's SIGINT to any thread that does not block it: a
thread that changes its signal mask while the signal is pending takes it
(starting a thread does; with one thread starting threads in a loop, about
half of the SIGINTs sent to a process whose main thread sleeps in ``select``
were taken elsewhere). Python then runs the handler on the main thread only
when that thread next runs Python code. A loop asleep in its selector
(a step on a thread, nothing else to do) would not run it until the step
ends, seconds later. So while the handler is installed, a wakeup fd the loop
reads (``signal.set_wakeup_fd``) wakes the loop whichever thread took it.

``raise_in_step`` is the same for a run driven by a sync twin on a worker
thread: a ``KeyboardInterrupt`` raised asynchronously in that thread when it
is executing the run's code.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import threading
from typing import Any


def _markers() -> tuple[frozenset, frozenset]:
    """(code that calls a sync step's action, all code that marks where a drive is), as (file, name) pairs."""
    global _MARKERS
    if _MARKERS is None:
        from . import engine, lifecycle, steps

        callers = frozenset((steps.__file__, name) for name in ("_each", "_call"))
        # ``interruptible`` is ``lifecycle.Drive.interruptible``: awaiting user code an abort may cancel.
        others = frozenset(
            [
                (steps.__file__, "_sync_steps"),
                (lifecycle.__file__, "interruptible"),
                *((engine.__file__, name) for name in ("_stage", "_run_sub", "_decide", "_commit", "_level", "run")),
            ]
        )
        _MARKERS = (callers, callers | others)
    return _MARKERS


_MARKERS: tuple | None = None


def in_sync_step(frame) -> bool:
    """Whether ``frame`` (a thread's innermost frame) is running a sync step's own code, called inline.

    Only there is a ``KeyboardInterrupt`` raised into the thread: the step's
    call is inside the stage's handling, which leaves the run aborted with its
    stage uncommitted. Anywhere else (the engine already handling an abort,
    an async step between awaits, the loop waiting) the abort goes through the
    loop instead. What ``_each``/``_call`` called must be the step's action
    (code outside pipenb.core), not the engine's own work between steps
    (merging a patch, emitting an event, waiting on an executor).
    """
    callers, markers = _markers()
    callee = None  # the frame the current one called
    while frame is not None:
        code = frame.f_code
        where = (code.co_filename, code.co_name)
        if where in markers:
            return where in callers and callee is not None and not _is_core(callee)
        callee = frame
        frame = frame.f_back
    return False


def _is_core(frame) -> bool:
    """Whether ``frame`` runs pipenb.core's own code (the module it was defined in; generated code says so too)."""
    return str(frame.f_globals.get("__name__", "")).startswith(_CORE)


_CORE = __name__.rpartition(".")[0] + "."  # "pipenb.core."


def raise_in_step(thread_ident: int | None) -> bool:
    """Raise ``KeyboardInterrupt`` in thread ``thread_ident`` if it is running a sync step inline."""
    if thread_ident is None:
        return False
    frame = sys._current_frames().get(thread_ident)
    if frame is None or not in_sync_step(frame):
        return False
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_ident), ctypes.py_object(KeyboardInterrupt))
    return True


class _Guard:
    """SIGINT taken by pipenb while cells await drives on the main thread; one handler for all of them."""

    def __init__(self):
        self.drives: dict[Any, bool] = {}  # context whose drive a cell awaits -> interrupted
        self.saved = None
        self.waker: _Waker | None = None

    def enter(self, ctx) -> None:
        """A cell awaits ``ctx``'s drive on the running loop: SIGINT is taken here until ``leave``."""
        if not self.drives:
            self.saved = signal.signal(signal.SIGINT, self._on_sigint)
            self.waker = _Waker.on(asyncio.get_running_loop())
        self.drives[ctx] = False

    def leave(self, ctx) -> bool:
        """The drive ended; whether the kernel interrupted it."""
        interrupted = self.drives.pop(ctx, False)
        if not self.drives:
            saved, self.saved = self.saved, None
            waker, self.waker = self.waker, None
            signal.signal(signal.SIGINT, saved if saved is not None else signal.default_int_handler)
            if waker is not None:
                waker.close()
        return interrupted

    def _on_sigint(self, signum, frame) -> None:
        # A signal handler may not take locks the interrupted code holds: the abort goes through the
        # loop (call_soon_threadsafe also wakes it), and only a flag is set here.
        reason = KeyboardInterrupt("interrupted by the kernel's stop button")
        for ctx in self.drives:
            self.drives[ctx] = True
            ctx.call_soon(ctx.abort, reason)
        if in_sync_step(frame) and self._awaited_task_runs():
            raise KeyboardInterrupt

    def _awaited_task_runs(self) -> bool:
        """Whether the task running now drives one of the awaited runs. An inline step of a ``ctx.start()``
        run also runs on the kernel's loop: raised there, the interrupt would abort that run, and escaping its
        task it would stop the kernel's loop (the kernel dies)."""
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no loop runs in this thread
            return False
        return task is not None and any(ctx.lifecycle.drive.task is task for ctx in self.drives)


class _Waker:
    """A wakeup fd the loop reads while the guard is installed: a SIGINT taken by any thread wakes the loop,
    and waking it is what lets the main thread run the Python handler."""

    def __init__(self, loop, pair, previous: int):
        self.loop, self.pair, self.previous = loop, pair, previous

    @classmethod
    def on(cls, loop) -> _Waker | None:
        """Installed on ``loop``; None where it cannot be (another wakeup fd is set, a loop without readers)."""
        try:
            pair = socket.socketpair()
        except OSError:  # out of file descriptors: the handler still works, woken by the loop's own events
            return None
        for sock in pair:
            sock.setblocking(False)
        try:
            loop.add_reader(pair[0].fileno(), _drain, pair[0])
        except (NotImplementedError, RuntimeError):
            _close(pair)
            return None
        previous = signal.set_wakeup_fd(pair[1].fileno(), warn_on_full_buffer=False)
        if previous != -1:  # someone else's wakeup fd (their loop's signal handlers): leave it in place
            signal.set_wakeup_fd(previous)
            loop.remove_reader(pair[0].fileno())
            _close(pair)
            return None
        return cls(loop, pair, previous)

    def close(self) -> None:
        signal.set_wakeup_fd(self.previous)
        if not self.loop.is_closed():
            self.loop.remove_reader(self.pair[0].fileno())
        _close(self.pair)


def _drain(sock) -> None:
    try:
        while sock.recv(512):
            pass
    except OSError:  # drained (BlockingIOError) or closed meanwhile
        pass


def _close(pair) -> None:
    for sock in pair:
        sock.close()


_guard = _Guard()


def awaited() -> _Guard | None:
    """The guard for a drive a cell awaits, or None where pipenb leaves SIGINT alone (outside a kernel,
    off the main thread)."""
    app = sys.modules.get("ipykernel.kernelapp")
    if app is None or threading.current_thread() is not threading.main_thread():
        return None
    return _guard if app.IPKernelApp.initialized() else None

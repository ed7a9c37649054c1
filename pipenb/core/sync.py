"""``run_sync``: finish an awaitable from a plain script or a Jupyter cell, leaving asyncio as it was.

In a script no loop runs, so ``asyncio.run`` does it. In a Jupyter cell the
kernel's loop is already running in this thread and may not be re-entered:
re-entering it (what nest-asyncio did) loses the cells queued behind on
ipykernel 7, and patching asyncio breaks other libraries (Dask on 3.12+). So
the awaitable runs to completion on a **private loop in a worker thread**,
with a copy of the caller's context variables (output lands in the calling
cell), while the caller waits and then gets its value or its exception.

The trade-off: while a sync twin blocks a cell, the kernel's own loop waits
too (a ``ctx.start()`` run, widget redraws). ``ctx.start()`` is the way to
keep a notebook live.

Interrupt (the kernel's stop button) while the caller waits: the work is
cancelled on its loop (``on_interrupt``, when given, does it instead: a run
aborts itself), a sync step running Python code on the worker gets a
``KeyboardInterrupt`` of its own, the caller waits a moment for the worker to
wind down and raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")

_WIND_DOWN = 1.0  # seconds an interrupted caller waits for the worker to end the work
# The caller waits in slices: the OS may hand SIGINT to another thread, and Python runs the handler on the
# main thread only when it runs Python code again; an unbounded wait would not until the work ends.
_SLICE = 0.1


def run_sync(awaitable: Awaitable[T], *, on_interrupt: Callable[[], None] | None = None) -> T:
    """Run ``awaitable`` to completion and return its value (or raise its exception).

    Works in a plain script (``asyncio.run``) and in a Jupyter cell (a private
    loop on a worker thread; the kernel's loop and asyncio are left untouched).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:  # outside the except block: errors of the run must not carry "no running event loop"
        return asyncio.run(_awaited(awaitable))
    if asyncio.isfuture(awaitable) and awaitable.get_loop() is loop:
        _close(awaitable)
        raise RuntimeError(
            "run_sync cannot wait for a task of the loop running in this thread: it would block that loop "
            "while waiting for it; use `await` instead"
        )
    return _Beside(awaitable).wait(on_interrupt)


async def _awaited(awaitable):
    return await awaitable


def _close(awaitable) -> None:
    if asyncio.iscoroutine(awaitable):
        awaitable.close()


class _Beside:
    """An awaitable driven on a private loop in a worker thread, and the caller waiting for it."""

    def __init__(self, awaitable):
        self._awaitable = awaitable
        self._done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._value = None
        self._error: BaseException | None = None
        context = contextvars.copy_context()  # the cell's variables: output goes to the calling cell
        self._thread = threading.Thread(target=context.run, args=(self._main,), name="pipenb-sync", daemon=True)

    def wait(self, on_interrupt):
        try:
            self._thread.start()  # inside: under load the interrupt can land while start() waits
            while not self._done.wait(_SLICE):
                pass
        except KeyboardInterrupt:
            self._interrupt(on_interrupt)
            raise
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._value

    def _main(self) -> None:
        try:
            self._value = asyncio.run(self._drive())
        except BaseException as exc:  # noqa: B036 - handed to the waiting caller, which raises it
            self._error = exc
        finally:
            self._done.set()

    async def _drive(self):
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        return await self._awaitable

    def _interrupt(self, on_interrupt) -> None:
        """The caller was interrupted: stop the work, give it a moment to end cleanly."""
        loop, task = self._loop, self._task
        if on_interrupt is not None:
            on_interrupt()
        elif loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile: the work is over
                pass
        from . import interrupt

        interrupt.raise_in_step(self._thread.ident)
        deadline = time.monotonic() + _WIND_DOWN
        while (left := deadline - time.monotonic()) > 0:
            try:
                if self._done.wait(left):
                    return
            except KeyboardInterrupt:  # pressed again: the deadline still holds
                continue

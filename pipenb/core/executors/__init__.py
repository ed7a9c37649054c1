"""Where a step's action runs (SPEC section 8): inline, a pipenb thread, any Executor, or a Dask client.

This module is the one face the engine uses; it exists to turn "run this sync action there" into one
awaitable that never blocks the run's loop and stops waiting at once on abort. The pool behind
``"thread"`` is :mod:`pipenb.core.executors.pool`; shipping calls to another process is :mod:`pipenb.core.executors.remote`
(both re-exported here, neither imports this module).

The engine hands every sync action to :func:`call` (or several to :func:`call_batch`, one hop for a
whole stage) and awaits it::

    executor.check_executor(value, "stage 'load'")          # at definition time: DefinitionError
    ex = executor.resolve(step.executor, stage.executor, factory.executor, default="thread")
    out = await executor.call(ex, action, (state,), where="step 'a' of stage 'load'",
                              stage_id="load", step_id="a", abort_event=run_abort_future)

Values of ``executor=``:

* ``"inline"``: the action is called on the loop's thread (no hop at all).
* ``"thread"``: a worker of :data:`SHARED_POOL`, pipenb's own pool; its threads are named
  ``pipenb-step-0``, ``pipenb-step-1``... so tracebacks and ``py-spy`` show them as pipenb's.
* a ``concurrent.futures.ThreadPoolExecutor``: its threads, in this process.
* any other ``concurrent.futures.Executor`` (process pools, loky, ``Client.get_executor()``) and a
  ``distributed.Client``: out of process. The call travels as cloudpickle bytes, so lambdas and
  functions defined in a notebook work; see :func:`call`.

Local threads run the action inside a copy of the caller's ``contextvars`` context, which is how
ipykernel knows which cell a ``print``/``logging``/``tqdm`` output belongs to.

Abort: ``abort_event`` is an ``asyncio.Future`` (the run's abort future: done means aborted; the
cheap way, a done-callback per call) or an ``asyncio.Event`` (a task waits on it for each call,
some microseconds more). When it fires while a call is out, the awaiting coroutine raises
:class:`Abandoned` at once (it does not wait for the thread or worker), the future is cancelled where
the executor can, and ``Abandoned.late`` is a future the engine may watch to log the late result.

Only the standard library and pipenb.core's errors, pool and remote are imported here (``import
pipenb`` stays light: cloudpickle and ``distributed`` are imported by remote, on first use).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import functools
import inspect
from typing import Any, Callable, NamedTuple, Sequence

from . import pool as _pool
from . import remote
from ..errors import AbortedError, DefinitionError, StepError
from .pool import StepThreadPool, shared_pool
from .remote import DASK_EXTRA_HINT, RemoteStepContext, describe, is_dask_client

__all__ = [
    "Abandoned", "Call", "DASK_EXTRA_HINT", "EXECUTOR_NAMES", "RemoteStepContext", "StepThreadPool", "call",
    "call_batch", "check_executor", "describe", "is_dask_client", "is_local", "resolve", "shared_pool",
]

EXECUTOR_NAMES = ("inline", "thread")


def __getattr__(name):
    # SHARED_POOL is created on first use: importing pipenb starts no thread.
    if name == "SHARED_POOL":
        return _pool.SHARED_POOL
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Kinds of executors
# --------------------------------------------------------------------------------------------------


def check_executor(value: object, where: str) -> None:
    """Raise DefinitionError unless ``value`` is a valid ``executor=`` (None included).

    ``where`` names the culprit in the message, e.g. ``"stage 'load'"`` or ``"step 'a' of stage 'load'"``.
    """
    if value is None or isinstance(value, cf.Executor) or is_dask_client(value):
        return
    if isinstance(value, str):
        if value in EXECUTOR_NAMES:
            return
        raise DefinitionError(
            f"{where}: unknown executor={value!r}; use 'inline', 'thread', a concurrent.futures.Executor "
            f"or a dask distributed Client"
        )
    if isinstance(value, type) and (issubclass(value, cf.Executor) or value.__name__ == "Client"):
        raise DefinitionError(
            f"{where}: executor={value.__name__} is a class; pass an instance, e.g. executor={value.__name__}()"
        )
    raise DefinitionError(
        f"{where}: executor={value!r} ({type(value).__name__}) is not an executor; use 'inline', 'thread', "
        f"a concurrent.futures.Executor or a dask distributed Client"
    )


def resolve(step_value: object, stage_value: object, factory_value: object, default: str) -> object:
    """The executor a step runs on: the nearest of step, stage and factory that is not None, else ``default``."""
    if default not in EXECUTOR_NAMES:
        raise ValueError(f"default executor must be one of {EXECUTOR_NAMES}, not {default!r}")
    for value in (step_value, stage_value, factory_value):
        if value is not None:
            return value
    return default


def is_local(executor: object) -> bool:
    """True when the executor runs in this process (no pickling): inline, "thread", thread pools."""
    return executor in EXECUTOR_NAMES or isinstance(executor, (cf.ThreadPoolExecutor, StepThreadPool))


# --------------------------------------------------------------------------------------------------
# Calls
# --------------------------------------------------------------------------------------------------


class Call(NamedTuple):
    """One action to run: ``fn(*args)``; ``where`` names it in messages, the ids go on StepError."""

    fn: Callable
    args: tuple = ()
    where: str = "step"
    stage_id: str = ""
    step_id: str = ""


class Abandoned(AbortedError):
    """The run was aborted while a call was out; the awaiting coroutine stopped waiting.

    ``late`` is an asyncio future that settles if the action finishes anyway (its result is dropped;
    the engine may add a done-callback to log it), or None when nothing more will come.
    """

    def __init__(self, message: str, *, where: str = "", executor: str = "", late: asyncio.Future | None = None):
        super().__init__(message, reason="abandoned")
        self.where = where
        self.executor = executor
        self.late = late

    def __reduce__(self):  # ``late`` belongs to this process's loop: it does not travel
        rebuild, args, state = super().__reduce__()
        return rebuild, args, {**state, "late": None}


async def call(executor: object, fn: Callable, args: tuple = (), *, where: str = "step", stage_id: str = "",
               step_id: str = "", abort_event: asyncio.Future | asyncio.Event | None = None) -> Any:
    """Run ``fn(*args)`` on ``executor`` and return its result, without blocking the loop.

    * async ``fn`` (coroutine function): awaited on the running loop, whatever the executor.
    * ``"inline"``: called right here, on the loop's thread.
    * ``"thread"`` / thread pools: called on a pool thread inside ``contextvars.copy_context()``.
    * other executors and Dask clients: ``(fn, args)`` are cloudpickled here; a value that cannot be
      pickled gives StepError naming ``where``, the executor and the culprit (the dict key for a
      state dict). The result comes back by cloudpickle too. An exception raised by ``fn`` is raised
      here as is, with the remote traceback as its ``__cause__``; a failure of the executor itself
      (shut down, closed client, worker died, the call could not be loaded there) is a StepError.

    ``abort_event`` done (a future) or set (an event) while waiting: the future is cancelled where
    possible and :class:`Abandoned` is raised at once. Cancelling the awaiting task has the same
    effect (CancelledError re-raised).
    """
    if _is_async(fn):
        return await fn(*args)
    return await _dispatch(executor, [Call(fn, args, where, stage_id, step_id)], abort_event, True, _single)


async def call_batch(executor: object, calls: Sequence[Call], *,
                     abort_event: asyncio.Future | asyncio.Event | None = None,
                     stop_on_error: bool = True) -> list[tuple[bool, Any]]:
    """Run several sync calls, in order, in ONE hop to the executor; returns ``[(ok, result_or_exception)]``.

    With ``stop_on_error`` the calls after the first failing one are not run (the list is shorter).
    Exceptions raised by the actions are returned, not raised; executor failures (StepError) and
    :class:`Abandoned` are raised. Async actions are not accepted here (run them with :func:`call`).
    """
    calls = [c if isinstance(c, Call) else Call(*c) for c in calls]
    for c in calls:
        if _is_async(c.fn):
            raise TypeError(f"{c.where}: call_batch takes sync callables only; await call() for async actions")
    if not calls:
        return []
    return await _dispatch(executor, calls, abort_event, stop_on_error, _identity)


def _is_async(fn) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn)


def _run_calls(calls: Sequence[Call], stop_on_error: bool) -> list[tuple[bool, Any]]:
    out = []
    for c in calls:
        try:
            out.append((True, c.fn(*c.args)))
        except BaseException as exc:  # noqa: B036 - handed back to the loop, which re-raises it
            out.append((False, exc))
            if stop_on_error:
                break
    return out


def _single(outcomes: list[tuple[bool, Any]]) -> Any:
    ok, value = outcomes[0]
    if ok:
        return value
    raise value


def _identity(outcomes):
    return outcomes


async def _dispatch(executor, calls: list[Call], abort_event, stop_on_error, finish: Callable) -> Any:
    """Run ``calls`` on ``executor``; ``finish`` turns the list of outcomes into what the caller gets."""
    first = calls[0]
    if executor == "inline":
        return finish(_run_calls(calls, stop_on_error))
    if abort_event is not None and _is_aborted(abort_event):
        raise Abandoned(f"{first.where} was not started: the run is aborted", where=first.where,
                        executor=describe(executor))
    loop = asyncio.get_running_loop()
    if executor == "thread" or isinstance(executor, StepThreadPool):
        pool = shared_pool() if executor == "thread" else executor
        fut = loop.create_future()
        ctx = contextvars.copy_context()

        def job():
            try:
                result = ctx.run(_run_calls, calls, stop_on_error)
            except BaseException as exc:
                _settle_threadsafe(loop, fut, None, exc)
            else:
                _settle_threadsafe(loop, fut, result, None)

        try:
            pool.post(job)
        except RuntimeError as exc:
            raise _unavailable(first, executor, exc) from exc
        return finish(await _wait(fut, None, first, executor, abort_event, finish))
    if isinstance(executor, cf.ThreadPoolExecutor):
        ctx = contextvars.copy_context()
        try:
            cfut = executor.submit(ctx.run, _run_calls, calls, stop_on_error)
        except RuntimeError as exc:
            raise _unavailable(first, executor, exc) from exc
        return finish(await _wait(asyncio.wrap_future(cfut, loop=loop), cfut, first, executor, abort_event, finish))
    return await _dispatch_remote(executor, calls, abort_event, stop_on_error, loop, finish)


def _is_aborted(abort_event) -> bool:
    return abort_event.done() if isinstance(abort_event, asyncio.Future) else abort_event.is_set()


def _settle_threadsafe(loop, fut, result, exc) -> None:
    try:
        loop.call_soon_threadsafe(_settle, fut, result, exc)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _settle(fut: asyncio.Future, result, exc) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


async def _wait(fut: asyncio.Future, cfut, first: Call, executor, abort_event, finish: Callable):
    """Await ``fut``; on abort (future done, event set or task cancelled) cancel what can be and stop waiting.

    On abort, ``Abandoned.late`` settles with ``finish(fut's result)`` if the call completes anyway.
    """
    if abort_event is None:
        try:
            return await fut
        except asyncio.CancelledError:
            _abandon(fut, cfut)
            raise
    loop = fut.get_loop()
    gate = loop.create_future()

    def open_gate(_):
        if not gate.done():
            gate.set_result(None)

    if isinstance(abort_event, asyncio.Future):
        signal, watcher = abort_event, None  # the run's abort future: a done-callback, no task
    else:  # an asyncio.Event offers no callback: a task waits on it
        signal = watcher = loop.create_task(abort_event.wait())
    fut.add_done_callback(open_gate)
    signal.add_done_callback(open_gate)
    try:
        await gate
    except asyncio.CancelledError:
        _abandon(fut, cfut)
        raise
    finally:
        fut.remove_done_callback(open_gate)
        signal.remove_done_callback(open_gate)
        if watcher is not None and not watcher.done():
            watcher.cancel()
    if fut.done():
        return fut.result()
    _abandon(fut, cfut)
    late = loop.create_future()
    late.add_done_callback(_swallow)  # nobody has to look at it
    fut.add_done_callback(functools.partial(_transfer, late, finish))
    name = describe(executor)
    raise Abandoned(f"{first.where} on {name} was abandoned: the run was aborted while it ran",
                    where=first.where, executor=name, late=late)


def _abandon(fut: asyncio.Future, cfut) -> None:
    """Cancel the executor's future where it can be; never leave an unretrieved exception behind."""
    if cfut is not None:
        cfut.cancel()
    fut.add_done_callback(_swallow)


def _transfer(late: asyncio.Future, finish: Callable, fut: asyncio.Future) -> None:
    if late.done():
        return
    if fut.cancelled():
        late.cancel()
        return
    exc = fut.exception()
    if exc is not None:
        late.set_exception(exc)
        return
    try:
        late.set_result(finish(fut.result()))
    except BaseException as err:  # noqa: B036 - a failed late call: hand it on
        late.set_exception(err)


def _swallow(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()


def _unavailable(first: Call, executor, exc: BaseException) -> StepError:
    return StepError(
        f"{first.where} cannot run on {describe(executor)}: it is shut down or closed "
        f"({type(exc).__name__}: {exc})",
        stage_id=first.stage_id, step_id=first.step_id,
    )


async def _dispatch_remote(executor, calls: list[Call], abort_event, stop_on_error, loop, finish):
    first = calls[0]
    payload = remote.pack(calls, executor, stop_on_error)
    try:
        cfut = remote.submit(executor, payload, first)
    except StepError:
        raise
    except Exception as exc:
        raise _unavailable(first, executor, exc) from exc
    try:
        raw = await _wait(asyncio.wrap_future(cfut, loop=loop), cfut, first, executor, abort_event,
                          lambda raw: finish(remote.unpack(raw, calls, executor)))
    except (Abandoned, asyncio.CancelledError):
        raise
    except Exception as exc:  # the executor failed, not the action: worker died, closed client...
        raise StepError(
            f"{first.where} failed on {describe(executor)} before returning a result ({type(exc).__name__}: {exc})",
            stage_id=first.stage_id, step_id=first.step_id,
        ) from exc
    return finish(remote.unpack(raw, calls, executor))

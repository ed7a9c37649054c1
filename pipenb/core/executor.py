"""Where a step's action runs (SPEC section 8): inline, a pipenb thread, any Executor, or a Dask client.

The engine hands every sync action to :func:`call` (or several to :func:`call_batch`, one hop for a
whole stage) and awaits it without blocking the run's loop::

    executor.check_executor(value, "stage 'load'")          # at definition time: DefinitionError
    ex = executor.resolve(step.executor, stage.executor, factory.executor, default="thread")
    out = await executor.call(ex, action, (state,), where="step 'a' of stage 'load'",
                              stage_id="load", step_id="a", abort_event=ev)

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

Abort: when ``abort_event`` is set while a call is out, the awaiting coroutine raises
:class:`Abandoned` at once (it does not wait for the thread or worker), the future is cancelled where
the executor can, and ``Abandoned.late`` is a future the engine may watch to log the late result.

Only the standard library, cloudpickle and ``pipenb.core.errors`` are imported here; cloudpickle on
the first out-of-process call (``import pipenb`` stays light), and ``distributed`` never at module
import: a Client is recognised by its class's module and name.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures as cf
import contextvars
import functools
import inspect
import itertools
import logging
import os
import pickle
import queue
import threading
import uuid
from typing import Any, Callable, NamedTuple, Sequence

from .errors import AbortedError, DefinitionError, StepError

__all__ = [
    "Abandoned", "Call", "EXECUTOR_NAMES", "RemoteStepContext", "StepThreadPool", "call", "call_batch",
    "check_executor", "describe", "is_dask_client", "is_local", "resolve", "shared_pool",
]

EXECUTOR_NAMES = ("inline", "thread")
DASK_EXTRA_HINT = 'pip install "pipenb[dask]"'

_log = logging.getLogger("pipenb.executor")


# --------------------------------------------------------------------------------------------------
# The shared thread pool
# --------------------------------------------------------------------------------------------------


class StepThreadPool(cf.Executor):
    """A small thread pool with a fast hand-off to an asyncio loop.

    Like ``ThreadPoolExecutor`` (threads start lazily, up to ``max_workers``, reused when idle), but
    threads are named ``f"{prefix}-{n}"`` and :meth:`post` takes a bare callable without creating a
    ``concurrent.futures.Future``: :func:`call` uses it to settle an asyncio future directly with
    ``loop.call_soon_threadsafe``, which halves the cost of a round trip compared with
    ``loop.run_in_executor``. Threads are daemons: a step left running (abandoned after an abort)
    never blocks the kernel or interpreter from exiting.
    """

    def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "pipenb-step"):
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._counter = itertools.count()
        self._shutdown = False

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def post(self, job: Callable[[], None]) -> None:
        """Run ``job()`` on a pool thread; ``job`` must catch its own exceptions."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        self._queue.put(job)
        if self._idle.acquire(blocking=False):
            return  # an idle worker will take it
        with self._lock:
            if len(self._threads) < self._max_workers and not self._shutdown:
                t = threading.Thread(
                    target=_pool_worker, args=(self._queue, self._idle),
                    name=f"{self._prefix}-{next(self._counter)}", daemon=True,
                )
                t.start()
                self._threads.append(t)

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        fut: cf.Future = cf.Future()

        def job():
            if not fut.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

        self.post(job)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shutdown:
                threads = []
            else:
                self._shutdown = True
                if cancel_futures:
                    while True:
                        try:
                            self._queue.get_nowait()
                        except queue.Empty:
                            break
                self._queue.put(None)  # each worker passes the sentinel on, then exits
                threads = list(self._threads)
        if wait:
            me = threading.current_thread()
            for t in threads:
                if t is not me:
                    t.join()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else f"{len(self._threads)}/{self._max_workers} threads"
        return f"<StepThreadPool {self._prefix!r} {state}>"


def _pool_worker(q: queue.SimpleQueue, idle: threading.Semaphore) -> None:
    while True:
        job = q.get()
        if job is None:
            q.put(None)
            return
        try:
            job()
        except BaseException:  # a job should not raise; never let it kill the worker
            _log.exception("pipenb step thread: a job raised")
        del job
        idle.release()


_shared_pool: StepThreadPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> StepThreadPool:
    """The pool behind ``executor="thread"``, created on first use (``min(32, cpu + 4)`` threads)."""
    global _shared_pool
    pool = _shared_pool
    if pool is None or pool._shutdown:
        with _shared_lock:
            if _shared_pool is None or _shared_pool._shutdown:
                _shared_pool = StepThreadPool(thread_name_prefix="pipenb-step")
            pool = _shared_pool
    return pool


def __getattr__(name):
    # SHARED_POOL is created on first use: importing pipenb starts no thread.
    if name == "SHARED_POOL":
        return shared_pool()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Kinds of executors
# --------------------------------------------------------------------------------------------------


def _is_distributed(value: object, class_name: str) -> bool:
    t = type(value)
    return (t.__module__ or "").startswith("distributed") and any(
        c.__name__ == class_name and (c.__module__ or "").startswith("distributed") for c in t.__mro__
    )


def is_dask_client(value: object) -> bool:
    """True for a ``distributed.Client`` (without importing distributed)."""
    return _is_distributed(value, "Client")


def _is_dask_executor(value: object) -> bool:
    return _is_distributed(value, "ClientExecutor")


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


def describe(executor: object) -> str:
    """A short human name for messages: 'inline', 'thread', 'ProcessPoolExecutor', 'dask Client tcp://...'."""
    if isinstance(executor, str):
        return executor
    if is_dask_client(executor) or _is_dask_executor(executor):
        client = executor if is_dask_client(executor) else getattr(executor, "_client", None)
        address = None
        try:
            address = client.scheduler.address  # type: ignore[union-attr]
        except Exception:
            pass
        name = "dask Client" if client is executor else "dask Client.get_executor()"
        return f"{name} {address}" if address else name
    return type(executor).__name__


def is_local(executor: object) -> bool:
    """True when the executor runs in this process (no pickling): inline, "thread", thread pools."""
    return executor in EXECUTOR_NAMES or isinstance(executor, (cf.ThreadPoolExecutor, StepThreadPool))


# --------------------------------------------------------------------------------------------------
# The context a step gets out of process
# --------------------------------------------------------------------------------------------------


class _NeverAborted:
    """The ``signal`` of a remote step: an abort is handled by cancelling its future, never seen here."""

    __slots__ = ()
    aborted = False
    reason = None

    def __repr__(self) -> str:
        return "AbortSignal(aborted=False, remote)"


def _make_step_error(message: str, stage_id: str, step_id: str) -> StepError:
    return StepError(message, stage_id=stage_id, step_id=step_id)


class _SendableStepError(StepError):
    """A StepError raised on a worker: travels back as a plain StepError (StepError's keyword-only
    __init__ does not survive pickling by itself)."""

    def __reduce__(self):
        return _make_step_error, (str(self), self.stage_id, self.step_id)


class RemoteStepContext:
    """The slim, picklable StepContext a step gets on a process pool or a Dask worker.

    ``run_id``, ``stage_id``, ``step_id`` and ``path`` as on the loop; ``signal.aborted`` is always
    False; ``progress()`` does nothing; ``logger`` is a plain logger of the worker process;
    ``artifacts`` raises StepError (they live in the notebook's process).
    """

    __slots__ = ("run_id", "stage_id", "step_id", "path", "executor_name")

    signal = _NeverAborted()

    def __init__(self, run_id, stage_id, step_id, path=(), executor_name: str = "an out-of-process executor"):
        self.run_id = run_id
        self.stage_id = stage_id
        self.step_id = step_id
        self.path = path
        self.executor_name = executor_name

    @classmethod
    def from_context(cls, ctx: Any, executor: object) -> RemoteStepContext:
        """Build one from a StepContext (or anything with run_id, stage_id, step_id, path)."""
        return cls(ctx.run_id, ctx.stage_id, ctx.step_id, tuple(getattr(ctx, "path", ()) or ()), describe(executor))

    @property
    def artifacts(self):
        raise _SendableStepError(
            f"step {self.step_id!r} of stage {self.stage_id!r} runs on {self.executor_name}: ctx.artifacts "
            f"is not available out of process; return the value in the step's patch, or run the step with "
            f"executor='thread'",
            stage_id=self.stage_id, step_id=self.step_id,
        )

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(f"pipenb.step.{self.stage_id}.{self.step_id}")

    def progress(self, *args, **kwargs) -> None:
        """No-op out of process."""

    def __getstate__(self):
        return (self.run_id, self.stage_id, self.step_id, self.path, self.executor_name)

    def __setstate__(self, state):
        self.run_id, self.stage_id, self.step_id, self.path, self.executor_name = state

    def __repr__(self) -> str:
        return (f"RemoteStepContext(run_id={self.run_id!r}, stage={self.stage_id!r}, step={self.step_id!r}, "
                f"on={self.executor_name!r})")


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


async def call(executor: object, fn: Callable, args: tuple = (), *, where: str = "step", stage_id: str = "",
               step_id: str = "", abort_event: asyncio.Event | None = None) -> Any:
    """Run ``fn(*args)`` on ``executor`` and return its result, without blocking the loop.

    * async ``fn`` (coroutine function): awaited on the running loop, whatever the executor.
    * ``"inline"``: called right here, on the loop's thread.
    * ``"thread"`` / thread pools: called on a pool thread inside ``contextvars.copy_context()``.
    * other executors and Dask clients: ``(fn, args)`` are cloudpickled here; a value that cannot be
      pickled gives StepError naming ``where``, the executor and the culprit (the dict key for a
      state dict). The result comes back by cloudpickle too. An exception raised by ``fn`` is raised
      here as is, with the remote traceback as its ``__cause__``; a failure of the executor itself
      (shut down, closed client, worker died, the call could not be loaded there) is a StepError.

    ``abort_event`` set while waiting: the future is cancelled where possible and :class:`Abandoned`
    is raised at once. Cancelling the awaiting task has the same effect (CancelledError re-raised).
    """
    if _is_async(fn):
        return await fn(*args)
    return await _dispatch(executor, [Call(fn, args, where, stage_id, step_id)], abort_event, True, _single)


async def call_batch(executor: object, calls: Sequence[Call], *, abort_event: asyncio.Event | None = None,
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
    if abort_event is not None and abort_event.is_set():
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
    """Await ``fut``; on abort (event or task cancellation) cancel what can be and stop waiting at once.

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

    fut.add_done_callback(open_gate)
    # asyncio.Event.set() settles every future in its _waiters deque (3.10 to 3.13): joining it costs a
    # few microseconds, where a task running event.wait() per call would cost tens.
    waiters = getattr(abort_event, "_waiters", None)
    watcher = None
    if isinstance(waiters, collections.deque):
        waiters.append(gate)
    else:
        watcher = loop.create_task(abort_event.wait())
        watcher.add_done_callback(open_gate)
    try:
        await gate
    except asyncio.CancelledError:
        _abandon(fut, cfut)
        raise
    finally:
        fut.remove_done_callback(open_gate)
        if watcher is None:
            try:
                waiters.remove(gate)
            except ValueError:
                pass
        elif not watcher.done():
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


# ---- out of process --------------------------------------------------------------------------------


def _make_trampoline():
    # Defined in a closure so cloudpickle sends it *by value*: a worker needs cloudpickle, not pipenb,
    # to run a step (pipenb is imported there only if the call itself refers to it, e.g. a ctx).
    def pipenb_remote_call(blob, stop_on_error):
        import pickle as _pickle
        import traceback as _traceback

        import cloudpickle as _cloudpickle

        try:
            calls = _pickle.loads(blob)
        except BaseException as exc:
            return _cloudpickle.dumps(("load", f"{type(exc).__name__}: {exc}", _traceback.format_exc()))
        out = []
        for fn, args in calls:
            try:
                out.append((True, fn(*args), None))
            except BaseException as exc:
                tb = _traceback.format_exc()
                try:  # an exception that cannot make the round trip comes back as a RuntimeError
                    _pickle.loads(_cloudpickle.dumps(exc))
                except BaseException as err:
                    exc = RuntimeError(f"{type(exc).__name__}: {exc} (the exception itself cannot be "
                                       f"sent back: {type(err).__name__}: {err})")
                out.append((False, exc, tb))
                if stop_on_error:
                    break
        try:
            return _cloudpickle.dumps(("ok", out))
        except BaseException:
            pass
        # Something in the results cannot travel back: find it, and say which.
        for i, (_ok, value, _tb) in enumerate(out):
            try:
                _cloudpickle.dumps(value)
            except BaseException as exc:
                return _cloudpickle.dumps(("result", i, f"{type(value).__name__}: {type(exc).__name__}: {exc}"))
        return _cloudpickle.dumps(("result", 0, "the results cannot be pickled together"))

    return pipenb_remote_call


_TRAMPOLINE = _make_trampoline()


class _Invoke:
    """Pickles as ``fn(*args)``: unpickling it on the worker makes the call (see _dispatch_remote)."""

    __slots__ = ("fn", "args")

    def __init__(self, fn, *args):
        self.fn = fn
        self.args = args

    def __reduce__(self):
        return self.fn, self.args


class _RemoteTraceback(Exception):
    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def _pickle_calls(calls: list[Call], executor) -> bytes:
    import cloudpickle

    try:
        return cloudpickle.dumps([(c.fn, c.args) for c in calls])
    except Exception as exc:
        raise _unpicklable(calls, executor, exc) from exc


def _unpicklable(calls: list[Call], executor, exc: Exception) -> StepError:
    """Find what could not be pickled, and say so: the step, the executor, the action or the key."""
    name = describe(executor)
    for c in calls:
        culprit = _find_unpicklable(c)
        if culprit is not None:
            what, err = culprit
            return StepError(
                f"{c.where} cannot be sent to {name}: {what} cannot be pickled ({type(err).__name__}: {err}); "
                f"use executor='thread' for it, or keep such values out of the state",
                stage_id=c.stage_id, step_id=c.step_id,
            )
    c = calls[0]
    return StepError(f"{c.where} cannot be sent to {name}: {type(exc).__name__}: {exc}",
                     stage_id=c.stage_id, step_id=c.step_id)


def _find_unpicklable(c: Call):
    import cloudpickle

    def fails(value):
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            return exc
        return None

    err = fails(c.fn)
    if err is not None:
        return f"its action {getattr(c.fn, '__qualname__', None) or repr(c.fn)}", err
    for i, arg in enumerate(c.args):
        err = fails(arg)
        if err is None:
            continue
        if isinstance(arg, RemoteStepContext):
            return "its context", err
        if hasattr(arg, "items"):
            try:
                items = list(arg.items())
            except Exception:
                items = []
            for key, value in items:
                err_v = fails(value)
                if err_v is not None:
                    return f"state value {key!r} ({type(value).__name__})", err_v
                err_k = fails(key)
                if err_k is not None:
                    return f"state key {key!r}", err_k
        return f"argument {i} ({type(arg).__name__})", err
    return None


def _import_distributed(first: Call, executor):
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise StepError(
            f"{first.where} is set to run on {describe(executor)}, but dask.distributed cannot be imported "
            f"({exc}); install the extra: {DASK_EXTRA_HINT}",
            stage_id=first.stage_id, step_id=first.step_id,
        ) from exc


async def _dispatch_remote(executor, calls: list[Call], abort_event, stop_on_error, loop, finish):
    import cloudpickle

    first = calls[0]
    blob = _pickle_calls(calls, executor)
    payload = cloudpickle.dumps(_Invoke(_TRAMPOLINE, blob, stop_on_error))
    try:
        if is_dask_client(executor) or _is_dask_executor(executor):
            _import_distributed(first, executor)
            if is_dask_client(executor):
                if getattr(executor, "status", None) in ("closing", "closed"):
                    raise RuntimeError(f"the client is {executor.status}")
                target = executor.get_executor(pure=False)
            else:
                target = executor
            key = f"pipenb-{first.step_id or 'step'}-{uuid.uuid4().hex}"
            cfut = target.submit(pickle.loads, payload, pure=False, key=key)
        else:
            cfut = executor.submit(pickle.loads, payload)
    except StepError:
        raise
    except Exception as exc:
        raise _unavailable(first, executor, exc) from exc
    try:
        raw = await _wait(asyncio.wrap_future(cfut, loop=loop), cfut, first, executor, abort_event,
                          lambda raw: finish(_unpack(raw, calls, executor)))
    except (Abandoned, asyncio.CancelledError):
        raise
    except Exception as exc:  # the executor failed, not the action: worker died, closed client...
        raise StepError(
            f"{first.where} failed on {describe(executor)} before returning a result ({type(exc).__name__}: {exc})",
            stage_id=first.stage_id, step_id=first.step_id,
        ) from exc
    return finish(_unpack(raw, calls, executor))


def _unpack(raw: bytes, calls: list[Call], executor) -> list[tuple[bool, Any]]:
    first = calls[0]
    try:
        reply = pickle.loads(raw)
    except Exception as exc:
        raise StepError(f"{first.where}: the result from {describe(executor)} cannot be loaded here "
                        f"({type(exc).__name__}: {exc})", stage_id=first.stage_id, step_id=first.step_id) from exc
    kind = reply[0]
    if kind == "load":
        _, text, tb = reply
        err = StepError(f"{first.where} could not be loaded on {describe(executor)}: {text}",
                        stage_id=first.stage_id, step_id=first.step_id)
        err.__cause__ = _RemoteTraceback(tb)
        raise err
    if kind == "result":
        _, i, text = reply
        c = calls[i]
        raise StepError(f"{c.where} ran on {describe(executor)} but its result cannot be sent back: {text}",
                        stage_id=c.stage_id, step_id=c.step_id)
    out = []
    for ok, value, tb in reply[1]:
        if not ok and tb:
            value.__cause__ = _RemoteTraceback(tb)
        out.append((ok, value))
    return out

"""Shipping a call out of this process: process pools, ``Client.get_executor()``, Dask clients.

It exists apart from :mod:`pipenb.core.executors` because crossing a process boundary is its own
problem: the calls travel as cloudpickle bytes (so lambdas and notebook functions work), a worker
runs them through a trampoline sent *by value* (it needs cloudpickle, not pipenb), what cannot be
pickled is diagnosed down to the state key, and the step gets a slim :class:`RemoteStepContext`.
It is synchronous: :mod:`pipenb.core.executors` awaits the future that :func:`submit` returns.

A "call" here is anything with ``fn``, ``args``, ``where``, ``stage_id`` and ``step_id``
(``pipenb.core.executors.Call``). cloudpickle is imported on the first remote call, ``distributed``
only when a Dask client is used: a Client is recognised by its class's module and name.
"""

from __future__ import annotations

import logging
import pickle
import uuid
from typing import Any, Sequence

from ..errors import StepError

__all__ = ["DASK_EXTRA_HINT", "RemoteStepContext", "describe", "is_dask_client", "pack", "submit", "unpack"]

DASK_EXTRA_HINT = 'pip install "pipenb[dask]"'


# --------------------------------------------------------------------------------------------------
# Kinds of remote executors
# --------------------------------------------------------------------------------------------------


def _is_distributed(value: object, class_name: str) -> bool:
    t = type(value)
    return (t.__module__ or "").startswith("distributed") and any(
        c.__name__ == class_name and (c.__module__ or "").startswith("distributed") for c in t.__mro__
    )


def is_dask_client(value: object) -> bool:
    """True for a ``distributed.Client`` (without importing distributed)."""
    return _is_distributed(value, "Client")


def is_dask_executor(value: object) -> bool:
    """True for what ``Client.get_executor()`` returns (without importing distributed)."""
    return _is_distributed(value, "ClientExecutor")


def describe(executor: object) -> str:
    """A short human name for messages: 'inline', 'thread', 'ProcessPoolExecutor', 'dask Client tcp://...'."""
    if isinstance(executor, str):
        return executor
    if is_dask_client(executor) or is_dask_executor(executor):
        client = executor if is_dask_client(executor) else getattr(executor, "_client", None)
        address = None
        try:
            address = client.scheduler.address  # type: ignore[union-attr]
        except Exception:
            pass
        name = "dask Client" if client is executor else "dask Client.get_executor()"
        return f"{name} {address}" if address else name
    return type(executor).__name__


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


class RemoteStepContext:
    """The slim, picklable StepContext a step gets on a process pool or a Dask worker.

    ``run_id``, ``stage_id``, ``step_id`` and ``path`` as on the loop; ``signal.aborted`` is always
    False; ``progress()`` does nothing and ``track(items)`` yields the items; ``logger`` is a plain
    logger of the worker process; ``artifacts`` raises StepError (they live in the notebook's process).
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
        raise StepError(
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

    def track(self, items, total=None, message=None):
        """``items`` as they are: out of process no progress is reported (as :meth:`progress`)."""
        return iter(items)

    def __getstate__(self):
        return (self.run_id, self.stage_id, self.step_id, self.path, self.executor_name)

    def __setstate__(self, state):
        self.run_id, self.stage_id, self.step_id, self.path, self.executor_name = state

    def __repr__(self) -> str:
        return (f"RemoteStepContext(run_id={self.run_id!r}, stage={self.stage_id!r}, step={self.step_id!r}, "
                f"on={self.executor_name!r})")


# --------------------------------------------------------------------------------------------------
# There and back
# --------------------------------------------------------------------------------------------------


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


def pack(calls: Sequence[Any], executor, stop_on_error: bool) -> bytes:
    """The payload a worker runs with ``pickle.loads``: the trampoline applied to the cloudpickled calls.

    A value that cannot be pickled gives StepError naming the call, the executor and the culprit
    (its action, its context, the state key or the argument).
    """
    import cloudpickle

    try:
        blob = cloudpickle.dumps([(c.fn, c.args) for c in calls])
    except Exception as exc:
        raise _unpicklable(calls, executor, exc) from exc
    return cloudpickle.dumps(_Invoke(_TRAMPOLINE, blob, stop_on_error))


def _unpicklable(calls: Sequence[Any], executor, exc: Exception) -> StepError:
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


def _find_unpicklable(c: Any):
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

def submit(executor, payload: bytes, first: Any):
    """Submit ``payload`` (from :func:`pack`); returns the executor's ``concurrent.futures.Future``.

    StepError when ``executor`` is a Dask client and distributed cannot be imported; whatever the
    executor raises when it refuses the work (shut down, closed client) is raised as is.
    """
    if is_dask_client(executor) or is_dask_executor(executor):
        _import_distributed(first, executor)
        if is_dask_client(executor):
            if getattr(executor, "status", None) in ("closing", "closed"):
                raise RuntimeError(f"the client is {executor.status}")
            target = executor.get_executor(pure=False)
        else:
            target = executor
        key = f"pipenb-{first.step_id or 'step'}-{uuid.uuid4().hex}"
        return target.submit(pickle.loads, payload, pure=False, key=key)
    return executor.submit(pickle.loads, payload)


def _import_distributed(first: Any, executor):
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise StepError(
            f"{first.where} is set to run on {describe(executor)}, but dask.distributed cannot be imported "
            f"({exc}); install the extra: {DASK_EXTRA_HINT}",
            stage_id=first.stage_id, step_id=first.step_id,
        ) from exc


def unpack(raw: bytes, calls: Sequence[Any], executor) -> list[tuple[bool, Any]]:
    """The worker's reply as ``[(ok, result_or_exception)]``; StepError when the calls could not be
    loaded there, or a result cannot come back. A raised exception carries the remote traceback as
    its ``__cause__``."""
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

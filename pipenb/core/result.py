"""``Result``: success or failure as a value, as the seed's API returns it.

Entry points that a notebook calls (``prepare``, ``resume``, ``run``) return a
``Result`` instead of raising, so a failed run is something to look at, not a
traceback; ``unwrap()`` turns it back into an exception when that is wanted.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Result(Generic[T]):
    """Success or failure as a value: what ``prepare``, ``resume``, ``fork`` and ``run`` return.

    A failed run is something to look at in a notebook, not a traceback; ``unwrap()``
    turns it back into the value or raises the error::

        res = await factory.prepare()
        if res.is_err:
            print(res.error)          # a PrepareError naming what was wrong
        ctx = res.unwrap()
    """

    __slots__ = ("_value", "_error")

    def __init__(self, value: T | None = None, error: BaseException | None = None):
        self._value = value
        self._error = error

    @classmethod
    def ok(cls, value: T) -> Result[T]:
        """A successful result holding ``value``."""
        return cls(value, None)

    @classmethod
    def err(cls, error: BaseException) -> Result[T]:
        """A failed result holding ``error`` (an exception; anything else is a ``TypeError``)."""
        if not isinstance(error, BaseException):
            raise TypeError(f"Result.err needs an exception, got {type(error).__name__}: {error!r}")
        return cls(None, error)

    @property
    def is_ok(self) -> bool:
        """True when there is no error."""
        return self._error is None

    @property
    def is_err(self) -> bool:
        """True when there is an error."""
        return self._error is not None

    @property
    def value(self) -> T | None:
        """The value (None for a failed result)."""
        return self._value

    @property
    def error(self) -> BaseException | None:
        """The exception (None for a successful result)."""
        return self._error

    def unwrap(self) -> T:
        """The value, or raise the error: ``ctx = (await factory.prepare()).unwrap()``."""
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def __getattr__(self, name: str):
        # Only names a Result lacks get here: ``factory.prepare_sync().run_sync()`` forgot ``.unwrap()``.
        if name.startswith("_"):  # dunder probes (copy, pickle) and our own slots before they are set
            raise AttributeError(name)
        what = (f"the {type(self._value).__name__} inside" if self._error is None
                else f"nothing inside: it holds the error {type(self._error).__name__}: {self._error}")
        raise AttributeError(
            f"'Result' object has no attribute {name!r}; this is a Result with {what}. "
            f"Call .unwrap() first (it returns the value or raises the error): result.unwrap().{name}"
        )

    def __repr__(self) -> str:
        return f"Result.ok({self._value!r})" if self.is_ok else f"Result.err({self._error!r})"


class PipelineRunResult:
    """What a finished ``run()`` hands back: completed, terminated or paused."""

    __slots__ = ("run_id", "status", "state", "checkpoint")

    def __init__(self, run_id: str, status: str, state, checkpoint=None):
        self.run_id = run_id
        self.status = status
        self.state = state
        self.checkpoint = checkpoint

    def __eq__(self, other) -> bool:
        return isinstance(other, PipelineRunResult) and (
            self.run_id, self.status, self.state, self.checkpoint
        ) == (other.run_id, other.status, other.state, other.checkpoint)

    def __repr__(self) -> str:
        return (
            f"PipelineRunResult(run_id={self.run_id!r}, status={self.status!r}, "
            f"state keys={sorted(map(str, self.state))[:10]}, checkpoint={self.checkpoint!r})"
        )

"""The error tree every pipenb failure belongs to.

One base class lets a notebook catch "anything pipenb said no to" in one
``except``; the subclasses tell *what* went wrong::

    PipelineError
    ├── DefinitionError   a Pipeline/Stage/Step that cannot be built
    ├── RoutingError      a router returned something unusable, or a run looped
    ├── StepError         a step raised or returned a non-mapping (.stage_id, .step_id)
    ├── AbortedError      the run was aborted (ctx.abort)
    ├── PrepareError      prepare() was given a bad entry, run id or initial state
    ├── ResumeError       a run id that cannot be resumed (no checkpoint, wrong pipeline)
    ├── RunStateError     not allowed in the run's status (run a running or completed run...)
    └── StoreError        a DataStore could not read or write

Messages always name the culprit: the pipeline, stage, step, value or run id.

Errors with keyword-only arguments (StepError, RoutingError, AbortedError) pickle through the base ``__reduce__``:
the default pickling calls ``cls(*args)``, which they refuse, and a step running on a process pool
or a Dask worker sends its error back by pickle.
"""

from __future__ import annotations


def _rebuild(cls, args):
    """Unpickle an error without calling its ``__init__`` (``__reduce__``'s state restores the rest)."""
    return cls.__new__(cls, *args)  # BaseException.__new__ sets .args


class PipelineError(Exception):
    """Base class of every error pipenb raises or returns in a ``Result``."""

    def __reduce__(self):
        # Subclasses take keyword-only fields, which plain exception pickling cannot pass back:
        # rebuild from the message, then restore the fields (errors cross process pools and Dask).
        return _rebuild, (type(self), self.args), self.__dict__


class DefinitionError(PipelineError):
    """A pipeline definition is invalid (raised at construction)."""


class RoutingError(PipelineError):
    """A router returned an unusable value, or a run exceeded ``max_transitions``."""

    def __init__(self, message: str, *, stage_id: str | None = None, value: object = None):
        super().__init__(message)
        self.stage_id = stage_id
        self.value = value



class StepError(PipelineError):
    """A step failed; ``__cause__`` holds what it raised."""

    def __init__(self, message: str, *, stage_id: str, step_id: str):
        super().__init__(message)
        self.stage_id = stage_id
        self.step_id = step_id



class AbortedError(PipelineError):
    """The run was aborted with ``RunContext.abort``."""

    def __init__(self, message: str, *, reason: object = None):
        super().__init__(message)
        self.reason = reason



class PrepareError(PipelineError):
    """``prepare()`` cannot make the run: a bad entry, run id or initial state (or its factory raised)."""


class ResumeError(PipelineError):
    """A run cannot be resumed (unknown run id, missing or foreign checkpoint)."""


class RunStateError(PipelineError):
    """What was asked is not allowed in the run's status now; the message says what to do instead.

    ``run()``, ``step()`` and ``start()`` of a run that is already running
    (in this context, an older one, or another process holding its store's
    lease), that completed or terminated, or whose context a newer one
    replaced, return it as an error ``Result``; ``update_state`` of a
    running or finished run raises it. Nothing of the run changed.
    """


class StoreError(PipelineError):
    """A store failed to read or write; nothing of the failing commit was kept."""


class ArtifactNotSavedError(PipelineError, KeyError):
    """An artifact read after a restart (resume, fork) that was never written to the durable store.

    It was put with ``durable=False`` or could not be pickled; ``key`` names it and ``reason`` says why. A
    ``KeyError`` too, so code that guards ``artifacts[key]`` with ``except KeyError`` still sees it.
    """

    def __init__(self, message: str, *, key: str = "", reason: str = ""):
        super().__init__(message)
        self.key = key
        self.reason = reason

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""

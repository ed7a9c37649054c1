"""The eleven run events (SPEC 3) and the bus that delivers them.

Events are frozen dataclasses so a listener can keep them without fearing
later changes. The bus builds an event only when someone listens to its name
or to ``"*"``: a run with no listener pays for one dict lookup per event,
which is what keeps a stage in a few microseconds. Views that keep every
event open an ``EventLog`` instead (``eventlog.py``), which records without
building event objects.
"""

from __future__ import annotations

import inspect
from time import time as _now
from dataclasses import dataclass, fields
from typing import Any, Callable, NamedTuple

_set_dict = object.__setattr__


class PathNode(NamedTuple):
    """One level of an event's origin: the pipeline, and the stage (None at pipeline level)."""

    pipeline_id: str
    stage_id: str | None


def _plain(value: Any) -> Any:
    """A JSON-friendly rendering of event field values for ``to_dict``."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, PathNode):
        return {"pipeline_id": value.pipeline_id, "stage_id": value.stage_id}
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value)


@dataclass(frozen=True, init=False)
class RunEvent:
    name: str
    run_id: str
    path: tuple
    time: float

    def __init__(self, name: str, run_id: str, path: tuple, time: float, **fields):
        # One attribute write instead of one per field: frozen dataclasses are
        # otherwise slow to build, and a run can emit tens of thousands of events.
        fields["name"], fields["run_id"], fields["path"], fields["time"] = name, run_id, path, time
        object.__setattr__(self, "__dict__", fields)

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @property
    def stage_address(self) -> str | None:
        """``"train/fit"`` style address of the stage this event is about, if any."""
        return stage_address(self.path)


def stage_address(path: tuple) -> str | None:
    """The ``"train/fit"`` style stage address an event path points at (None at root pipeline level)."""
    if len(path) == 1:
        return path[0][1]
    ids = [n[1] for n in path if n[1] is not None]
    return "/".join(ids) if ids else None


@dataclass(frozen=True, init=False)
class PipelineStart(RunEvent):
    pipeline_id: str
    entry: Any
    state: Any
    resumed: bool


@dataclass(frozen=True, init=False)
class PipelineSuccess(RunEvent):
    final_state: Any
    status: str


@dataclass(frozen=True, init=False)
class PipelinePaused(RunEvent):
    checkpoint: Any
    final_state: Any
    pause_timeout: float | None
    reason: str


@dataclass(frozen=True, init=False)
class PipelineFailure(RunEvent):
    error: BaseException
    state: Any


@dataclass(frozen=True, init=False)
class StageStart(RunEvent):
    stage_id: str
    label: str


@dataclass(frozen=True, init=False)
class StageSuccess(RunEvent):
    stage_id: str
    results: Any
    next: Any
    duration: float


@dataclass(frozen=True, init=False)
class StageFailure(RunEvent):
    stage_id: str
    error: BaseException
    duration: float


@dataclass(frozen=True, init=False)
class StagePaused(RunEvent):
    stage_id: str
    instruction: Any
    duration: float


@dataclass(frozen=True, init=False)
class StepStart(RunEvent):
    stage_id: str
    step_id: str


@dataclass(frozen=True, init=False)
class StepSuccess(RunEvent):
    stage_id: str
    step_id: str
    patch: Any
    duration: float


@dataclass(frozen=True, init=False)
class StepFailure(RunEvent):
    stage_id: str
    step_id: str
    error: BaseException
    duration: float


EVENT_TYPES: dict[str, type[RunEvent]] = {
    "pipeline:start": PipelineStart,
    "pipeline:success": PipelineSuccess,
    "pipeline:paused": PipelinePaused,
    "pipeline:failure": PipelineFailure,
    "stage:start": StageStart,
    "stage:success": StageSuccess,
    "stage:failure": StageFailure,
    "stage:paused": StagePaused,
    "step:start": StepStart,
    "step:success": StepSuccess,
    "step:failure": StepFailure,
}
EVENT_NAMES = tuple(EVENT_TYPES)
BUILT = object()  # in an EventLog row: the first value is the event a listener already got
# Each event's own fields (after name, run_id, path, time), in the order ``emit`` takes them.
FIELDS: dict[str, tuple[str, ...]] = {name: tuple(f.name for f in fields(cls))[4:] for name, cls in EVENT_TYPES.items()}


def _dict_maker(name: str, own: tuple[str, ...]):
    # One dict display per event type (what dataclasses do with exec): the
    # fastest way CPython builds the 6 to 8 entry __dict__ of an event.
    entries = "".join(f", {field!r}: v{i}" for i, field in enumerate(own, 1))
    return eval(f"lambda run_id, path, time, v1, v2, v3, v4: "
                f"{{'name': {name!r}, 'run_id': run_id, 'path': path, 'time': time{entries}}}")


_MAKERS = {name: (EVENT_TYPES[name], _dict_maker(name, own)) for name, own in FIELDS.items()}


def build(name: str, run_id: str, path: tuple, time: float, v1=None, v2=None, v3=None, v4=None) -> RunEvent:
    """The frozen event, built with one ``__dict__`` write (frozen dataclasses are otherwise slow to build)."""
    cls, make = _MAKERS[name]
    event = object.__new__(cls)
    _set_dict(event, "__dict__", make(run_id, path, time, v1, v2, v3, v4))
    return event


Handler = Callable[[RunEvent], Any]


class EventBus:
    """Listeners by event name; ``"*"`` receives everything. Errors are logged, never raised."""

    __slots__ = ("_named", "_wildcard", "heard", "_logger", "run_id", "_rows", "_open_logs")

    def __init__(self, run_id: str, logger):
        self.run_id = run_id
        self._named: dict[str, tuple[Handler, ...]] = {}
        self._wildcard: tuple[Handler, ...] = ()
        # name -> handlers in delivery order (named first, then "*"), only for names
        # someone hears; () when only EventLogs record it.
        self.heard: dict[str, tuple[Handler, ...]] = {}
        self._logger = logger
        self._rows: list | None = None  # shared by the open EventLogs; None when none records
        self._open_logs = 0

    def _rebuild(self) -> None:
        recording = self._rows is not None
        self.heard = {
            name: self._named.get(name, ()) + self._wildcard
            for name in EVENT_NAMES
            if recording or self._named.get(name) or self._wildcard
        }

    def record(self):
        """Open an ``EventLog`` of the events from now on (see ``pipenb.core.eventlog``)."""
        from .eventlog import EventLog

        if self._rows is None:
            self._rows = []
        self._open_logs += 1
        self._rebuild()
        return EventLog(self, self._rows)

    def _log_closed(self) -> None:
        self._open_logs -= 1
        if self._open_logs == 0:
            self._rows = None  # closed logs keep the list; the run stops paying for it
            self._rebuild()

    def on(self, name: str, handler: Handler) -> Callable[[], None]:
        if not callable(handler):
            raise TypeError(f"event handler for {name!r} must be callable, got {handler!r}")
        if name == "*":
            self._wildcard = self._wildcard + (handler,)
        elif name in EVENT_TYPES:
            self._named[name] = self._named.get(name, ()) + (handler,)
        else:
            raise ValueError(f"unknown event {name!r}; known: '*', {', '.join(EVENT_NAMES)}")
        self._rebuild()

        def unsubscribe() -> None:
            if name == "*":
                self._wildcard = tuple(h for h in self._wildcard if h is not handler)
            else:
                self._named[name] = tuple(h for h in self._named.get(name, ()) if h is not handler)
            self._rebuild()

        return unsubscribe

    def emit(self, name: str, path: tuple, v1=None, v2=None, v3=None, v4=None):
        """Deliver an event; ``v1``.. are its own fields in ``FIELDS[name]`` order.

        Returns an awaitable when an async handler must be awaited.
        """
        handlers = self.heard.get(name)
        if handlers is None:
            return None
        now = _now()
        if not handlers:  # only logs hear it: one row of plain references, no object
            self._rows += (name, path, now, v1, v2, v3, v4)
            return None
        event = build(name, self.run_id, path, now, v1, v2, v3, v4)
        if self._rows is not None:
            self._rows += (name, path, now, event, BUILT, None, None)
        i = 0
        for handler in handlers:
            i += 1
            try:
                out = handler(event)
            except Exception as exc:  # a listener never changes the run's outcome
                self._log_failure(name, handler, exc)
                continue
            if out is not None and inspect.isawaitable(out):
                return self._finish(event, out, handlers[i:])
        return None

    async def _finish(self, event, pending, rest):
        try:
            await pending
        except Exception as exc:
            self._log_failure(event.name, None, exc)
        for handler in rest:
            try:
                out = handler(event)
                if out is not None and inspect.isawaitable(out):
                    await out
            except Exception as exc:
                self._log_failure(event.name, handler, exc)

    def _log_failure(self, name, handler, exc) -> None:
        who = getattr(handler, "__qualname__", repr(handler)) if handler else "async handler"
        try:
            self._logger.error(
                f"listener {who} for {name!r} of run {self.run_id} raised {type(exc).__name__}: {exc}",
                {"run_id": self.run_id, "event": name, "error": exc},
            )
        except Exception:
            pass

"""The run events (SPEC 3): the vocabulary every listener, log and widget shares.

Events are frozen dataclasses so a listener can keep them without fearing
later changes. How they are built and recorded is ``eventlog.py``; who hears
them is ``bus.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple


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
    """Fields every event has; built by ``eventlog.build`` (one ``__dict__`` write), never by ``__init__``."""

    name: str
    run_id: str
    path: tuple
    time: float

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @property
    def is_root(self) -> bool:
        """True for the run's own pipeline-level events (not a sub-pipeline's, not a stage's)."""
        return len(self.path) == 1

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


@dataclass(frozen=True, init=False)
class StepProgress(RunEvent):
    stage_id: str
    step_id: str
    done: Any
    total: Any
    message: Any


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
    "step:progress": StepProgress,
}
EVENT_NAMES = tuple(EVENT_TYPES)
# Each event's own fields (after name, run_id, path, time), in declaration order.
FIELDS: dict[str, tuple[str, ...]] = {name: tuple(f.name for f in fields(cls))[4:] for name, cls in EVENT_TYPES.items()}
ROOT_EDGES = ("pipeline:start", "pipeline:paused", "pipeline:success", "pipeline:failure")
"""The events that start and end a run (or a sub-pipeline's level of it)."""


def stage_paths(pipeline) -> dict[tuple, str]:
    """Every stage's event path (what its events carry), mapped to its ``"a/b"`` address."""
    paths: dict[tuple, tuple] = {(): ()}
    out: dict[tuple, str] = {}
    for info in pipeline.walk():
        path = paths[info.address[:-1]] + (PathNode(info.pipeline.id, info.stage.id),)
        paths[info.address] = path
        out[path] = info.key
    return out

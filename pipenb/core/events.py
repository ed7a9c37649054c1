"""The run events (SPEC 3): the vocabulary every listener, log and widget shares.

Events are frozen dataclasses so a listener can keep them without fearing
later changes. How they are built and recorded is ``eventlog.py``; who hears
them is ``bus.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, make_dataclass
from typing import Any, NamedTuple
import weakref


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
        """The event's fields as plain values (for JSON, a DataFrame row)."""
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


# Each event: its name, its class name, and its own fields (after name, run_id, path, time).
_SPECS = (
    ("pipeline:start", "PipelineStart", ("pipeline_id", "entry", "state", "resumed")),
    ("pipeline:success", "PipelineSuccess", ("final_state", "status")),
    ("pipeline:paused", "PipelinePaused", ("checkpoint", "final_state", "pause_timeout", "reason")),
    ("pipeline:failure", "PipelineFailure", ("error", "state")),
    ("stage:start", "StageStart", ("stage_id", "label")),
    ("stage:success", "StageSuccess", ("stage_id", "results", "next", "duration")),
    ("stage:failure", "StageFailure", ("stage_id", "error", "duration")),
    ("stage:paused", "StagePaused", ("stage_id", "instruction", "duration")),
    ("step:start", "StepStart", ("stage_id", "step_id")),
    ("step:success", "StepSuccess", ("stage_id", "step_id", "patch", "duration")),
    ("step:failure", "StepFailure", ("stage_id", "step_id", "error", "duration")),
    ("step:progress", "StepProgress", ("stage_id", "step_id", "done", "total", "message")),
)

EVENT_TYPES: dict[str, type[RunEvent]] = {
    name: make_dataclass(cls_name, [(f, Any) for f in own], bases=(RunEvent,), frozen=True, init=False,
                         namespace={"__module__": __name__, "__doc__": f"The ``{name}`` event."})
    for name, cls_name, own in _SPECS
}
globals().update({cls.__name__: cls for cls in EVENT_TYPES.values()})  # PipelineStart, StageSuccess, ...
EVENT_NAMES = tuple(EVENT_TYPES)
# Each event's own fields (after name, run_id, path, time), in declaration order.
FIELDS: dict[str, tuple[str, ...]] = {name: tuple(f.name for f in fields(cls))[4:] for name, cls in EVENT_TYPES.items()}
ROOT_EDGES = ("pipeline:start", "pipeline:paused", "pipeline:success", "pipeline:failure")
"""The events that start and end a run (or a sub-pipeline's level of it)."""


_PATHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def paths_for(pipeline) -> dict:
    """The engine's cache of event paths for ``pipeline`` (by stage address), shared by every run and drive of
    that definition: an event path is the same tuple each time, so an ``EventLog`` keeps one per stage."""
    paths = _PATHS.get(pipeline)
    if paths is None:
        paths = _PATHS[pipeline] = {}
    return paths


def stage_paths(pipeline) -> dict[tuple, str]:
    """Every stage's event path (what its events carry), mapped to its ``"a/b"`` address."""
    paths: dict[tuple, tuple] = {(): ()}
    out: dict[tuple, str] = {}
    for info in pipeline.walk():
        path = paths[info.address[:-1]] + (PathNode(info.pipeline.id, info.stage.id),)
        paths[info.address] = path
        out[path] = info.key
    return out

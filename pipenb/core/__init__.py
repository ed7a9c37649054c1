"""The pipenb engine: standard library only, no widgets, no pandas."""

from . import definitions, store
from .artifacts import ArtifactContainer
from .breakpoints import Breakpoints
from .checkpoints import PipelineCheckpoint, clear_checkpoint, read_checkpoint, write_checkpoint
from .context import RunContext
from .definitions import Pipeline, Stage, Step
from .errors import (
    AbortedError, ArtifactNotSavedError, DefinitionError, PipelineError, PrepareError, ResumeError, RoutingError,
    RunStateError, StepError, StoreError,
)
from .eventlog import EventLog
from .events import EVENT_NAMES, PathNode, RunEvent
from .step_context import StepContext
from .factory import PipelineFactory
from .history import History, StageRecord, StateDiff
from .kept import ForkSource
from .lifecycle import AbortSignal
from .lookback import RunComparison
from .registry import PipelineRegistry, RunRecord
from .result import PipelineRunResult, Result
from .routing import Pause, is_pause_instruction
from .sentinel import DELETE, END
from .state import PIPELINE_DATA_KEY, FrozenDict
from .store import DataStore, InMemoryStore
from .sync import run_sync

from typing import get_type_hints as _hints

# A NamedTuple keeps postponed annotations as ForwardRef('Any') and its generated ``__new__`` cannot see
# its module's names, so help() and signatures showed ForwardRefs: give both the resolved types.
for _tuple in (PathNode, StageRecord, definitions.StageInfo, store.StoredRun, ForkSource):
    _tuple.__annotations__ = _tuple.__new__.__annotations__ = _hints(_tuple)

__all__ = [
    "AbortSignal", "AbortedError", "ArtifactContainer", "ArtifactNotSavedError", "Breakpoints", "DELETE", "DataStore",
    "DefinitionError",
    "END", "EVENT_NAMES", "EventLog", "ForkSource", "FrozenDict", "History", "InMemoryStore", "PIPELINE_DATA_KEY",
    "PathNode",
    "Pause", "Pipeline", "PipelineCheckpoint", "PipelineError", "PipelineFactory", "PipelineRegistry",
    "PipelineRunResult", "PrepareError", "Result", "ResumeError", "RoutingError", "RunComparison", "RunContext",
    "RunEvent", "RunRecord", "RunStateError", "Stage", "StageRecord", "StateDiff", "Step", "StepContext", "StepError",
    "StoreError", "clear_checkpoint", "is_pause_instruction", "read_checkpoint", "run_sync", "write_checkpoint",
]

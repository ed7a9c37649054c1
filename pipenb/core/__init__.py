"""The pipenb engine: standard library only, no widgets, no pandas."""

from .artifacts import ArtifactContainer
from .checkpoints import PipelineCheckpoint, clear_checkpoint, read_checkpoint, write_checkpoint
from .context import AbortSignal, RunContext
from .definitions import Pipeline, Stage, Step
from .errors import (
    AbortedError, DefinitionError, PipelineError, ResumeError, RoutingError, StepError, StoreError,
)
from .eventlog import EventLog
from .events import EVENT_NAMES, PathNode, RunEvent
from .step_context import StepContext
from .factory import PipelineFactory
from .registry import PipelineRegistry, RunRecord
from .result import PipelineRunResult, Result
from .routing import END, Pause, is_pause_instruction
from .state import DELETE, PIPELINE_DATA_KEY, FrozenDict
from .sync import run_sync

__all__ = [
    "AbortSignal", "AbortedError", "ArtifactContainer", "DELETE", "DefinitionError", "END", "EVENT_NAMES", "EventLog",
    "FrozenDict", "PIPELINE_DATA_KEY", "PathNode", "Pause", "Pipeline", "PipelineCheckpoint", "PipelineError",
    "PipelineFactory", "PipelineRegistry", "PipelineRunResult", "Result", "ResumeError", "RoutingError",
    "RunContext", "RunEvent", "RunRecord", "Stage", "Step", "StepContext", "StepError", "StoreError",
    "clear_checkpoint", "is_pause_instruction", "read_checkpoint", "run_sync", "write_checkpoint",
]

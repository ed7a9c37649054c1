"""pipenb: build, watch, pause and debug routing pipelines in Jupyter.

The engine (``pipenb.core``) is re-exported here; widgets live in
``pipenb.widgets`` and are imported only when used, so ``import pipenb``
stays fast and never pulls in pandas, ipywidgets or graphviz.
"""

from . import report, rich
from .core import (
    DELETE, END, EVENT_NAMES, PIPELINE_DATA_KEY, AbortedError, AbortSignal, ArtifactContainer, DataStore,
    DefinitionError, EventLog, FrozenDict, History, InMemoryStore, PathNode, Pause, Pipeline, PipelineCheckpoint,
    PipelineError, PipelineFactory, PipelineRegistry, PipelineRunResult, PrepareError, Result, ResumeError,
    RoutingError, RunContext, RunEvent, RunRecord, Stage, StageRecord, StateDiff, Step, StepContext, StepError,
    StoreError, clear_checkpoint, is_pause_instruction, read_checkpoint, run_sync, write_checkpoint,
)

__version__ = "0.1.0"

__all__ = [
    "AbortSignal", "AbortedError", "ArtifactContainer", "DELETE", "DataStore", "DefinitionError", "END",
    "EVENT_NAMES", "EventLog", "FrozenDict", "History", "InMemoryStore", "PIPELINE_DATA_KEY", "PathNode", "Pause",
    "Pipeline", "PipelineCheckpoint", "PipelineError", "PipelineFactory", "PipelineRegistry", "PipelineRunResult",
    "PrepareError", "Result", "ResumeError", "RoutingError", "RunContext", "RunEvent", "RunRecord", "SqliteStore",
    "Stage", "StageRecord", "StateDiff", "Step", "StepContext", "StepError", "StoreError", "clear_checkpoint",
    "is_pause_instruction", "read_checkpoint", "run_sync", "write_checkpoint",
]

rich.install()  # rich display of runs and results in IPython, wired from outside the engine
report.install()  # ctx.report(): the run report page, wired from outside the engine too


def __getattr__(name):
    # SqliteStore pulls in sqlite3 and pickle: load it on first use only.
    if name == "SqliteStore":
        from .stores.sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module 'pipenb' has no attribute {name!r}")

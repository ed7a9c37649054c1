"""The public surface is pinned: code outside this repo imports these names."""

import subprocess
import sys

import pipenb

EXPECTED = [
    "AbortSignal", "AbortedError", "ArtifactContainer", "ArtifactNotSavedError", "Breakpoints", "DELETE", "DataStore",
    "DefinitionError",
    "END", "EVENT_NAMES", "EventLog", "ForkSource", "FrozenDict", "History", "InMemoryStore", "PIPELINE_DATA_KEY",
    "PathNode",
    "Pause", "Pipeline", "PipelineCheckpoint", "PipelineError", "PipelineFactory", "PipelineRegistry",
    "PipelineRunResult", "PrepareError", "Result", "ResumeError", "RoutingError", "RunComparison", "RunContext",
    "RunEvent", "RunRecord", "RunStateError", "SqliteStore", "Stage", "StageRecord", "StateDiff", "Step",
    "StepContext", "StepError", "StoreError", "clear_checkpoint", "is_pause_instruction", "read_checkpoint",
    "run_sync", "write_checkpoint",
]


def test_all_is_pinned():
    assert sorted(pipenb.__all__) == sorted(EXPECTED)
    assert len(set(pipenb.__all__)) == len(pipenb.__all__)


def test_every_exported_name_resolves():
    for name in pipenb.__all__:
        assert getattr(pipenb, name) is not None, name


def test_error_tree():
    for sub in ("DefinitionError", "RoutingError", "StepError", "AbortedError", "PrepareError", "ResumeError",
                "RunStateError", "StoreError"):
        assert issubclass(getattr(pipenb, sub), pipenb.PipelineError)
    assert pipenb.PIPELINE_DATA_KEY == "__pipeline_data__"
    assert pipenb.is_pause_instruction(pipenb.Pause("a")) and not pipenb.is_pause_instruction("a")
    assert repr(pipenb.END) == "END" and repr(pipenb.DELETE) == "DELETE"


def test_import_is_light():
    code = (
        "import sys; import pipenb; "
        "heavy=[m for m in ('pandas','ipywidgets','graphviz','networkx','anywidget','sqlite3','nest_asyncio') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    # How long it takes is measured in bench/, not asserted here.
    assert out.stdout.strip() == "[]", f"import pipenb pulled in {out.stdout}"

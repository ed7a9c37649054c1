"""A stage that fails commits nothing to disk, artifacts included (SPEC 15: all or nothing).

What the failed stage put stays readable in the kernel for a look while
debugging, but when the registry lets the failed run go, only the artifacts
of committed stages (and those put from a cell) are in the file: a new
process resuming it sees the last committed versions, and the retried
stage's own puts once it commits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.stores import SqliteStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fit(state, ctx):
    ctx.artifacts.put("model", "v1")
    return {"fitted": True}


def evaluate(state, ctx):
    ctx.artifacts.put("model", "v2")
    ctx.artifacts.put("plot", "half drawn")
    if not state.get("approved"):
        raise RuntimeError("evaluation failed after putting model v2")
    return {"evaluated": True}


PIPE = Pipeline(
    "failed-stage-artifacts",
    stages=[
        Stage("fit", steps=[Step("fit", fit)]),
        Stage("evaluate", steps=[Step("evaluate", evaluate)]),
    ],
)

READ = textwrap.dedent("""
    import json, sys
    from pipenb.stores import SqliteStore
    db, run_id = sys.argv[1], sys.argv[2]
    arts = SqliteStore(db, run_id).load_artifacts()
    print(json.dumps({k: v for k, v in arts.items() if k in ("model", "plot")}))
""")


def stored_artifacts(db, run_id: str) -> dict:
    """The artifacts a new process reads from the file."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    out = subprocess.run(
        [sys.executable, "-c", READ, str(db), run_id], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_failed_stage_leaves_its_artifacts_out_of_the_file_until_its_retry_commits(tmp_path):
    db = tmp_path / "runs.sqlite"
    registry = PipelineRegistry()
    factory = PipelineFactory(PIPE, store_factory=SqliteStore.factory(db), registry=registry)
    ctx = factory.prepare_sync(run_id="f1").unwrap()
    res = ctx.run_sync()
    assert not res.is_ok and ctx.status == "failed" and ctx.position == "evaluate"
    assert ctx.artifacts["model"] == "v2" and ctx.artifacts["plot"] == "half drawn"  # still there to look at
    assert stored_artifacts(db, "f1") == {"model": "v1"}
    ctx.artifacts.put("note", "put from a cell while it waits")
    assert registry.expire("f1")  # let go: what was put from the cell is written, the failed stage's puts are not
    assert stored_artifacts(db, "f1") == {"model": "v1"}
    again = PipelineFactory(PIPE, store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    resumed = again.resume_sync("f1").unwrap()
    assert resumed.artifacts["model"] == "v1" and "plot" not in resumed.artifacts
    assert resumed.artifacts["note"] == "put from a cell while it waits"
    resumed.update_state({"approved": True})
    assert resumed.run_sync().unwrap().status == "completed"
    assert stored_artifacts(db, "f1") == {"model": "v2", "plot": "half drawn"}

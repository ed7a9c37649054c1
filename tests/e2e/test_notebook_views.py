"""What the demo notebooks show a newcomer after Run All (issue #20.1): notebook 02's dashboard neither
warns about a redefinition that changed no code nor offers to resume the run its second part completed;
notebook 04's run lasts long enough to watch."""

import json
import re

import pytest

from .. import repo_notebooks
from ..kernel_client import KernelSession


@pytest.fixture
def kernel(tmp_path):
    k = KernelSession(cwd=str(tmp_path))
    yield k
    k.close()


def code_cells(name: str) -> list[str]:
    return [c.source for c in repo_notebooks.build(name).cells if c.cell_type == "code"]


def test_notebook_02_after_run_all_shows_the_run_completed_without_a_redefined_warning(kernel):
    cells = [kernel.send(src) for src in code_cells("02-pause-and-resume")]  # queued at once, as Run All
    for cell in cells:
        assert kernel.reply(cell, timeout=120)["status"] == "ok", (cell.text, cell.errors)
    out = kernel.run("""
        import asyncio, json
        for _ in range(200):  # the dashboard reads the store once a second: poll for what it then shows
            if dash.buttons["resume"].disabled:
                break
            await asyncio.sleep(0.05)
        print(json.dumps([dash.stale.value, dash.buttons["resume"].disabled, dash.buttons["resume"].tooltip,
                          dash.run_row(run_id), dash.status.value]))
    """)
    stale, resume_disabled, tip, row, status = json.loads(out)
    assert "redefined" not in stale  # the second part declares the same code again, as after a restart
    assert resume_disabled and "elsewhere" in tip
    assert row.split("  ")[2] == "gone", row  # not "paused ... in the store"
    assert "elsewhere" in status


def test_notebook_04_run_lasts_long_enough_to_watch():
    """Its steps' pauses add up to seconds (a lower bound: a slow machine only makes it longer)."""
    cells = code_cells("04-teaching")
    namespace: dict = {}
    exec(compile(cells[0], "04-teaching-cell-1", "exec"), namespace)  # the definitions (no await there)
    start = json.loads(re.search(r"initial_state=(\{[^}]*\})", cells[1]).group(1).replace("'", '"'))
    from pipenb import PipelineFactory, PipelineRegistry

    ctx = PipelineFactory(namespace["newton"], registry=PipelineRegistry()).prepare_sync(initial_state=start).unwrap()
    assert ctx.run_sync().unwrap().status == "completed"
    took = sum(r.duration for r in ctx.history)
    assert took >= 2.5, f"notebook 04's run takes {took:.2f} s: too fast to watch the graph light up"
    assert ctx.history.visits()["improve"] >= 5

"""SPEC 13: a notebook executed by nbclient (``jupyter nbconvert --execute``) keeps each widget's
snapshot as it was when its cell's work ended (a run driven by a cell: its final status and
events), not as it was displayed, whichever cell started the run and whichever cell it ended in.

Under ipykernel 7 a run started with ``ctx.start()`` carries the header of the cell that started
it; an update sent from it after that cell ended was dropped by nbclient (it reads only the
messages of the cell it runs now). Kernel-free layer first: the outbox that sends updates under
the running cell.
"""

import contextvars
import os
import pathlib
import re

import nbformat
import pytest
from IPython.core.events import EventManager
from nbclient import NotebookClient

from pipenb.graph import PALETTE
from pipenb.widgets.outbox import Outbox

from .. import repo_notebooks

ROOT = pathlib.Path(__file__).resolve().parents[2]
SUCCESS, PAUSED = PALETTE["success"]["fill"], PALETTE["paused"]["fill"]
CELL = contextvars.ContextVar("cell", default="no cell")


# -- the outbox, without a kernel --------------------------------------------------------------
class FakeShell:
    def __init__(self):
        self.events = EventManager(self, {"pre_run_cell": None, "post_run_cell": None})


class FakeWidget:
    """Records the cell (a context variable standing for the kernel's parent header) of each send."""

    def __init__(self, box):
        self.box, self.sent = box, []

    def refresh_snapshot(self):
        self.box.send(self)

    def send_snapshot_update(self):
        self.sent.append(CELL.get())


def run_cell(shell, name, body=lambda: None):
    """A cell: its own context (as ipykernel gives each request), the hooks around its body."""

    def cell():
        CELL.set(name)
        shell.events.trigger("pre_run_cell", None)
        body()
        shell.events.trigger("post_run_cell", None)

    contextvars.copy_context().run(cell)


def test_an_update_from_a_run_started_in_an_earlier_cell_goes_out_under_the_running_cell():
    shell = FakeShell()
    box = Outbox(shell)
    widget = FakeWidget(box)
    started = {}
    run_cell(shell, "A", lambda: started.setdefault("task", contextvars.copy_context()))  # ctx.start() in A
    # The run stops while cell B runs: its task still carries cell A's context.
    run_cell(shell, "B", lambda: started["task"].run(widget.refresh_snapshot))
    assert widget.sent == ["B"]


def test_an_update_sent_between_cells_is_sent_again_in_the_next_cell():
    shell = FakeShell()
    box = Outbox(shell)
    widget = FakeWidget(box)
    run_cell(shell, "A")
    contextvars.copy_context().run(lambda: (CELL.set("A"), widget.refresh_snapshot()))  # the run ends after A
    assert widget.sent == ["A"]  # sent at once (a live frontend takes it) ...
    run_cell(shell, "B")
    assert widget.sent == ["A", "B"]  # ... and again under the next cell, once
    run_cell(shell, "C")
    assert widget.sent == ["A", "B"]


def test_one_outbox_per_shell():
    shell = FakeShell()
    assert Outbox.of(shell) is Outbox.of(shell)


# -- notebooks executed by nbclient --------------------------------------------------------------
SETUP = """
import asyncio
from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import EventTable, RunDashboard, StageGraph

async def work(state):
    await asyncio.sleep(0.05)
    return {"n": state.get("n", 0) + 1}

def build(pid, pause=False):
    stages = [Stage(f"s{i}", steps=[Step("work", work)]) for i in range(4)]
    if pause:
        stages[1] = Stage("s1", steps=[Step("work", work)], router=lambda s, r: Pause("s2"))
    return Pipeline(pid, stages=stages)

registry = PipelineRegistry(default_timeout=600)
"""

CELLS = [
    SETUP,
    # 1: shown and started in one cell, awaited in the next
    """
f1 = PipelineFactory(build("same-cell"), registry=registry)
c1 = (await f1.prepare()).unwrap()
g1, t1 = StageGraph(f1.pipeline, c1), EventTable(c1)
task1 = c1.start()
display(g1, t1)
""",
    "(await task1).unwrap().status",
    # 3: shown here, driven by a later cell
    """
f2 = PipelineFactory(build("later-cell"), registry=registry)
c2 = (await f2.prepare()).unwrap()
d2 = RunDashboard(f2)
d2.show(c2)
d2
""",
    "(await c2.run()).unwrap().status",
    # 5: shown here, started in the next cell, awaited in the one after (it pauses)
    """
f3 = PipelineFactory(build("paused", pause=True), registry=registry)
c3 = (await f3.prepare()).unwrap()
g3, t3 = StageGraph(f3.pipeline, c3), EventTable(c3)
display(g3, t3)
""",
    "task3 = c3.start()",
    "(await task3).unwrap().status",
]


def execute(nb, tmp_path, monkeypatch):
    """Run ``nb`` as ``jupyter nbconvert --execute`` does, with this checkout's pipenb in the kernel."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def snapshots(nb, index: int) -> list[str]:
    """The text/html snapshots of the widget outputs of cell ``index``."""
    return [o["data"]["text/html"] for o in nb.cells[index].get("outputs", [])
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]


def events_shown(html: str) -> int:
    found = re.search(r"showing the last \d+ of (\d+) events", html)
    assert found, html[:300]
    return int(found.group(1))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src.strip()) for src in CELLS]
    with pytest.MonkeyPatch.context() as mp:
        return execute(nb, tmp_path_factory.mktemp("nbconvert"), mp)


def test_a_run_started_with_the_display_and_awaited_later_shows_its_end(executed):
    graph, table = snapshots(executed, 1)
    assert "completed" in executed.cells[2].outputs[0]["data"]["text/plain"]
    assert "prepared" not in graph and graph.count(SUCCESS) == 4 and "· success" in graph
    assert "pipeline:success" in table and events_shown(table) > 0


def test_a_dashboard_shown_before_its_run_shows_the_run_a_later_cell_drove(executed):
    (dash,) = snapshots(executed, 3)
    assert "<b>completed</b>" in dash and "<b>prepared</b>" not in dash
    assert dash.count(SUCCESS) == 4 and "pipeline:success" in dash and events_shown(dash) > 0


def test_a_run_started_in_a_later_cell_and_awaited_in_another_shows_where_it_paused(executed):
    graph, table = snapshots(executed, 5)
    assert "paused" in executed.cells[7].outputs[0]["data"]["text/plain"]
    assert "prepared" not in graph and PAUSED in graph and "· paused" in graph
    assert "pipeline:paused" in table and events_shown(table) > 0


@pytest.mark.parametrize("name", ["01-quickstart", "04-teaching"])
def test_demo_notebooks_keep_each_widget_as_its_run_ended(name, tmp_path, monkeypatch):
    nb = execute(repo_notebooks.build(name), tmp_path, monkeypatch)  # the repo's notebook, not one saved in notebooks/
    shown = [(i, s) for i in range(len(nb.cells)) for s in snapshots(nb, i)]
    assert len(shown) == 2  # the graph and the table, shown as ctx.start() began the run
    for _, html in shown:
        assert "prepared" not in html
    graph, table = (s for _, s in shown)
    assert "· success" in graph and SUCCESS in graph
    assert "pipeline:success" in table and events_shown(table) > 0

"""SPEC 12 end to end: a notebook run in a real kernel keeps, beside each live widget, a static
snapshot of the run's last state, refreshed in place when the run pauses and ends; converted to
HTML, it shows the graph and the last events in a browser with no kernel and no network."""

import os
import pathlib
import re
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from pipenb.graph import PALETTE

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
VIEW = "application/vnd.jupyter.widget-view+json"
SUCCESS, PAUSED = PALETTE["success"]["fill"], PALETTE["paused"]["fill"]

CELLS = [
    """
import asyncio
from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import EventTable, RunDashboard, StageGraph

async def work(state):
    await asyncio.sleep(0.01)
    return {"n": state.get("n", 0) + 1}

stages = [Stage(f"s{i}", steps=[Step("work", work)], label=f"Stage <{i}>") for i in range(6)]
stages[2] = Stage("s2", steps=[Step("work", work)], label="Stage <2>", router=lambda s, r: Pause("s3"))
demo = Pipeline("offline-demo", stages=stages)
factory = PipelineFactory(demo, registry=PipelineRegistry(default_timeout=600))
ctx = factory.prepare_sync().unwrap()
graph = StageGraph(demo, ctx)
table = EventTable(ctx)
dash = RunDashboard(factory)
dash.show(ctx)
""",
    "graph",
    "table",
    "dash",
    "task = ctx.start()  # in the background: the cell returns",
    "await task  # a later cell waits for the pause",
    "ctx",
    "await ctx.start()  # on to the end",
]


def output_of(nb, index: int) -> dict:
    outs = [o for o in nb.cells[index].outputs if o.output_type in ("display_data", "execute_result")]
    assert len(outs) == 1, nb.cells[index].outputs
    return outs[0]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("offline")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src.strip()) for src in CELLS]
    with pytest.MonkeyPatch.context() as mp:  # the kernel imports this checkout's pipenb
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}).execute()
    nbformat.write(nb, tmp / "offline.ipynb")
    return nb, tmp


def test_saved_outputs_carry_live_views_and_refreshed_snapshots(executed):
    nb, _ = executed
    graph, table, dash, ctx = (output_of(nb, i) for i in (1, 2, 3, 6))
    for out in (graph, table, dash, ctx):
        data = out["data"]
        assert VIEW in data and "text/html" in data  # the live view stays; the snapshot is beside it
        assert "object at 0x" not in data["text/plain"]
        assert "<script" not in data["text/html"] and not re.search(r"(src|href)=\"https?:", data["text/html"])
        assert out.get("transient") is None  # nbformat drops it; nbclient used it to apply the updates
    # Shown before the run started, refreshed in place when it paused and when it ended:
    # All six stages green: s2 paused on the way, then the run went on past it.
    assert graph["data"]["text/html"].count(SUCCESS) == 6 and "completed" not in graph["data"]["text/plain"]
    assert "success" in graph["data"]["text/html"]  # its caption: "... · success"
    assert "pipeline:success" in table["data"]["text/html"] and "Stage &lt;5&gt;" in table["data"]["text/html"]
    assert "<b>completed</b>" in dash["data"]["text/html"] and dash["data"]["text/html"].count(SUCCESS) == 6
    assert "completed" in ctx["data"]["text/html"]  # shown paused, refreshed when it ended


def test_converted_html_shows_graph_and_events_offline(executed):
    pytest.importorskip("playwright")
    if not shutil.which("chromium") and not os.path.exists(CHROMIUM):
        pytest.skip("not installed: chromium (apt-get install chromium)")
    from nbconvert import HTMLExporter
    from playwright.sync_api import sync_playwright

    nb, tmp = executed
    nb = nbformat.from_dict(nb)
    nb.metadata.pop("widgets", None)  # as JupyterLab saves it: no widget state (else nbconvert loads a CDN manager)
    body, _ = HTMLExporter().from_notebook_node(nb)
    page_file = tmp / "offline.html"
    page_file.write_text(body, encoding="utf-8")
    SHOTS.mkdir(exist_ok=True)
    attempted, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ])
        try:
            pg = browser.new_page(viewport={"width": 1200, "height": 1600})
            pg.on("pageerror", lambda exc: errors.append(str(exc)))

            def guard(route):
                if not route.request.url.startswith(("file:", "data:")):
                    attempted.append(route.request.url)
                    route.abort()
                else:
                    route.continue_()

            pg.route("**/*", guard)
            pg.goto(page_file.as_uri())
            snaps = pg.locator(".pipenb-snapshot")
            assert snaps.count() >= 4
            graph = pg.locator(".pipenb-snapshot-graph svg").first
            assert graph.is_visible() and graph.bounding_box()["height"] > 100
            assert pg.locator(".pipenb-snapshot-graph svg text", has_text="Stage <5>").count() >= 1
            assert pg.locator(f'.pipenb-snapshot-graph svg [fill="{SUCCESS}"]').count() >= 5
            last = pg.locator(".pipenb-snapshot-table table").first.locator("tbody tr").last
            assert last.is_visible() and "pipeline:success" in last.inner_text()
            assert "completed" in pg.locator(".pipenb-snapshot-dashboard").first.inner_text()
            pg.screenshot(path=str(SHOTS / "offline-notebook.png"), full_page=True)
        finally:
            browser.close()
    # The page nbconvert writes may ask for its own scripts (MathJax, require.js); the snapshots ask for nothing.
    snapshot_urls = [u for u in attempted if not re.search(r"mathjax|require|jquery|unpkg|jsdelivr|cdnjs", u, re.I)]
    assert not snapshot_urls, snapshot_urls
    for text in (o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})):
        assert "<script" not in text and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)

"""SPEC 12 for RunReplay: a notebook executed by nbclient keeps the replay's static snapshot at the
position a later cell moved it to (graph, record, state), with no script in it."""

import os
import pathlib
import xml.etree.ElementTree as ET

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[2]

CELLS = [
    """
from tests.widgets.test_replay import looping
from pipenb import PipelineFactory, PipelineRegistry, run_sync
from pipenb.widgets import RunReplay
factory = PipelineFactory(looping(), registry=PipelineRegistry())
ctx = run_sync(factory.prepare()).unwrap()
run_sync(ctx.run()).unwrap()
replay = RunReplay(ctx)
replay
""",
    "replay.position = 2\nreplay.position = 5",
    "print(replay.position, replay.record.address)",
    "print(len(RunReplay((factory, ctx.run_id))))  # from the factory, inside the kernel's running loop",
]


def test_the_saved_notebook_shows_the_last_position(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.strip()) for src in CELLS]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert nb.cells[2].outputs[0]["text"].split() == ["5", "check"]
    assert nb.cells[3].outputs[0]["text"].split() == ["7"]
    data = nb.cells[0].outputs[0]["data"]
    page = data["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "record 6 of 7" in page and "#5 <code>check</code>" in page  # not record 1, as it was displayed
    assert "<script" not in page and "no snapshot" not in page
    svg = page[page.index("<svg") : page.index("</svg>") + len("</svg>")]
    ET.fromstring(svg)  # the graph at that position, well-formed
    assert "×3" in page or "&#215;3" in page  # load and check visited three times by then

"""Notebook 02's "after a kernel restart" story, for real: its second part runs in a NEW kernel.

The first part (up to the markdown cell starting "## After a kernel restart")
runs in one kernel, which is then shut down; the second part runs in a fresh
kernel in the same directory, so all it has is the SQLite file, the run id
file and whatever the cells themselves declare.
"""

import sqlite3

import nbformat
from nbclient import NotebookClient

from pipenb.stores import SqliteStore

from .. import repo_notebooks
from .test_notebooks import this_checkout_first

NOTEBOOK = "02-pause-and-resume"  # built from notebooks/make_notebooks.py, not read from notebooks/
MARKER = "## After a kernel restart"


def split(nb):
    """(cells before the marker, cells from the marker on)."""
    at = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.lstrip().startswith(MARKER)]
    assert len(at) == 1, f"notebook 02 needs exactly one markdown cell starting {MARKER!r}"
    return nb.cells[: at[0]], nb.cells[at[0]:]


def execute(cells, tmp_path):
    """Run ``cells`` in a new kernel started in ``tmp_path``; the kernel is shut down afterwards."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = repo_notebooks.build(NOTEBOOK).metadata
    nb.cells = cells
    client = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any error (a NameError of a name the part did not declare)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    return nb


def test_second_part_of_notebook_02_works_in_a_new_kernel(tmp_path, monkeypatch):
    this_checkout_first(monkeypatch)
    first, second = split(repo_notebooks.build(NOTEBOOK))
    assert any(c.cell_type == "code" for c in second)
    execute(first, tmp_path)
    db = tmp_path / "approvals.sqlite"
    run_id = (tmp_path / "approval_run_id.txt").read_text()
    # Between the kernels: the run is paused in the file, its artifacts saved with it.
    store = SqliteStore(str(db), run_id)
    cp = store.get()["__pipeline_data__"]["checkpoint"]
    assert tuple(cp.resume_at) == ("gate",)
    assert store.load_artifacts()["model"]["coef"] == [0.4, 1.7]  # written with the stage that put it
    nb = execute(second, tmp_path)  # a NEW kernel: nothing of the first part's names
    texts = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "paused at gate" in texts, texts
    # The file says the run completed: no checkpoint left, the deployed model in its state.
    state = SqliteStore(str(db), run_id).get()
    assert (state.get("__pipeline_data__") or {}).get("checkpoint") is None
    assert state["deployed"] == [0.4, 1.7] and state["approved"] is True
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(DISTINCT run_id) FROM pipenb_state").fetchone()[0] == 1
    finally:
        conn.close()

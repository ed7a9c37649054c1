"""Every demo notebook runs top to bottom in a real Jupyter kernel (nbclient).

The notebooks are built from their source, notebooks/make_notebooks.py (see tests/repo_notebooks.py),
and run in a temporary directory: what a person saved in notebooks/ is neither run nor written to.
"""

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from .. import repo_notebooks

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = repo_notebooks.names()


def this_checkout_first(monkeypatch) -> None:
    """The kernel (and the processes it starts) import pipenb from this checkout, not from wherever
    an editable install points: the kernel runs in another directory, where ``import pipenb``
    would find the installed one."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_clean(name, tmp_path, monkeypatch):
    this_checkout_first(monkeypatch)
    nb = repo_notebooks.build(name)
    nbformat.validate(nb)
    before = sorted(p.name for p in (ROOT / "notebooks").iterdir())
    client = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    # Every notebook shows something: at least one rich output (graph, table or widget).
    rich = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.output_type in ("display_data", "execute_result")]
    assert rich
    # The notebook ran in tmp_path: the files it writes (SQLite, run ids) are there, not in the repository.
    assert sorted(p.name for p in (ROOT / "notebooks").iterdir()) == before


def test_kernel_imports_this_checkout(tmp_path, monkeypatch):
    this_checkout_first(monkeypatch)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import pipenb; print(pipenb.__file__)")]
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert nb.cells[0].outputs[0]["text"].strip() == str(ROOT / "pipenb" / "__init__.py")

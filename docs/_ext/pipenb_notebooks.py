"""Executed copies of the demo notebooks for the docs: built from notebooks/make_notebooks.py, run by nbclient.

The repository's notebooks are committed without outputs, and the docs must show what they print
and draw (the widgets' static snapshots included). This extension writes each notebook, executed in
a real kernel with this checkout on its ``PYTHONPATH``, into ``docs/_notebooks/`` before Sphinx looks
for sources; MyST-NB then renders the saved outputs without executing anything. The copies are
reused while the generator and ``pipenb/`` are unchanged (a hash of both), so a second build is quick.
Widget state is not stored: a page draws each widget's snapshot (plain HTML and SVG), never a script
from the network.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import runpy
import tempfile

from sphinx.util import logging

LOG = logging.getLogger(__name__)
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "_notebooks"
GENERATOR = ROOT / "notebooks" / "make_notebooks.py"


def fingerprint() -> str:
    """A hash of everything an executed notebook depends on in this checkout."""
    digest = hashlib.sha256()
    files = [GENERATOR, *sorted(p for p in (ROOT / "pipenb").rglob("*") if p.suffix in (".py", ".js", ".css"))]
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def execute_notebooks(app, config) -> None:
    """Write the executed notebooks into docs/_notebooks/ unless the copies there are current."""
    import nbformat
    from nbclient import NotebookClient

    stamp = OUT / ".fingerprint"
    wanted = fingerprint()
    generator = runpy.run_path(str(GENERATOR))
    names = list(generator["NOTEBOOKS"])
    if stamp.exists() and stamp.read_text() == wanted and all((OUT / f"{n}.ipynb").exists() for n in names):
        LOG.info("pipenb: executed notebooks in docs/_notebooks are current")
        return
    OUT.mkdir(exist_ok=True)
    stamp.unlink(missing_ok=True)
    env = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env]))  # the kernel imports this checkout
    try:
        for name in names:
            LOG.info(f"pipenb: executing notebook {name} ...")
            nb = generator["build"](name)
            with tempfile.TemporaryDirectory() as cwd:  # the files a notebook writes (SQLite) stay out of the tree
                client = NotebookClient(
                    nb,
                    timeout=300,
                    kernel_name="python3",
                    store_widget_state=False,
                    resources={"metadata": {"path": cwd}},
                )
                client.execute()
            nbformat.write(nb, OUT / f"{name}.ipynb")
    finally:
        if env is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = env
    stamp.write_text(wanted)


def setup(app):
    app.connect("config-inited", execute_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""The repository's demo notebooks, as the suite sees them: built from their source,
notebooks/make_notebooks.py, never read from notebooks/*.ipynb.

A person who runs the demo saves notebooks there (with outputs, with edits, an
Untitled.ipynb); the tests must run the notebooks the repository ships, so they
build them from the generator into a temporary directory.
"""

from __future__ import annotations

import functools
import pathlib
import subprocess
import sys
import types

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "notebooks" / "make_notebooks.py"


@functools.cache
def generator():
    """notebooks/make_notebooks.py as a module (it is a script, not part of a package); compiled here, so no
    notebooks/__pycache__ is written into the checkout."""
    module = types.ModuleType("pipenb_make_notebooks")
    module.__file__ = str(GENERATOR)
    sys.modules[module.__name__] = module  # dataclasses and the like look their module up by name
    exec(compile(GENERATOR.read_text(encoding="utf-8"), str(GENERATOR), "exec"), module.__dict__)
    return module


def names() -> list[str]:
    """The notebooks the repository ships, e.g. ``["01-quickstart", ...]``."""
    return list(generator().NOTEBOOKS)


def build(name: str) -> nbformat.NotebookNode:
    """A fresh copy of notebook ``name`` as the generator writes it (no outputs)."""
    return generator().build(name)


def code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def committed(name: str) -> nbformat.NotebookNode | None:
    """notebooks/NAME.ipynb as committed at HEAD (not as saved in the working tree), or None when this
    is not a git checkout or the file is not committed."""
    try:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:notebooks/{name}.ipynb"],
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return nbformat.reads(text, as_version=4)


def in_git_checkout() -> bool:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    return pathlib.Path(out).resolve() == ROOT

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


def load_generator(source: str, name: str = "pipenb_make_notebooks"):
    """A module from make_notebooks.py's ``source``; compiled here, so no notebooks/__pycache__ is written."""
    module = types.ModuleType(name)
    module.__file__ = str(GENERATOR)
    sys.modules[name] = module  # dataclasses and the like look their module up by name
    exec(compile(source, str(GENERATOR), "exec"), module.__dict__)
    return module


@functools.cache
def generator():
    """notebooks/make_notebooks.py as a module (it is a script, not part of a package)."""
    return load_generator(GENERATOR.read_text(encoding="utf-8"))


def names() -> list[str]:
    """The notebooks the repository ships, e.g. ``["01-quickstart", ...]``."""
    return list(generator().NOTEBOOKS)


def build(name: str) -> nbformat.NotebookNode:
    """A fresh copy of notebook ``name`` as the generator writes it (no outputs)."""
    return generator().build(name)


def code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def git(*args: str) -> str | None:
    """``git -C ROOT *args``'s output, or None outside a git checkout of ROOT (or without git)."""
    try:
        top = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, check=True).stdout.strip()
        if pathlib.Path(top).resolve() != ROOT:
            return None
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def at_head() -> tuple[object, dict[str, nbformat.NotebookNode]] | None:
    """(make_notebooks.py as committed at HEAD, as a module; {name: notebooks/NAME.ipynb as committed at HEAD}),
    or None outside a git checkout. HEAD, not the working tree: what a person saved, or a change not yet
    committed, does not count."""
    source = git("show", "HEAD:notebooks/make_notebooks.py")
    listed = git("ls-tree", "--name-only", "HEAD", "notebooks/")
    if source is None or listed is None:
        return None
    files = {}
    for path in listed.split():
        if path.endswith(".ipynb"):
            files[path.removeprefix("notebooks/").removesuffix(".ipynb")] = nbformat.reads(
                git("show", f"HEAD:{path}"), as_version=4)
    return load_generator(source, "pipenb_make_notebooks_head"), files

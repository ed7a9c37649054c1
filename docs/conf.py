"""Sphinx configuration of pipenb's documentation site.

Build it with ``bash scripts/docs.sh`` (installs the ``docs`` extra, then
``sphinx-build -W --keep-going -b html docs docs/_build/html``). The build needs no network:
no intersphinx, and widgets are shown by their static snapshots, never by a script from a CDN.
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document this checkout, whatever pipenb is installed
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import pipenb  # noqa: E402

project = "pipenb"
author = "the pipenb authors"
copyright = "the pipenb authors"
release = version = pipenb.__version__

extensions = [
    "sphinx.ext.autodoc",
    "myst_nb",
    "pipenb_notebooks",  # docs/_ext: executes the demo notebooks into docs/_notebooks/
    "pipenb_api_check",  # docs/_ext: every public name documented, every documented object a docstring
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "_ext"]
html_theme = "furo"
html_title = f"pipenb {release}"
html_static_path: list[str] = []

# MyST: ```{directive} fences, $ math off, heading anchors for cross-page links.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Notebooks: rendered from the outputs docs/_ext/pipenb_notebooks.py saved; nothing runs here.
nb_execution_mode = "off"
nb_ipywidgets_js: dict = {}  # no require.js / widget manager from a CDN
# A widget output's snapshot (text/html) is drawn, not its live view (which needs a kernel).
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]

# API reference: every public name, types from the annotations, warnings for what does not resolve.
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
python_use_unqualified_type_names = True
nitpicky = True
# Names outside pipenb cannot resolve without intersphinx (the build is offline): only pipenb's must.
nitpick_ignore_regex = [
    (r"py:.*", r"(?!pipenb\b).*"),
    (r"py:(class|obj)", r"pipenb\..*\.T"),  # a type variable: nothing to look up
]
# Internal forms that appear only where pipenb talks to itself: parameters only pipenb passes
# (SqliteStore(_db=) the shared open file, StepContext(progress=) the progress coalescer,
# EventLog(recording=) the run's row buffer, RunContext(keeper=) the factory that keeps the run)
# and History.raw()'s records as kept (for forks).
nitpick_ignore = [
    ("py:class", "pipenb.stores.sqlite.file.Database"),
    ("py:class", "pipenb.core.step_context.Progress"),
    ("py:class", "pipenb.core.eventlog.Recording"),
    ("py:class", "pipenb.core.history.Kept"),
    ("py:class", "pipenb.core.keeper.RunKeeper"),
]
suppress_warnings = ["myst.header"]

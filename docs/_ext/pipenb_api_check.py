"""Fails the docs build (a warning, and the build runs with ``-W``) when the API reference is incomplete.

Every name in ``pipenb.__all__``, ``pipenb.widgets.__all__`` and ``pipenb.stores.__all__`` must be
documented somewhere in the reference, and every public class, function and method documented there
must have a docstring. Without this, a new public name, or one whose docstring was dropped, would
leave a silent gap in the reference.
"""

from __future__ import annotations

import importlib

from sphinx.util import logging

LOG = logging.getLogger(__name__)
PACKAGES = ("pipenb", "pipenb.widgets", "pipenb.stores")
# Types that are not exported but that public signatures return (documented in docs/api/supporting.rst).
SUPPORTING: list[type] = []
_KINDS = {"class", "function", "method", "property", "exception", "classmethod", "staticmethod"}


def public_names() -> list[str]:
    """``pipenb.X`` for each X in the three packages' ``__all__``."""
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names += [f"{package}.{name}" for name in module.__all__]
    return names


def check_docstring(app, what, name, obj, options, lines) -> None:
    """autodoc-process-docstring: a public object documented without a docstring is a warning."""
    short = name.rsplit(".", 1)[-1]
    if what in _KINDS and not short.startswith("_") and not any(line.strip() for line in lines):
        LOG.warning(f"pipenb: {name} ({what}) has no docstring", type="pipenb", subtype="docstring")


def resolve(name: str):
    """The object a dotted public name stands for (``pipenb.stores.SqliteStore`` -> the class)."""
    package, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(package), attr)


def public_bases(app, name, obj, options, bases) -> None:
    """autodoc-process-bases: "Bases:" lists only classes a reader can look up (public ones and
    those outside pipenb); a private helper base (a mixin, a shared base) is an implementation detail."""
    public = {id(resolve(n)) for n in public_names()} | {id(c) for c in SUPPORTING}
    bases[:] = [b for b in bases if not getattr(b, "__module__", "").startswith("pipenb") or id(b) in public]


def check_reference(app, env) -> None:
    """env-check-consistency: every public name is documented in the reference, under that name or,
    for a class or function exported twice (``pipenb.DataStore`` is ``pipenb.stores.DataStore``),
    under the other."""
    documented = set(env.get_domain("py").objects)
    same = {id(resolve(name)) for name in public_names() if name in documented and callable(resolve(name))}
    missing = [
        name
        for name in public_names()
        if name not in documented and not (callable(resolve(name)) and id(resolve(name)) in same)
    ]
    for name in missing:
        LOG.warning(
            f"pipenb: public name {name} is not in the API reference (docs/api/*.rst)",
            type="pipenb",
            subtype="reference",
        )


def load_supporting() -> None:
    from pipenb.core.definitions import StageInfo
    from pipenb.core.store import StoredRun

    SUPPORTING[:] = [StageInfo, StoredRun]


def setup(app):
    load_supporting()
    app.connect("autodoc-process-docstring", check_docstring)
    app.connect("autodoc-process-bases", public_bases)
    app.connect("env-check-consistency", check_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

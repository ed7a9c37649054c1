"""What ``help()`` and signatures show of the public names: every one documented, types resolved,
defaults readable (no ``ForwardRef('Any')``, no ``<object object at 0x...>``).

Runs on every Python (no docs extra needed): how annotations resolve changes between versions.
"""

from __future__ import annotations

import inspect
import pydoc

import pytest

import pipenb
import pipenb.stores
import pipenb.widgets

PACKAGES = (pipenb, pipenb.stores, pipenb.widgets)


def public_objects():
    seen = {}
    for package in PACKAGES:
        for name in package.__all__:
            obj = getattr(package, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                seen.setdefault(id(obj), (f"{package.__name__}.{name}", obj))
    return list(seen.values())


def test_every_public_class_and_function_says_what_it_is_for():
    assert not [name for name, obj in public_objects() if not (obj.__doc__ or "").strip()]


def test_signatures_resolve_their_types():
    unresolved = []
    for name, obj in public_objects():
        callables = [(name, obj)]
        if inspect.isclass(obj):
            callables += [
                (f"{name}.{k}", getattr(obj, k))
                for k in vars(obj)
                if not k.startswith("_") and inspect.isfunction(getattr(obj, k, None))
            ]
        for label, fn in callables:
            try:
                signature = inspect.signature(fn, eval_str=True)
            except (TypeError, ValueError):  # a builtin without a signature: nothing to resolve
                continue
            except NameError as exc:
                unresolved.append(f"{label}: {exc}")
                continue
            if "ForwardRef" in str(signature):
                unresolved.append(f"{label}{signature}")
    assert not unresolved


@pytest.mark.filterwarnings("ignore:Widget.* is deprecated:DeprecationWarning")  # pydoc reads every attribute
def test_help_pages_read_well():
    bad = []
    for name, obj in public_objects():
        text = pydoc.render_doc(obj, renderer=pydoc.plaintext)
        if "ForwardRef" in text or "object at 0x" in text:
            bad.append(name)
    assert not bad
    assert "registry=PipelineRegistry.default" in str(inspect.signature(pipenb.PipelineFactory))

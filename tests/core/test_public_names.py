"""Every public attribute of pipenb, pipenb.widgets and pipenb.stores is in its ``__all__``, and every
name in ``__all__`` resolves (httpx's test_exported_members, for each package people import from)."""

import importlib
import types

import pytest

PACKAGES = ["pipenb", "pipenb.widgets", "pipenb.stores"]
LAZY = {"pipenb": {"SqliteStore"}, "pipenb.stores": {"SqliteStore", "SqliteStoreFactory"}}  # via __getattr__


@pytest.mark.parametrize("name", PACKAGES)
def test_public_attributes_are_exactly_all(name):
    package = importlib.import_module(name)
    public = {n for n, v in vars(package).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    exported = set(package.__all__)
    assert len(exported) == len(package.__all__), f"{name}.__all__ lists a name twice"
    assert public - exported == set(), f"{name}: public but not in __all__: {sorted(public - exported)}"
    assert exported - public - LAZY.get(name, set()) == set(), f"{name}: in __all__ only: {sorted(exported - public)}"
    for member in package.__all__:
        assert getattr(package, member) is not None


def test_pipenb_all_is_the_engines_plus_the_sqlite_store():
    import pipenb
    import pipenb.core

    assert set(pipenb.__all__) == set(pipenb.core.__all__) | {"SqliteStore"}

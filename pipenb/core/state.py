"""Run state as immutable snapshots: ``FrozenDict``, deep merge and ``DELETE``.

Stores hand out their state in O(1) without copying, so what they hand out
must be impossible to change by accident: every mapping in committed state is
a ``FrozenDict`` and a merge copies only the path a patch touches (structural
sharing). A 10 MiB value under one key therefore costs nothing per commit.
Non-mapping values (lists, arrays, DataFrames) are shared as they are; the
contract asks steps to treat them as immutable and return patches instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .sentinel import DELETE

PIPELINE_DATA_KEY = "__pipeline_data__"


def _read_only(self, *args, **kwargs):
    raise TypeError(
        "pipenb state is read-only: return a patch (a dict of changes) from the step instead"
    )


class FrozenDict(dict):
    """A ``dict`` that refuses in-place changes (still a real dict for pandas, json, ...)."""

    __slots__ = ()
    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __reduce__(self):
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return dict.__repr__(self)


EMPTY = FrozenDict()
_set = dict.__setitem__
_pop = dict.pop


_PLAIN = frozenset({int, float, str, bytes, bool, type(None), list, tuple, set, frozenset, complex})


def is_mapping(value: object) -> bool:
    t = type(value)
    if t is dict or t is FrozenDict:
        return True
    if t in _PLAIN:
        return False
    return isinstance(value, Mapping)


def freeze(value: Any) -> Any:
    """Mappings become ``FrozenDict`` (recursively, dropping ``DELETE``); others are shared."""
    t = type(value)
    if t is FrozenDict or t in _PLAIN:
        return value
    if is_mapping(value):
        return FrozenDict({k: freeze(v) for k, v in value.items() if v is not DELETE})
    return value


def merge(base: FrozenDict, patch: Mapping) -> FrozenDict:
    """Deep-merge ``patch`` into ``base`` without touching either.

    Mappings merge recursively, other values replace, ``DELETE`` removes.
    """
    out = FrozenDict(base)  # the one copy; filled through dict's own methods below
    for key, value in patch.items():
        if value is DELETE:
            _pop(out, key, None)
            continue
        old = out.get(key, DELETE)
        if old is value:
            continue
        if old is not DELETE and is_mapping(value) and is_mapping(old):
            _set(out, key, merge(old, value))
        else:
            _set(out, key, freeze(value))
    return out


def with_key(base: FrozenDict, key: str, value: Any) -> FrozenDict:
    """``base`` plus one top-level key (replaced whole, not merged)."""
    out = FrozenDict(base)
    _set(out, key, freeze(value))
    return out


def user_view(snapshot: FrozenDict) -> FrozenDict:
    """The state without the engine's reserved key (O(1) when it is absent)."""
    if PIPELINE_DATA_KEY not in snapshot:
        return snapshot
    return FrozenDict({k: v for k, v in snapshot.items() if k != PIPELINE_DATA_KEY})


def approx_size(state, depth: int = 2) -> int:
    """About how many bytes a state holds: arrays and frames by their buffers, containers a
    couple of levels deep (for a runs list, not an exact account)."""
    import sys

    def size(value, level: int) -> int:
        nbytes = getattr(value, "nbytes", None)
        if isinstance(nbytes, int):  # numpy arrays
            return nbytes
        usage = getattr(value, "memory_usage", None)
        if callable(usage) and hasattr(value, "shape"):  # pandas DataFrame / Series
            try:
                total = usage(index=True)
                return int(total.sum()) if hasattr(total, "sum") else int(total)
            except Exception:
                return sys.getsizeof(value)
        own = sys.getsizeof(value)
        if level >= depth:
            return own
        if isinstance(value, Mapping):
            return own + sum(size(k, level + 1) + size(v, level + 1) for k, v in value.items())
        if isinstance(value, (list, tuple, set, frozenset)):
            return own + sum(size(v, level + 1) for v in value)
        return own

    return size(state, 0)

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
    """Refused: a ``FrozenDict`` is read-only (a ``TypeError``); a step changes the state only by returning a patch."""
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


class RunNote(FrozenDict):
    """The engine's reserved data in a run's store, under ``PIPELINE_DATA_KEY``: the checkpoint, whether
    the run continues at a pipeline stage's router only (its sub-pipeline already ran), and the status
    stored with the checkpoint. Read by attribute; still the mapping a store always held (``note["checkpoint"]``),
    and pickled as a plain ``FrozenDict`` so files written before it, and by it, read the same."""

    __slots__ = ()

    @property
    def checkpoint(self):
        return self.get("checkpoint")

    @property
    def router_only(self) -> bool:
        return bool(self.get("router_only"))

    @property
    def status(self) -> str | None:
        return self.get("status")

    @classmethod
    def of(cls, data) -> RunNote | None:
        """``data`` (what a store holds under the reserved key) as a ``RunNote``; None when it is none."""
        if type(data) is cls or data is None:
            return data
        return cls(data) if is_mapping(data) else None

    @classmethod
    def make(cls, checkpoint, router_only: bool = False, status: str | None = None) -> RunNote:
        note = cls(checkpoint=checkpoint, status=status) if status is not None else cls(checkpoint=checkpoint)
        if router_only:
            _set(note, "router_only", True)
        return note


class Snapshot(FrozenDict):
    """A committed state that holds the engine's reserved key, with ``user``: the same state without it.

    The user state is kept apart, not rebuilt: ``ctx.state``, the next stage's
    input and the history's records are that very mapping (SPEC 15).
    """

    __slots__ = ("user",)


EMPTY = FrozenDict()
_set = dict.__setitem__
_pop = dict.pop


_PLAIN = frozenset({int, float, str, bytes, bool, type(None), list, tuple, set, frozenset, complex})


def is_mapping(value: object) -> bool:
    """Whether ``value`` is a mapping that a patch merges into (dicts fast, other ``Mapping`` types too)."""
    t = type(value)
    if t is dict or t is FrozenDict:
        return True
    if t in _PLAIN:
        return False
    return isinstance(value, Mapping)


def freeze(value: Any) -> Any:
    """Mappings become ``FrozenDict`` (recursively, dropping ``DELETE``); others are shared."""
    t = type(value)
    if t is FrozenDict or t in _PLAIN or t is Snapshot or t is RunNote:
        return value
    if is_mapping(value):
        return FrozenDict({k: freeze(v) for k, v in value.items() if v is not DELETE})
    return value


def merge(base: FrozenDict, patch: Mapping) -> FrozenDict:
    """Deep-merge ``patch`` into ``base`` without touching either.

    Mappings merge recursively, other values replace, ``DELETE`` removes. A state
    holding the reserved key stays a ``Snapshot`` (its user state merged apart).
    """
    if type(base) is Snapshot:
        return _merge_snapshot(base, patch)
    out = FrozenDict(base)  # the one copy; filled through dict's own methods below (as in ``_deep``, inline: hot)
    for key, value in patch.items():
        if value is DELETE:
            _pop(out, key, None)
            continue
        old = out.get(key, DELETE)
        if old is value:
            continue
        if old is not DELETE and is_mapping(value) and is_mapping(old):
            _set(out, key, _deep(old, value))
        else:
            _set(out, key, freeze(value))
    if PIPELINE_DATA_KEY in patch and PIPELINE_DATA_KEY in out:  # a top-level state now holds the reserved key
        return with_note(user_view(out), out[PIPELINE_DATA_KEY])
    return out


def _deep(base: FrozenDict, patch: Mapping) -> FrozenDict:
    """``merge`` without the reserved key's care (nested mappings, the engine's note)."""
    out = FrozenDict(base)  # the one copy; filled through dict's own methods below
    for key, value in patch.items():
        if value is DELETE:
            _pop(out, key, None)
            continue
        old = out.get(key, DELETE)
        if old is value:
            continue
        if old is not DELETE and is_mapping(value) and is_mapping(old):
            _set(out, key, _deep(old, value))
        else:
            _set(out, key, freeze(value))
    return out


def _merge_snapshot(base: Snapshot, patch: Mapping) -> FrozenDict:
    note = base[PIPELINE_DATA_KEY]
    if PIPELINE_DATA_KEY in patch:
        value = patch[PIPELINE_DATA_KEY]
        note = None if value is DELETE else _deep(note, value) if is_mapping(value) else freeze(value)
        patch = {k: v for k, v in patch.items() if k != PIPELINE_DATA_KEY}
    user = merge(base.user, patch) if patch else base.user
    return user if note is None else with_note(user, note)


def with_note(user: FrozenDict, note) -> FrozenDict:
    """The store state of ``user`` (without the reserved key) holding the engine's reserved data ``note``:
    a ``Snapshot`` sharing ``user``, or a plain state when ``note`` is not the engine's mapping."""
    run_note = RunNote.of(note)
    if run_note is None:
        return with_key(user, PIPELINE_DATA_KEY, note)
    out = Snapshot(user)
    _set(out, PIPELINE_DATA_KEY, run_note)
    out.user = user
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
    if type(snapshot) is Snapshot:
        return snapshot.user
    return FrozenDict({k: v for k, v in snapshot.items() if k != PIPELINE_DATA_KEY})


def run_note(state) -> RunNote | None:
    """The engine's reserved data a store state holds (None: none)."""
    return RunNote.of(state.get(PIPELINE_DATA_KEY))


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

"""Looking back at a run (SPEC 14): visits, moves, who wrote a key, two runs side by side, stale code.

Everything here reads a ``History`` through its public API (records as
``StageRecord``, ``state_before``, ``initial``) and never changes it.

Stale records need to know which code a record's stage ran: ``stage_code``
fingerprints a stage's step actions and router by their compiled code
(``co_code``, constants with nested code objects fingerprinted recursively,
names), so a comment, a blank line or a moved function is no change, while
any change of what runs is. Fingerprints are computed once per stage of a
definition (cached per ``Pipeline`` object, dropped with it) and are short
strings, so they cost one dict look-up per commit and persist with durable
history rows.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import types
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .diffs import StateDiff, diff_states, same
from .state import is_mapping

_CODES: dict[int, tuple] = {}  # id(stage) -> (weak reference to its pipeline, fingerprint)


def stage_code(pipe, stage) -> str:
    """The fingerprint of what ``stage`` (a stage of ``pipe``) runs: its steps' actions and its router.

    Asked at each stage commit, so the cache is one dict look-up: an entry is
    good while its pipeline (which holds the stage, so its id is not reused)
    lives, and goes with it.
    """
    entry = _CODES.get(id(stage))
    if entry is not None and entry[0]() is pipe:
        return entry[1]
    code = _fingerprint(stage)
    key = id(stage)
    try:
        ref = weakref.ref(pipe, lambda gone, key=key: _forget(key, gone))
    except TypeError:  # a pipeline that cannot be weakly referenced: no cache
        return code
    _CODES[key] = (ref, code)
    return code


def _forget(key: int, gone) -> None:
    entry = _CODES.get(key)
    if entry is not None and entry[0] is gone:
        del _CODES[key]


def _fingerprint(stage) -> str:
    parts = [("step", getattr(step, "id", None), _callable_key(getattr(step, "action", step)))
             for step in stage.steps]
    parts.append(("router", _callable_key(stage.router) if stage.router is not None else None))
    return hashlib.blake2b(repr(parts).encode(), digest_size=10).hexdigest()


def _callable_key(fn) -> Any:
    """What ``fn`` runs, as plain comparable values (the same in every process of one Python version)."""
    if isinstance(fn, functools.partial):
        return ("partial", _callable_key(fn.func), _const(fn.args), _const(tuple(sorted(fn.keywords.items()))))
    try:
        fn = inspect.unwrap(fn)
    except ValueError:
        pass
    fn = getattr(fn, "__func__", fn)  # a bound method: its function
    code = getattr(fn, "__code__", None)
    if code is None and not isinstance(fn, (types.BuiltinFunctionType, type)):
        call = next((vars(k)["__call__"] for k in type(fn).__mro__ if "__call__" in vars(k)), None)
        code = getattr(call, "__code__", None)  # a callable object: its class's __call__
    if code is None:
        return ("named", getattr(fn, "__module__", None), getattr(fn, "__qualname__", type(fn).__qualname__))
    return _code_key(code)


def _code_key(code: types.CodeType) -> tuple:
    return (code.co_code, tuple(_const(c) for c in code.co_consts), code.co_names, code.co_varnames,
            code.co_freevars, code.co_cellvars)


def _const(value) -> Any:
    if isinstance(value, types.CodeType):
        return _code_key(value)
    if isinstance(value, (tuple, list)):
        return tuple(_const(v) for v in value)
    if isinstance(value, frozenset):  # iteration order changes with the process's hash seed
        return ("frozenset",) + tuple(sorted(repr(_const(v)) for v in value))
    if value is None or isinstance(value, (str, bytes, int, float, complex, bool)) or value is Ellipsis:
        return value
    return ("object", type(value).__qualname__)


# -- questions about one history ------------------------------------------------
# The records are read as ``history.raw()`` gives them (a ``StageRecord``'s fields in SPEC 10's order, then
# what the history keeps besides): building 100,000 ``StageRecord`` objects would cost more than the question.
SEQ, ADDRESS, STAGE_ID, PATCH, STATE = 0, 1, 2, 4, 8


def visits(history) -> dict:
    return dict(Counter(r[ADDRESS] for r in history.raw() if r[STAGE_ID] is not None))


def transitions(history) -> dict:
    stages = [r[ADDRESS] for r in history.raw() if r[STAGE_ID] is not None]  # an edit is not a move
    return dict(Counter(zip(stages, stages[1:], strict=False)))


_ABSENT = object()


def _at(state, path: tuple):
    for key in path:
        if not is_mapping(state):
            return _ABSENT
        state = state.get(key, _ABSENT)
        if state is _ABSENT:
            return _ABSENT
    return state


def blame(history, key) -> list[tuple]:
    path = tuple(key) if isinstance(key, tuple) else (key,)
    if not path:
        raise ValueError("blame needs a top-level key or a non-empty key path")
    top, deep = path[0], len(path) > 1
    out = []
    before = history.base
    for r in history.raw():
        patch = r[PATCH]
        if patch is not None and (top in patch if type(patch) is dict or is_mapping(patch) else True):
            if deep:
                old, new = _at(before, path), _at(r[STATE], path)
            else:  # states are mappings: one look-up each
                old, new = before.get(top, _ABSENT), r[STATE].get(top, _ABSENT)
            if old is not new and (old is _ABSENT or new is _ABSENT or not _equal(old, new)):
                out.append((r[SEQ], "(edit)" if r[STAGE_ID] is None else r[ADDRESS],  # SPEC 14: edits are "(edit)"
                            None if old is _ABSENT else old, None if new is _ABSENT else new))
        before = r[STATE]
    return out


def _equal(a, b) -> bool:
    if type(a) is int and type(b) is int:  # the common counter
        return a == b
    if is_mapping(a) and is_mapping(b):
        return not diff_states(a, b)
    return same(a, b)  # arrays compare element-wise: different objects count as changed


# -- two runs -------------------------------------------------------------------

@dataclass(frozen=True)
class RunComparison:
    """Two histories aligned record by record: where they part, and how their states differ at an index."""

    a: Any
    b: Any
    diverged_at: int | None

    def __len__(self) -> int:
        """Records both runs have (the aligned indexes)."""
        return min(len(self.a), len(self.b))

    def diff(self, i: int) -> StateDiff:
        """The state after record ``i`` of the second run compared with the first's (``added``: only the second has)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"comparison index {i} out of range: the runs share {len(self)} aligned records")
        return diff_states(self.a[i].state, self.b[i].state)

    def __repr__(self) -> str:
        return (f"<RunComparison {len(self.a)} vs {len(self.b)} records, "
                f"{'no divergence' if self.diverged_at is None else f'diverged at {self.diverged_at}'}>")


def compare(a, b) -> RunComparison:
    ra, rb = a.raw(), b.raw()
    diverged = None
    if not _equal(a.initial, b.initial):
        diverged = 0
    else:
        for i, (x, y) in enumerate(zip(ra, rb, strict=False)):
            if x[ADDRESS] != y[ADDRESS] or (x[STATE] is not y[STATE] and diff_states(x[STATE], y[STATE])):
                diverged = i
                break
        else:
            if len(ra) != len(rb):
                diverged = min(len(ra), len(rb))
    return RunComparison(a, b, diverged)


# -- stale records ----------------------------------------------------------------

def stale(history, pipeline) -> list:
    """The records whose stage now runs other code than when they were made (see ``History.stale``)."""
    if pipeline is None:
        raise ValueError("stale() needs the pipeline definition to compare with: pass stale(pipeline), "
                         "or read the history from its RunContext (ctx.history.stale())")
    now: dict = {}
    out = []
    for i, (r, code) in enumerate(zip(history.raw(), history.codes(), strict=True)):
        if code is None or r[STAGE_ID] is None:
            continue  # an edit, or a record made before fingerprints were kept: unknown, not stale
        current = now.get(r[ADDRESS], _ABSENT)
        if current is _ABSENT:
            current = now[r[ADDRESS]] = _current_code(pipeline, r[ADDRESS])
        if current != code:
            out.append(i)
    if len(out) < 100:
        return [history[i] for i in out]
    records = history[:]
    return [records[i] for i in out]


def _current_code(pipeline, address: str) -> str | None:
    """The fingerprint of the stage at ``address`` in ``pipeline``; None when it has no such stage."""
    try:
        chain = pipeline.resolve(tuple(address.split("/")))
    except KeyError:
        return None
    return _fingerprint(chain[-1])  # fresh, not cached: code changed in place (autoreload) shows too

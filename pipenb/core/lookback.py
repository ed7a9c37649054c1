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

import datetime
import functools
import hashlib
import inspect
import types
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Any

from . import chain
from .diff import StateDiff, diff_states, same
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
# The records are read as ``history.raw()`` gives them (``Kept``: a record's fields, its state as a link):
# building 100,000 ``StageRecord`` objects (and their states) would cost more than the question.

class LookBack:
    """``History``'s look-back questions (SPEC 14); the work is done by this module's functions."""

    def dataframe(self):
        """One row per record (SPEC 10's columns): ``started`` as local-time pandas Timestamps, ``duration`` in
        seconds (a float).

        Seconds, not Timedeltas: a Timedelta column reads ``0 days 00:00:00.000184`` in a notebook, while a
        float sorts, sums, groups and plots as it is (``df.groupby("address").duration.sum()``)."""
        import pandas as pd

        rows = []
        for i, r in enumerate(self.raw()):
            rows.append(
                {
                    "seq": r.seq,
                    "address": r.address,
                    "label": r.label,
                    "started": r.started,
                    "duration": r.duration,
                    "decision": _show(r.decision),
                    "changed": self.diff(i).keys,
                }
            )
        df = pd.DataFrame(rows, columns=["seq", "address", "label", "started", "duration", "decision", "changed"])
        # People read these: times in the kernel's local zone, never epoch floats; durations to the microsecond.
        local = datetime.datetime.now().astimezone().tzinfo
        df["started"] = (
            pd.to_datetime(df["started"].astype("float64"), unit="s", utc=True).dt.tz_convert(local).dt.round("ms")
        )
        df["duration"] = df["duration"].astype("float64").round(6)
        return df

    def visits(self) -> dict[str, int]:
        """``{address: count}`` of the committed stage records. Edits (``"<stage> (edit)"``) are not visits:
        SPEC 14 counts the stages the run went through; an edit runs none."""
        return visits(self)

    def transitions(self) -> dict[tuple[str, str], int]:
        """``{(from_address, to_address): count}`` of the moves between consecutive stage records: undeclared
        jumps and moves into (or out of) a sub-pipeline included; an edit between two stages is not a move."""
        return transitions(self)

    def blame(self, key) -> list[tuple]:
        """``(seq, address, old, new)`` for every record that changed ``key`` (a top-level key or a key path tuple,
        ``("model", "coef")``), oldest first; edits have address ``"(edit)"``; None stands for an absent key."""
        return blame(self, key)

    def compare(self, other) -> RunComparison:
        """A ``RunComparison`` of this run (``a``) with ``other`` (``b``), aligned record by record."""
        return compare(self, other)

    def stale(self, pipeline=None) -> list:
        """The records whose stage's step actions or router now have other code than when they ran, compared
        with ``pipeline``, by default the definition the run's context holds now (after ``ctx.rebind``). Compiled
        code and constants count, so a comment or a blank line is no change; a stage the definition lost is stale.
        Edits, and records kept without a fingerprint (older SQLite rows), are unknown: never stale."""
        return stale(self, pipeline if pipeline is not None else self.definition)

    def writers(self, keys=None) -> dict:
        """``{top-level key: address}``: the record that last wrote each key (edits: ``"(edit)"``), newest first
        searched; ``keys`` (default: every key any record wrote) limits the search, which stops once all are found.
        A key no record wrote (it came with the initial state) is absent. The dashboard's state view shows it."""
        return writers(self, keys)


def visits(history) -> dict:
    """``{address: n}``: how many committed records each stage has (edits are not visits); ``History.visits()``."""
    return dict(Counter(r.address for r in history.raw() if r.stage_id is not None))


def transitions(history) -> dict:
    """``{(from, to): n}``: the moves between consecutive stage records (an edit is no move); ``History.transitions()``."""
    stages = [r.address for r in history.raw() if r.stage_id is not None]  # an edit is not a move
    return dict(Counter(zip(stages, stages[1:], strict=False)))


_ABSENT = object()


def _at(state, path: tuple):
    if state is _ABSENT or state is chain.GONE:
        return _ABSENT
    for key in path:
        if not is_mapping(state):
            return _ABSENT
        state = state.get(key, _ABSENT)
        if state is _ABSENT:
            return _ABSENT
    return state


def blame(history, key) -> list[tuple]:
    """``[(seq, address, old, new), ...]``: every record that changed ``key`` (a top-level key or a key path), oldest first; ``History.blame()``.

    One pass, nothing rebuilt and no chain walked per record: a record's link
    made on the previous record's (``PARENT`` is that link) differs from it
    only in its ``CHANGES``, so ``top``'s value is carried from record to
    record and read from ``CHANGES`` where a record wrote it. A link made on
    another state (kept whole) is read as it is, and counts only when its
    patch names ``top``, as when every record was read.
    """
    path = tuple(key) if isinstance(key, tuple) else (key,)
    if not path:
        raise ValueError("blame needs a top-level key or a non-empty key path")
    top, rest = path[0], path[1:]
    out = []
    append = out.append
    value_of, gone, absent, parent, changes_at = chain.value_of, chain.GONE, _ABSENT, chain.PARENT, chain.CHANGES
    before = history.base_link
    value = value_of(before, top, absent)  # top's value after the record before (``before``)
    old = _at(value, rest) if rest else value
    for r in history.raw():
        link = r.link
        if link[parent] is before:
            changes = link[changes_at]
            before = link
            if top not in changes:  # its state is the previous one's there
                continue
            value = changes[top]
            if value is gone:
                value = absent
        else:  # made on another state: read, and counted only when its patch names top
            before, value, patch = link, value_of(link, top, absent), r.patch
            if patch is None or ((type(patch) is dict or is_mapping(patch)) and top not in patch):
                old = _at(value, rest) if rest else value
                continue
        new = _at(value, rest) if rest else value
        if old is not new and (old is absent or new is absent or (
                old != new if type(old) is int and type(new) is int else not _equal(old, new))):
            append((r.seq, "(edit)" if r.stage_id is None else r.address,  # SPEC 14: edits are "(edit)"
                    None if old is absent else old, None if new is absent else new))
        old = new
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
    """A ``RunComparison`` of histories ``a`` and ``b``: where they diverge and per-record diffs; ``History.compare()``."""
    ra, rb = a.raw(), b.raw()
    diverged = None
    if not _equal(a.initial, b.initial):
        diverged = 0
    else:
        for i, (x, y) in enumerate(zip(ra, rb, strict=False)):
            if x.address != y.address or (x.link is not y.link and diff_states(a[i].state, b[i].state)):
                diverged = i  # a fork shares its source's links: only records after it are rebuilt
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
    for i, r in enumerate(history.raw()):
        code = r.code
        if code is None or r.stage_id is None:
            continue  # an edit, or a record made before fingerprints were kept: unknown, not stale
        current = now.get(r.address, _ABSENT)
        if current is _ABSENT:
            current = now[r.address] = _current_code(pipeline, r.address)
        if current != code:
            out.append(i)
    return [history[i] for i in out]  # only these records' states are rebuilt


def _current_code(pipeline, address: str) -> str | None:
    """The fingerprint of the stage at ``address`` in ``pipeline``; None when it has no such stage."""
    try:
        chain = pipeline.resolve(tuple(address.split("/")))
    except KeyError:
        return None
    return _fingerprint(chain[-1])  # fresh, not cached: code changed in place (autoreload) shows too


def _show(decision: Any) -> str:
    return "next" if decision is None else repr(decision) if not isinstance(decision, str) else decision


def writers(history, keys=None) -> dict:
    """``{key: address}`` of the newest record whose patch wrote each top-level key; ``History.writers()``."""
    want = None if keys is None else set(keys)
    out: dict = {}
    for r in reversed(history.raw()):
        patch = r.patch
        if patch is None or not is_mapping(patch):
            continue
        for key in patch:
            if key not in out and (want is None or key in want):
                out[key] = "(edit)" if r.stage_id is None else r.address
        if want is not None and len(out) == len(want):
            break
    return out

"""``History``: one record per committed stage, to look back at what a run did.

Which stage wrote this value, what did the state look like before ``train``:
each record keeps the user state right after its stage. States are the
store's immutable snapshots, which share every untouched value with the
previous one, so a record costs a small object, never a copy.

``update_state`` edits of a paused run are records too (address ``"<stage>
(edit)"``, ``stage_id`` None), so ``state_before`` of the next stage is the
state that stage really started from.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple, Sequence

from .state import EMPTY, is_mapping

EDIT = " (edit)"


class StageRecord(NamedTuple):
    """One committed stage (or edit): where, what it wrote, what it decided, when, and the state after."""

    seq: int
    address: str
    stage_id: str | None
    label: str
    patch: Any
    decision: Any
    started: float
    duration: float
    state: Any

    @property
    def is_edit(self) -> bool:
        return self.stage_id is None


_STATE = 8  # a record's state, by position: records are kept as plain tuples and typed when read


@dataclass(frozen=True)
class StateDiff:
    """What a record changed, by key path (tuples): ``added``, ``removed``, ``changed`` (old, new)."""

    added: dict
    removed: dict
    changed: dict

    @property
    def keys(self) -> list:
        """The changed top-level keys, in order of first appearance."""
        seen: dict = {}
        for part in (self.added, self.removed, self.changed):
            for path in part:
                seen.setdefault(path[0], None)
        return list(seen)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff_states(before, after, prefix: tuple = ()) -> StateDiff:
    """Compare two states key by key; identical objects (shared structure) are skipped at once."""
    added: dict = {}
    removed: dict = {}
    changed: dict = {}

    def walk(a, b, path):
        for key, new in b.items():
            old = a.get(key, _MISSING)
            if old is new:
                continue
            if old is _MISSING:
                added[path + (key,)] = new
            elif is_mapping(old) and is_mapping(new):
                walk(old, new, path + (key,))
            elif not _same(old, new):
                changed[path + (key,)] = (old, new)
        for key, old in a.items():
            if key not in b:
                removed[path + (key,)] = old

    walk(before, after, prefix)
    return StateDiff(added, removed, changed)


_MISSING = object()


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # arrays and frames compare element-wise: different objects count as changed
        return False


class History(Sequence):
    """A run's records, oldest first (read-only). ``limit`` keeps only the last N."""

    def __init__(self, initial=EMPTY, limit: int | None = None, records=()):
        self._records: deque[tuple] = deque((tuple(r) for r in records), maxlen=limit)
        self._base = initial      # the state before the oldest record kept
        self.initial = initial    # the state the run started with
        self.limit = limit
        self._seq = self._records[-1][0] + 1 if self._records else 0

    # -- written by the engine and the context ------------------------------
    def add(self, address: str, stage_id, label, patch, decision, started: float, duration: float, state) -> None:
        records = self._records
        if records.maxlen is not None and len(records) == records.maxlen:
            if records.maxlen == 0:
                return
            self._base = records[0][_STATE]
        records.append((self._seq, address, stage_id, label, patch, decision, started, duration, state))
        self._seq += 1

    # -- reading --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [StageRecord._make(r) for r in list(self._records)[index]]
        return StageRecord._make(self._records[self._index(index)])

    def __iter__(self) -> Iterator[StageRecord]:
        return iter([StageRecord._make(r) for r in self._records])

    def _index(self, index) -> int:
        n = len(self._records)
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"history index must be an int, got {type(index).__name__}: {index!r}")
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"history index {index} out of range: the history has {n} records")
        return i

    def state_before(self, index: int):
        i = self._index(index)
        return self._records[i - 1][_STATE] if i > 0 else self._base

    def diff(self, index: int) -> StateDiff:
        i = self._index(index)
        return diff_states(self.state_before(i), self._records[i][_STATE])

    def last_index(self, address: str) -> int | None:
        """Index of the last record of the stage at ``address`` (``"train/fit"``), None if never reached."""
        for i in range(len(self._records) - 1, -1, -1):
            if self._records[i][1] == address:
                return i
        return None

    def addresses(self) -> set[str]:
        """The stages that committed at least once (edits excluded)."""
        return {r[1] for r in self._records if r[2] is not None}

    def dataframe(self):
        import pandas as pd

        rows = []
        for i, r in enumerate(self):
            rows.append({"seq": r.seq, "address": r.address, "label": r.label, "started": r.started,
                         "duration": r.duration, "decision": _show(r.decision), "changed": self.diff(i).keys})
        return pd.DataFrame(rows, columns=["seq", "address", "label", "started", "duration", "decision", "changed"])

    def __repr__(self) -> str:
        tail = ", ".join(r[1] for r in list(self._records)[-5:])
        return f"<History {len(self._records)} records{': … ' + tail if tail else ''}>"


def _show(decision: Any) -> str:
    return "next" if decision is None else repr(decision) if not isinstance(decision, str) else decision

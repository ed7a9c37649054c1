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
from typing import Any, Iterator, NamedTuple, Sequence

from .diffs import StateDiff, diff_states  # noqa: F401  (StateDiff: imported from here too)
from .diffs import same as _same
from .state import EMPTY, is_mapping, merge

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


class History(Sequence):
    """A run's records, oldest first (read-only). ``limit`` keeps only the last N."""

    def __init__(self, initial=EMPTY, limit: int | None = None, records=(), loader=None, next_seq: int | None = None,
                 base=None):
        self._records: deque[tuple] = deque((tuple(r) + (0,) * (10 - len(r)) for r in records), maxlen=limit)
        self._base = initial if base is None else base  # the state before the oldest record kept
        self._initial = initial   # the state the run started with
        self.limit = limit
        self._seq = self._records[-1][0] + 1 if self._records else 0
        # Records kept in a durable store are read when first looked at, not when a run is
        # resumed: ``loader()`` replays them; records added meanwhile follow them.
        self._loader = loader
        if next_seq is not None:
            self._seq = next_seq
        self._stored_below = self._seq  # records the loader brings: those before the ones added here
        self.definition = None  # the pipeline its run now holds (set by its RunContext): what ``stale`` compares with

    def _loaded(self) -> deque:
        loader = self._loader
        if loader is not None:
            self._loader = None
            stored = loader()
            kept = [r for r in stored.raw() if r[0] < self._stored_below] + list(self._records)
            base = stored.base
            if self.limit is not None and len(kept) > self.limit:
                drop = len(kept) - self.limit
                base, kept = kept[drop - 1][_STATE], kept[drop:]
            self._records = deque(kept, maxlen=self.limit)
            self._base, self._initial = base, stored.initial
        return self._records

    def raw(self) -> list[tuple]:
        """The records as the plain tuples kept (a record's fields, then its artifacts mark)."""
        return list(self._loaded())

    @property
    def initial(self):
        """The state the run started with."""
        self._loaded()
        return self._initial

    # -- written by the engine and the context ------------------------------
    def add(self, address: str, stage_id, label, patch, decision, started: float, duration: float, state,
            mark: int = 0, code: str | None = None) -> int:
        """Append a record; ``mark`` is the artifacts' point when the stage started, ``code`` the fingerprint of
        the code its stage ran (``lookback.stage_code``). Returns its seq."""
        records = self._records
        seq = self._seq
        if records.maxlen is not None and len(records) == records.maxlen:
            if records.maxlen == 0:
                return seq
            self._base = records[0][_STATE]
        records.append((seq, address, stage_id, label, patch, decision, started, duration, state, mark, code))
        self._seq = seq + 1
        return seq

    def renumber(self, seq: int) -> None:
        """The last record's seq is ``seq`` (records rebuilt from a store keep their numbers)."""
        if self._records:
            last = self._records[-1]
            self._records[-1] = (seq,) + last[1:]
        self._seq = seq + 1

    @property
    def base(self):
        """The state before the oldest record kept (``initial`` unless a limit dropped records)."""
        self._loaded()
        return self._base

    @property
    def next_seq(self) -> int:
        return self._seq

    def mark(self, index: int) -> int:
        """The artifacts' point when record ``index``'s stage started (see ``ArtifactContainer.as_of``)."""
        return self._loaded()[self._index(index)][9]

    def head(self, index: int) -> History:
        """A new history holding the records before ``index`` (shared, not copied): a fork's past."""
        records = self._loaded()
        i = self._index(index) if index < len(records) else len(records)
        return History(self.initial, self.limit, list(records)[:i], base=self._base,
                       next_seq=records[i][0] if i < len(records) else self._seq)

    # -- reading --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._loaded())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [StageRecord._make(r[:9]) for r in list(self._loaded())[index]]
        return StageRecord._make(self._loaded()[self._index(index)][:9])

    def __iter__(self) -> Iterator[StageRecord]:
        return iter([StageRecord._make(r[:9]) for r in self._loaded()])

    def _index(self, index) -> int:
        n = len(self._loaded())
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"history index must be an int, got {type(index).__name__}: {index!r}")
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"history index {index} out of range: the history has {n} records")
        return i

    def state_before(self, index: int):
        i = self._index(index)
        return self._loaded()[i - 1][_STATE] if i > 0 else self._base

    def diff(self, index: int) -> StateDiff:
        i = self._index(index)
        record = self._loaded()[i]
        patch = record[4]
        return diff_states(self.state_before(i), record[_STATE],
                           keys=tuple(patch) if is_mapping(patch) else () if patch is None else None)

    def last_index(self, address: str) -> int | None:
        """Index of the last record of the stage at ``address`` (``"train/fit"``), None if never reached."""
        for i in range(len(self._loaded()) - 1, -1, -1):
            if self._loaded()[i][1] == address:
                return i
        return None

    def address_list(self) -> list[str]:
        """Each record's address, oldest first."""
        return [r[1] for r in self._loaded()]

    def addresses(self) -> set[str]:
        """The stages that committed at least once (edits excluded)."""
        return {r[1] for r in self._loaded() if r[2] is not None}

    def dataframe(self):
        import pandas as pd

        rows = []
        for i, r in enumerate(self):
            rows.append({"seq": r.seq, "address": r.address, "label": r.label, "started": r.started,
                         "duration": r.duration, "decision": _show(r.decision), "changed": self.diff(i).keys})
        return pd.DataFrame(rows, columns=["seq", "address", "label", "started", "duration", "decision", "changed"])

    # -- looking back (SPEC 14; see ``lookback``) ------------------------------
    def code(self, index: int) -> str | None:
        """The fingerprint of the code record ``index``'s stage ran; None for edits and records kept without one."""
        record = self._loaded()[self._index(index)]
        return record[10] if len(record) > 10 else None

    def codes(self) -> list[str | None]:
        """``code(i)`` of every record, oldest first."""
        return [r[10] if len(r) > 10 else None for r in self._loaded()]

    def visits(self) -> dict[str, int]:
        """``{address: count}`` of the committed stage records. Edits (``"<stage> (edit)"``) are not visits:
        SPEC 14 counts the stages the run went through; an edit runs none."""
        from .lookback import visits
        return visits(self)

    def transitions(self) -> dict[tuple[str, str], int]:
        """``{(from_address, to_address): count}`` of the moves between consecutive stage records: undeclared
        jumps and moves into (or out of) a sub-pipeline included; an edit between two stages is not a move."""
        from .lookback import transitions
        return transitions(self)

    def blame(self, key) -> list[tuple]:
        """``(seq, address, old, new)`` for every record that changed ``key`` (a top-level key or a key path tuple,
        ``("model", "coef")``), oldest first; edits have address ``"(edit)"``; None stands for an absent key."""
        from .lookback import blame
        return blame(self, key)

    def compare(self, other: History):
        """A ``RunComparison`` of this run (``a``) with ``other`` (``b``), aligned record by record."""
        from .lookback import compare
        return compare(self, other)

    def stale(self, pipeline=None) -> list[StageRecord]:
        """The records whose stage's step actions or router now have other code than when they ran, compared
        with ``pipeline``, by default the definition the run's context holds now (after ``ctx.rebind``). Compiled
        code and constants count, so a comment or a blank line is no change; a stage the definition lost is stale.
        Edits, and records kept without a fingerprint (older SQLite rows), are unknown: never stale."""
        from .lookback import stale
        return stale(self, pipeline if pipeline is not None else self.definition)

    def __repr__(self) -> str:
        tail = ", ".join(r[1] for r in list(self._loaded())[-5:])
        return f"<History {len(self._loaded())} records{': … ' + tail if tail else ''}>"


def _show(decision: Any) -> str:
    return "next" if decision is None else repr(decision) if not isinstance(decision, str) else decision


def combined(patches) -> Any:
    """A stage's step patches as one mapping, for its record (None when it wrote nothing).

    Later steps win key by key, nested mappings combined; replaying a durable
    history applies the patches themselves, in order.
    """
    if not patches:
        return None
    out: dict = {}
    for patch in patches:
        for key, value in patch.items():
            old = out.get(key)
            out[key] = combined((old, value)) if is_mapping(old) and is_mapping(value) else value
    return out


def replay(rows, limit: int | None) -> History:
    """A history rebuilt from a durable store's rows: the initial state (seq -1), then each
    record's patches applied in order, so states share structure as in the live run."""
    rows = sorted(rows, key=lambda r: r[0])
    state = EMPTY
    if rows and rows[0][0] == -1:
        for patch in rows[0][4]:
            state = merge(state, patch)
        rows = rows[1:]
    history = History(state, limit)
    for seq, address, stage_id, label, patches, decision, started, duration, *code in rows:
        for patch in patches:
            state = merge(state, patch)
        history.add(address, stage_id, label, patches[0] if len(patches) == 1 else combined(patches), decision,
                    started, duration, state, code=code[0] if code else None)
        history.renumber(seq)
    return history


def rows_of(history: History) -> list[tuple]:
    """Durable rows for a history (a fork's past): the state before its oldest record, then each record's patch.

    That state is the initial state unless a limited history (``history=N``)
    dropped older records: then it is the state those records left, so the
    rows replay to the same states (the patches of dropped records are gone).
    """
    rows = [(-1, "", None, "initial", (dict(history.base),), None, 0.0, 0.0)]
    state = history.base
    for i, r in enumerate(history):
        patch = r.patch
        if patch and not _same(merge(state, patch), r.state):
            # A stage's steps combined into one patch do not always merge to the state they made
            # (a key deleted or replaced by one step, then set to a mapping by a later one): write
            # the exact change instead.
            patch = _exact_patch(diff_states(state, r.state))
        rows.append((r.seq, r.address, r.stage_id, r.label, (patch,) if patch else (), r.decision,
                     r.started, r.duration, history.code(i)))
        state = r.state
    return rows


def _exact_patch(diff: StateDiff) -> dict:
    """A patch that merges ``diff``'s before-state into its after-state exactly."""
    from .sentinel import DELETE

    out: dict = {}
    parts = [(path, new) for path, new in diff.added.items()]
    parts += [(path, new) for path, (_old, new) in diff.changed.items()]
    parts += [(path, DELETE) for path in diff.removed]
    for path, value in parts:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def fork_index(history: History, at, run_id: str) -> int:
    """The record ``at`` names (an index, or a stage address: its last record); ResumeError otherwise."""
    from .errors import ResumeError

    n = len(history)
    if isinstance(at, int) and not isinstance(at, bool):
        if not -n <= at < n:
            raise ResumeError(f"cannot fork run {run_id} at index {at}: its history has {n} records")
        return at + n if at < 0 else at
    if not isinstance(at, str) or not at:
        raise ResumeError(f"cannot fork run {run_id} at {at!r}: give a record index or a stage address")
    i = history.last_index(at)
    if i is not None:
        return i
    prefix = at + "/"
    addresses = history.address_list()
    for j in range(n - 1, -1, -1):
        if addresses[j].startswith(prefix):
            while j > 0 and addresses[j - 1].startswith(prefix):  # the first record of that last visit
                j -= 1
            return j
    reached = sorted({a for a in addresses if not a.endswith(EDIT)})
    raise ResumeError(f"cannot fork run {run_id} at {at!r}: the run never reached that stage "
                      f"(it reached: {', '.join(reached) or 'nothing yet'})")

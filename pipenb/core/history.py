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

from . import chain
from .chain import Link
from .diff import StateDiff, diff_states, exact_patch, same
from .lookback import LookBack
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
        """True for a record of ``ctx.update_state`` (address ``"<stage> (edit)"``, no stage id)."""
        return self.stage_id is None


class HistoryRow(NamedTuple):
    """A record as a durable store keeps it: the stage's patches in order instead of the state they made.

    Built here only (``of_stage``, ``of_edit``, ``initial``); a store keeps it
    as a plain tuple. Seq -1 is the run's initial state (``patches ==
    (initial_state,)``); replaying the rows in seq order rebuilds the states.
    """

    seq: int
    address: str
    stage_id: str | None
    label: str
    patches: tuple
    decision: Any
    started: float
    duration: float
    code: str | None = None  # the fingerprint of the code the stage ran (``lookback.stage_code``); rows of older
    # pipenbs have 8 fields: unknown
    outputs: dict | None = None  # step id -> its output (artifact "<address>/<step id>") for a store keeping artifacts

    @classmethod
    def of_stage(cls, seq: int, addr: tuple, stage, patches, decision, clock: tuple, duration: float, *,
                 outputs: dict | None = None) -> HistoryRow:
        """``clock``: the engine's (perf counter, time, artifacts mark, code fingerprint) when the stage started."""
        return tuple.__new__(cls, (seq, "/".join(addr), stage.id, stage.label, tuple(patches), decision, clock[1],
                                   duration, clock[3], outputs))

    @classmethod
    def of_edit(cls, seq: int, position: str, patch, started: float) -> HistoryRow:
        """``update_state(patch)`` of a run that continues at ``position``."""
        return tuple.__new__(cls, (seq, position + EDIT, None, "edit", (dict(patch),), None, started, 0.0, None, None))

    @classmethod
    def initial(cls, state, started: float = 0.0) -> HistoryRow:
        return tuple.__new__(cls, (-1, "", None, "initial", (dict(state),), None, started, 0.0, None, None))


class Kept(NamedTuple):
    """A record as a ``History`` keeps it: a ``StageRecord``'s fields, its state as a ``chain.Link`` (whole
    or the keys its stage wrote), and the artifacts' mark when its stage started."""

    seq: int
    address: str
    stage_id: str | None
    label: str
    patch: Any
    decision: Any
    started: float
    duration: float
    link: Link
    mark: int
    code: str | None  # the fingerprint of the code its stage ran; None: an edit, or unknown


_new = tuple.__new__
_after = chain.after
_CACHED = 8  # rebuilt states kept, newest first: reading a record twice gives the same object


class History(Sequence, LookBack):
    """A run's records, oldest first (read-only). ``limit`` keeps only the last N."""

    def __init__(self, initial=EMPTY, limit: int | None = None, records=(), loader=None, next_seq: int | None = None,
                 base=None):
        self._records: deque[Kept] = deque(records, maxlen=limit)
        # The state before the oldest record kept, as a link (``initial`` unless a limit dropped records).
        self._base: Link = base if type(base) is list else chain.root(initial if base is None else base)
        self._initial = initial   # the state the run started with
        self.limit = limit
        self._seq = self._records[-1].seq + 1 if self._records else 0
        # Records kept in a durable store are read when first looked at, not when a run is
        # resumed: ``loader()`` replays them; records added meanwhile follow them.
        self._loader = loader
        if next_seq is not None:
            self._seq = next_seq
        self._stored_below = self._seq  # records the loader brings: those before the ones added here
        self._rebuilt: dict[int, tuple] = {}  # id(link) -> (link, its state rebuilt)
        self.definition = None  # the pipeline its run now holds (set by its RunContext): what ``stale`` compares with

    def _loaded(self) -> deque:
        loader = self._loader
        if loader is not None:
            self._loader = None
            stored = loader()
            kept = [r for r in stored.raw() if r.seq < self._stored_below] + list(self._records)
            base = stored.base_link
            if self.limit is not None and len(kept) > self.limit:
                drop = len(kept) - self.limit
                base, kept = kept[drop - 1].link, kept[drop:]
            self._records = deque(kept, maxlen=self.limit)
            self._base, self._initial = base, stored.initial
        return self._records

    @property
    def base_link(self) -> Link:
        """The state before the oldest record kept, as a link."""
        self._loaded()
        return self._base

    def _state(self, link: Link):
        """A link's whole state; rebuilt ones are cached a little, so reading one twice gives the same object."""
        state = link[chain.STATE]
        if state is not None:
            return state
        hit = self._rebuilt.get(id(link))
        if hit is not None and hit[0] is link:
            return hit[1]
        state = chain.state_of(link)
        if len(self._rebuilt) >= _CACHED:
            del self._rebuilt[next(iter(self._rebuilt))]
        self._rebuilt[id(link)] = (link, state)
        return state

    def raw(self) -> list[Kept]:
        """The records as kept (``Kept``: a record's fields, its state's link, its artifacts mark)."""
        return list(self._loaded())

    @property
    def initial(self):
        """The state the run started with."""
        self._loaded()
        return self._initial

    # -- written by the engine and the context ------------------------------
    def add(self, record: StageRecord, base=None, mark: int = 0, code: str | None = None) -> int:
        """Append ``record`` (its ``seq`` is given here; returned). ``base``: the state its stage started from
        (when it is the previous record's, the record keeps only what changed); ``mark``: the artifacts' point
        when the stage started."""
        records = self._records
        seq = self._seq
        if records.maxlen is not None and len(records) == records.maxlen:
            if records.maxlen == 0:
                return seq
            self._base = records[0].link
        link = chain.after(records[-1].link if records else self._base, base, record.state, record.patch)
        records.append(_new(Kept, (seq, record.address, record.stage_id, record.label, record.patch,
                                   record.decision, record.started, record.duration, link, mark, code)))
        self._seq = seq + 1
        return seq

    def add_stage(self, address: str, stage, decision, clock: tuple, duration: float, work, state) -> None:
        """The engine's ``add``: a stage at ``address`` that ran ``work`` (a ``commit.StageWork``), decided
        ``decision`` and committed ``state``; ``clock`` is (perf counter, time, artifacts mark, code fingerprint)
        when it started."""
        records = self._records
        if self.limit is not None and len(records) == self.limit:
            if not self.limit:
                return
            self._base = records[0].link
        patches = work.patches
        patch = patches[0] if len(patches) == 1 else combined(patches)
        seq = self._seq
        self._seq = seq + 1
        records.append(_new(Kept, (seq, address, stage.id, stage.label, patch, decision, clock[1], duration,
                                   _after(records[-1].link if records else self._base, work.base, state, patch),
                                   clock[2], clock[3])))

    def renumber(self, seq: int) -> None:
        """The last record's seq is ``seq`` (records rebuilt from a store keep their numbers)."""
        if self._records:
            self._records[-1] = self._records[-1]._replace(seq=seq)
        self._seq = seq + 1

    @property
    def base(self):
        """The state before the oldest record kept (``initial`` unless a limit dropped records)."""
        self._loaded()
        return self._state(self._base)

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next record will get."""
        return self._seq

    def mark(self, index: int) -> int:
        """The artifacts' point when record ``index``'s stage started (``ArtifactContainer.as_of``); -1: read back
        from a durable store, whose ``load_artifacts(before=seq)`` has them."""
        return self._loaded()[self._index(index)].mark

    def head(self, index: int) -> History:
        """A new history holding the records before ``index`` (shared, not copied): a fork's past."""
        records = self._loaded()
        i = self._index(index) if index < len(records) else len(records)
        return History(self.initial, self.limit, list(records)[:i], base=self._base,
                       next_seq=records[i].seq if i < len(records) else self._seq)

    # -- reading --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._loaded())

    def _record(self, r: Kept) -> StageRecord:
        return _new(StageRecord, (*r[:8], self._state(r.link)))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._record(r) for r in list(self._loaded())[index]]
        return self._record(self._loaded()[self._index(index)])

    def __iter__(self) -> Iterator[StageRecord]:
        return iter([self._record(r) for r in self._loaded()])

    def _index(self, index) -> int:
        n = len(self._loaded())
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"history index must be an int, got {type(index).__name__}: {index!r}")
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"history index {index} out of range: the history has {n} records")
        return i

    def _link_before(self, i: int) -> Link:
        return self._loaded()[i - 1].link if i > 0 else self._base

    def state_before(self, index: int):
        """The state record ``index``'s stage started from (negative indexes count from the end)."""
        return self._state(self._link_before(self._index(index)))

    def diff(self, index: int) -> StateDiff:
        """A ``StateDiff`` of what record ``index`` changed: ``h.diff(-1).changed``."""
        i = self._index(index)
        record = self._loaded()[i]
        patch = record.patch
        keys = tuple(patch) if is_mapping(patch) else () if patch is None else None
        if keys is None:  # no patch to go by: compare the whole states
            return diff_states(self.state_before(i), self._state(record.link))
        # Only the keys the patch wrote can differ: read just those, nothing rebuilt.
        return diff_states(chain.KeyView(self._link_before(i)), chain.KeyView(record.link), keys=keys)

    def last_index(self, address: str) -> int | None:
        """Index of the last record of the stage at ``address`` (``"train/fit"``), None if never reached."""
        records = self._loaded()
        for i in range(len(records) - 1, -1, -1):
            if records[i].address == address:
                return i
        return None

    def address_list(self) -> list[str]:
        """Each record's address, oldest first."""
        return [r.address for r in self._loaded()]

    def addresses(self) -> set[str]:
        """The stages that committed at least once (edits excluded)."""
        return {r.address for r in self._loaded() if r.stage_id is not None}

    # -- looking back (SPEC 14; see ``lookback``) ------------------------------
    def code(self, index: int) -> str | None:
        """The fingerprint of the code record ``index``'s stage ran; None for edits and records kept without one."""
        return self._loaded()[self._index(index)].code

    def codes(self) -> list[str | None]:
        """``code(i)`` of every record, oldest first."""
        return [r.code for r in self._loaded()]

    def __repr__(self) -> str:
        tail = ", ".join(r.address for r in list(self._loaded())[-5:])
        return f"<History {len(self._loaded())} records{': … ' + tail if tail else ''}>"


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
    for seq, address, stage_id, label, patches, decision, started, duration, *code in rows:  # code, outputs
        base = state
        for patch in patches:
            state = merge(state, patch)
        patch = patches[0] if len(patches) == 1 else combined(patches)
        history.add(_new(StageRecord, (seq, address, stage_id, label, patch, decision, started, duration, state)),
                    base, mark=-1, code=code[0] if code else None)  # -1: the artifacts are the store's
        history.renumber(seq)
    return history


def rows_of(history: History) -> list[tuple]:
    """Durable rows for a history (a fork's past): the state before its oldest record, then each record's patch.

    That state is the initial state unless a limited history (``history=N``)
    dropped older records: then it is the state those records left, so the
    rows replay to the same states (the patches of dropped records are gone).
    """
    rows = [HistoryRow.initial(history.base)]
    state = history.base
    for r, code in zip(history, history.codes(), strict=True):
        patch = r.patch
        if patch and not same(merge(state, patch), r.state):
            # A stage's steps combined into one patch do not always merge to the state they made
            # (a key deleted or replaced by one step, then set to a mapping by a later one): write
            # the exact change instead.
            patch = exact_patch(diff_states(state, r.state))
        rows.append(HistoryRow(r.seq, r.address, r.stage_id, r.label, (patch,) if patch else (), r.decision,
                               r.started, r.duration, code))
        state = r.state
    return rows


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

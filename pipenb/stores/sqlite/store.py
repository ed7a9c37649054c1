"""``SqliteStore``: run state and checkpoints that survive a kernel restart.

One SQLite file holds many runs. Each top-level key of a run's state is one
pickled row, so a stage commit rewrites only the keys it touched (a 10 MiB
value is written once, not at every stage). The state is also kept in memory
as a ``FrozenDict`` so ``get()`` stays O(1); the file is read once, when the
store is opened. A transaction (one per stage commit) is one SQLite
transaction: after a crash the file holds the last committed stage, whole.
A commit that fails for any reason (SQLite, a value that cannot be pickled,
the file gone from its path) keeps nothing: neither in the file nor in memory.

The store also keeps the run's per-stage history (``keeps_history``): a row
given to ``append_history`` inside a transaction is written in the same
SQLite transaction as that transaction's state keys, and dropped with them
if it fails or is rolled back; ``load_history`` reads them back in seq order.
The rows of the last few stages wait in the run's history journal, a row of
the run's state table that the commit rewrites anyway, and move to the
history table together every ``JOURNAL_ROWS`` stages (see ``journal``):
a history row costs no page write of its own. Top-level state keys starting
with ``RESERVED`` (U+10FFFF) are refused: they name that journal.

The store also keeps the run's artifacts (``keeps_artifacts``, SPEC 15): the
rows given to ``write_artifacts`` inside a transaction are written in the same
SQLite transaction, by version, each large value once by its content hash
(see ``artifacts``); ``load_artifacts`` reads them back as they were last
committed or before a history record, ``copy_artifacts`` shares them with a
fork. ``synchronous`` (``"normal"`` or ``"full"``) is SQLite's own setting:
see docs/durability.md for what each survives.

Each row carries a CRC-32 of its stored bytes, checked when a run is loaded,
so a value damaged on disk is a ``StoreError`` naming the run and the key, not
a confusing unpickling error (or, worse, silently wrong bytes). The schema
version lives in ``PRAGMA user_version``; files of the first schema (no
checksums) are upgraded in place when opened, their old rows read unchecked.

Values are pickled: only open files you trust.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Iterator, Mapping

from ...core.errors import StoreError
from ...core.lifecycle import is_finished
from ...core.state import EMPTY, FrozenDict, RunNote, is_mapping, merge
from ...core.store import ProviderBase, StoreBase, StoredRun, stored_run

from . import artifacts as artifact_rows
from .busy import open_database
from .file import SCHEMA_VERSION, SYNCHRONOUS, Database, check_location  # noqa: F401
from .journal import RESERVED
from .rows import article, type_name, unpicklable  # noqa: F401


class SqliteStore(StoreBase):
    """A run's store backed by a SQLite file (see the module docstring)."""

    durable = True
    keeps_history = True
    keeps_artifacts = True

    def __init__(self, path: str | os.PathLike, run_id: str, *, timeout: float = 5.0, synchronous: str = "normal",
                 _db: Database | None = None):
        super().__init__()
        self.path = os.fspath(path)
        self.run_id = run_id
        self._db = _db if _db is not None else open_database(self.path, timeout, check_synchronous(synchronous))
        self._cached: FrozenDict | None = self._db.load(run_id) or EMPTY  # None: unloaded, read again when needed
        held = self._db.lease(run_id)
        self._epoch = held.epoch if held is not None else 0  # writes need the file to still hold it
        self._dirty: set[str] = set()
        self._pending: list[tuple] = []  # history rows waiting for the outermost transaction's commit
        self._artifacts: list[tuple] = []  # artifact rows (see artifacts.prepare) waiting for it too
        self._copies: list[tuple] = []  # (source run, before seq): a fork's artifacts, waiting for it too
        self._lock = threading.RLock()
        self._depth = 0

    # -- one driver per run (see lease) ----------------------------------------------
    leases = True

    def acquire(self, token: str) -> str | None:
        epoch, refused = self._db.acquire(self.run_id, token, self._epoch)
        if epoch is not None:
            self._epoch = epoch
        return refused

    def release_lease(self, token: str) -> None:
        self._db.release(self.run_id, token)

    def running_elsewhere(self) -> str | None:
        held = self._db.lease(self.run_id)
        if held is not None and held.running and held.alive:
            return f"is running in {held.where()}"
        return None

    def is_current(self) -> bool:
        held = self._db.lease(self.run_id)
        return (held.epoch if held is not None else 0) == self._epoch

    @classmethod
    def factory(cls, path: str | os.PathLike, *, timeout: float = 5.0,
                synchronous: str = "normal") -> SqliteStoreFactory:
        """The ``store_factory`` for ``path``; a path that can never hold the database is refused here.

        ``synchronous``: ``"normal"`` (the default) keeps every committed stage
        through a crash of the process or kernel, but a power loss or OS crash
        may lose the last few commits (never corrupt the file); ``"full"``
        syncs each commit to disk, so it also survives a power loss, at the
        cost of one fsync per stage (see docs/durability.md and ``bench/``).
        """
        return SqliteStoreFactory(path, timeout=timeout, synchronous=synchronous)

    def get(self):
        """The run's state as a read-only snapshot (held in memory; read from the file when it is not)."""
        state = self._cached
        return state if state is not None else self._state

    @property
    def _state(self) -> FrozenDict:
        state = self._cached
        if state is None:
            with self._lock:
                state = self._cached
                if state is None:
                    state = self._cached = self._db.load(self.run_id) or EMPTY
        return state

    @_state.setter
    def _state(self, state: FrozenDict) -> None:
        self._cached = state

    def unload(self) -> None:
        """Drop the in-memory copy of the state (it is in the file); the next read loads it again.

        The registry calls this when it lets a paused run go, so a released
        run's state does not stay in memory through the store it kept.
        Nothing happens inside a transaction or with writes pending.
        """
        with self._lock:
            if not (self._depth or self._dirty or self._pending or self._artifacts or self._copies):
                self._cached = None

    def set(self, patch: Mapping[str, Any]) -> None:
        """Deep-merge ``patch`` and write the changed keys in one SQLite transaction (in a ``transaction()`` block: at its end)."""
        if not is_mapping(patch):
            raise StoreError(f"store patch must be a mapping, got {type(patch).__name__}: {patch!r}")
        for key in patch:
            if type(key) is not str or key[:1] == RESERVED:
                self._refuse_key(key)
        with self._lock:
            before, dirty = self._state, set(self._dirty)
            self._state = merge(before, patch)
            self._dirty.update(patch.keys())
            if self._depth:
                return
            self._flush(before, dirty, 0)
            state = self._state
        if self._listeners:
            self._listeners(state)

    def append_history(self, row: tuple) -> None:
        """Keep ``row`` with the current commit: in a transaction, when the outermost one commits; else at once.

        The row is written in the same SQLite transaction as the transaction's
        state keys, and dropped with them if it fails or is rolled back. A row
        whose seq is already kept replaces it.
        """
        if not isinstance(row, tuple) or not row or type(row[0]) is not int:
            raise StoreError(f"run {self.run_id}: a history row must be a tuple starting with its int seq, got {row!r}")
        with self._lock:
            self._pending.append(tuple(row))  # kept as a plain tuple: the file never names a pipenb class
            if self._depth:
                return
            self._flush(self._state, set(self._dirty), 0)

    def write_artifacts(self, seq: int, items: list) -> dict[str, str]:
        """Keep ``items`` (``(key, value, durable)``) with the current commit, pickled now; key -> why for those that
        are not written (``durable`` False, unpicklable): a note row says so, which a read after a restart names."""
        rows, skipped = artifact_rows.prepare(self.run_id, seq, items)
        with self._lock:
            self._artifacts.extend(rows)
            if not self._depth:
                self._flush(self._state, set(self._dirty), len(self._pending))
        return skipped

    def load_artifacts(self, before: int | None = None) -> dict[str, Any]:
        """Key -> artifact (or ``NotSaved``) as last committed, or as before history record ``before``."""
        return self._db.load_artifacts(self.run_id, before)

    def copy_artifacts(self, source_run_id: str, before: int) -> None:
        """With the current commit: this run gets the artifact versions run ``source_run_id`` wrote before its history
        record ``before`` (rows only: large values are shared, not written again)."""
        with self._lock:
            self._copies.append((source_run_id, before))
            if not self._depth:
                self._flush(self._state, set(self._dirty), len(self._pending))

    def load_history(self) -> list[tuple]:
        """This run's history rows ordered by seq: the committed ones, with those of an open transaction."""
        with self._lock:
            rows = self._db.load_history(self.run_id)
            if self._pending:
                by_seq = {row[0]: row for row in rows}
                by_seq.update((row[0], row) for row in self._pending)
                rows = [by_seq[seq] for seq in sorted(by_seq)]
            return rows

    def history_next_seq(self) -> int:
        """The seq the next history row gets: one past the highest stored or pending (0 when none), read from the
        table's ``MAX(seq)`` and the journal's row headers, nothing unpickled."""
        with self._lock:
            stored = self._db.history_next_seq(self.run_id)
            return max([stored] + [row[0] + 1 for row in self._pending])

    def clear(self) -> None:
        """Delete every row of this run, state and history, in one SQLite transaction; the state becomes empty.

        Refused inside a transaction (its writes could not be undone with it).
        Listeners hear the empty state.
        """
        with self._lock:
            if self._depth:
                raise StoreError(f"run {self.run_id}: clear() inside a transaction is refused; nothing was cleared")
            self._db.clear(self.run_id)
            before = self._state
            self._state, self._dirty, self._pending, self._artifacts, self._copies = EMPTY, set(), [], [], []
        if before is not EMPTY and self._listeners:
            self._listeners(EMPTY)

    def _refuse_key(self, key: object) -> None:
        if isinstance(key, str):
            if not key.startswith(RESERVED):
                return
            raise StoreError(
                f"run {self.run_id}: key {key!r} starts with {RESERVED!r} (U+10FFFF), which a SqliteStore keeps for "
                f"its own rows (the history journal); use another top-level key. Nothing was kept"
            )
        raise StoreError(
            f"run {self.run_id}: key {key!r} is {article(type(key).__name__)}; top-level keys of a SqliteStore state must "
            f"be str (each is a row keyed by text, so {key!r} would come back as {str(key)!r}). Nothing was kept"
        )

    def _flush(self, before: FrozenDict, dirty: set[str], mark: int, marks: tuple = (0, 0)) -> None:
        """Write the dirty keys and pending history and artifact rows in one SQLite transaction.

        On any failure, go back to ``before`` (and ``dirty``), drop the history
        rows appended since ``mark`` (the artifact rows and copies since
        ``marks``), and raise a StoreError.
        """
        if not self._dirty and not self._pending and not self._artifacts and not self._copies:
            return
        try:
            self._db.write(self.run_id, self._state, sorted(self._dirty), self._pending, self._epoch,
                           artifacts=self._artifacts, copies=self._copies)
        except BaseException as exc:
            self._state, self._dirty = before, dirty
            del self._pending[mark:]
            del self._artifacts[marks[0]:]
            del self._copies[marks[1]:]
            if isinstance(exc, StoreError) or not isinstance(exc, Exception):
                raise
            raise StoreError(f"run {self.run_id}: commit to {self.path!r} failed, nothing of it was kept: "
                             f"{type(exc).__name__}: {exc}") from exc
        self._dirty = set()
        self._pending = []
        self._artifacts = []
        self._copies = []

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqliteStore]:
        """Writes inside commit all or nothing, as one SQLite transaction when the outermost one ends.

        History rows appended inside are part of it. Nested transactions are
        savepoints in memory: an exception leaving an inner one undoes only
        its writes (and drops only its history rows). Listeners hear once, after the
        outermost commit.
        """
        with self._lock:
            before, dirty, mark = self._state, set(self._dirty), len(self._pending)
            marks = (len(self._artifacts), len(self._copies))
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._state, self._dirty = before, dirty
                del self._pending[mark:]
                del self._artifacts[marks[0]:]
                del self._copies[marks[1]:]
                raise
            finally:
                self._depth -= 1
            if self._depth:
                return
            self._flush(before, dirty, mark, marks)
            state = self._state
        if state is not before and self._listeners:
            self._listeners(state)

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, run {self.run_id})"


def check_synchronous(value: object) -> str:
    """``value`` if it is a ``synchronous`` choice; else a ValueError naming it and the choices."""
    if not isinstance(value, str) or value not in SYNCHRONOUS:
        raise ValueError(f"SqliteStore synchronous must be one of {sorted(SYNCHRONOUS)}, got {value!r}")
    return value


class SqliteStoreFactory(ProviderBase):
    """``store_factory`` for a SQLite file: ``factory(run_id)`` opens that run's store.

    A path that cannot hold the database (its directory missing or not
    writable, a directory) is a ``StoreError`` here, when the factory is made;
    a new file is created at once. An existing file is opened, and its content
    checked, when the first run is opened.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 5.0, synchronous: str = "normal"):
        self.path = os.fspath(path)
        self.timeout = timeout
        self._synchronous = check_synchronous(synchronous)
        self._db: Database | None = None
        self._lock = threading.Lock()
        if not check_location(self.path):
            self._db = open_database(self.path, timeout, self._synchronous)

    def _database(self) -> Database:
        with self._lock:
            if self._db is None:
                self._db = open_database(self.path, self.timeout, self._synchronous)
            return self._db

    @property
    def synchronous(self) -> str:
        """``"normal"`` or ``"full"``: read back from the open connection's ``PRAGMA synchronous``, not from the
        argument, so it says what SQLite does."""
        return self._database().synchronous()

    def artifact_bytes(self) -> int:
        """Bytes of artifact values stored in the file (small ones inline, each large one once, however many
        stages and forks refer to it)."""
        db = self._database()
        return db.reading("measuring artifacts", artifact_rows.stored_bytes)

    def __call__(self, run_id: str) -> SqliteStore:
        return SqliteStore(self.path, run_id, _db=self._database())

    def stored_runs(self) -> list[StoredRun]:
        """Every run in the file with a checkpoint, and every finished run not removed, in one query
        (``factory.runs()``)."""
        db = self._database()
        leases = db.leases()
        out = []
        for run_id, data in db.stored_data():
            run = stored_run(run_id, RunNote.of(data))
            if run is None or is_finished(run.status):  # nothing to list, or finished: no drive to ask about
                if run is not None:
                    out.append(run)
                continue
            status = run.status
            held = leases.get(run_id)
            if held is not None and held.running:
                status = "running" if held.alive else "interrupted"
            elif status == "running":  # a cursor checkpoint with no drive going on: the process died
                status = "interrupted"
            where = held.where() if held is not None and held.running and held.alive else ""
            out.append(StoredRun(run_id, run.pipeline_id, status, run.paused_at, where, forked_from=run.forked_from))
        return out

    def run_ids(self) -> list[str]:
        """Every run id with state in the file."""
        return self._database().run_ids()

    def close(self) -> None:
        """Close the factory's connection to the file (the next store it opens opens it again)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __repr__(self) -> str:
        return f"SqliteStore.factory({self.path!r})"

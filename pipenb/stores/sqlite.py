"""``SqliteStore``: run state and checkpoints that survive a kernel restart.

One SQLite file holds many runs. Each top-level key of a run's state is one
pickled row, so a stage commit rewrites only the keys it touched (a 10 MiB
value is written once, not at every stage). The state is also kept in memory
as a ``FrozenDict`` so ``get()`` stays O(1); the file is read once, when the
store is opened. A transaction (one per stage commit) is one SQLite
transaction: after a crash the file holds the last committed stage, whole.

Values are pickled: only open files you trust.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import threading
from typing import Any, Callable, Mapping

from ..core.errors import StoreError
from ..core.state import EMPTY, FrozenDict, is_mapping, merge
from ..core.store import ProviderBase, StoreBase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pipenb_state (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    kind   INTEGER NOT NULL DEFAULT 0,   -- 0: pickled, 1: raw bytes (no pickling, no extra copy)
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID
"""


_PICKLED, _RAW = 0, 1


class _Database:
    """One connection per file per process, shared by that file's run stores."""

    def __init__(self, path: str, timeout: float):
        self.path = path
        self.lock = threading.RLock()
        try:
            self.conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
            # Big pages and memory-mapped reads: states hold large blobs (arrays, frames, bytes).
            # page_size only takes effect on a new file, before WAL is switched on.
            self.conn.execute("PRAGMA page_size=65536")
            self.conn.execute("PRAGMA mmap_size=268435456")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {path!r}: {type(exc).__name__}: {exc}") from exc

    def error(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(f"SQLite store {self.path!r}: {what} failed: {type(exc).__name__}: {exc}")

    def load(self, run_id: str) -> FrozenDict:
        with self.lock:
            try:
                rows = self.conn.execute(
                    "SELECT key, value, kind FROM pipenb_state WHERE run_id = ?", (run_id,)
                ).fetchall()
            except sqlite3.Error as exc:
                raise self.error(f"reading run {run_id}", exc) from exc
        try:
            return FrozenDict({k: v if kind == _RAW else pickle.loads(v) for k, v, kind in rows})
        except Exception as exc:
            raise self.error(f"unpickling run {run_id}", exc) from exc

    def write(self, run_id: str, state: Mapping, keys) -> None:
        upserts, deletes = [], []
        for key in keys:
            if key in state:
                value = state[key]
                if type(value) is bytes:
                    upserts.append((run_id, key, value, _RAW))
                else:
                    upserts.append((run_id, key, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), _PICKLED))
            else:
                deletes.append((run_id, key))
        with self.lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if upserts:
                        conn.executemany("INSERT OR REPLACE INTO pipenb_state VALUES (?, ?, ?, ?)", upserts)
                    if deletes:
                        conn.executemany("DELETE FROM pipenb_state WHERE run_id = ? AND key = ?", deletes)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self.error(f"commit for run {run_id}", exc) from exc

    def run_ids(self) -> list[str]:
        with self.lock:
            try:
                return [r[0] for r in self.conn.execute("SELECT DISTINCT run_id FROM pipenb_state ORDER BY run_id")]
            except sqlite3.Error as exc:
                raise self.error("listing runs", exc) from exc

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class _Transaction:
    __slots__ = ("_store", "_snapshot", "_dirty")

    def __init__(self, store: SqliteStore):
        self._store = store

    def __enter__(self):
        store = self._store
        store._lock.acquire()
        store._depth += 1
        self._snapshot = store._state
        self._dirty = set(store._dirty)
        return store

    def __exit__(self, exc_type, exc, tb):
        store = self._store
        store._depth -= 1
        try:
            if exc_type is not None:
                store._state, store._dirty = self._snapshot, self._dirty
                return False
            if store._depth == 0:
                try:
                    store._flush()
                except StoreError:
                    store._state, store._dirty = self._snapshot, set()
                    raise
        finally:
            store._lock.release()
        if store._depth == 0 and store._listeners and store._state is not self._snapshot:
            store._notify()
        return False


class SqliteStore(StoreBase):
    """A run's store backed by a SQLite file (see the module docstring)."""

    durable = True

    def __init__(self, path: str | os.PathLike, run_id: str, *, timeout: float = 5.0, _db: _Database | None = None):
        self.path = os.fspath(path)
        self.run_id = run_id
        self._db = _db if _db is not None else _Database(self.path, timeout)
        self._state = self._db.load(run_id) or EMPTY
        self._dirty: set[str] = set()
        self._lock = threading.RLock()
        self._depth = 0
        self._listeners: tuple[Callable, ...] = ()

    @classmethod
    def factory(cls, path: str | os.PathLike, *, timeout: float = 5.0) -> SqliteStoreFactory:
        return SqliteStoreFactory(path, timeout=timeout)

    def get(self):
        return self._state

    def set(self, patch: Mapping[str, Any]) -> None:
        if not is_mapping(patch):
            raise StoreError(f"store patch must be a mapping, got {type(patch).__name__}: {patch!r}")
        with self._lock:
            before, dirty = self._state, set(self._dirty)
            self._state = merge(self._state, patch)
            self._dirty.update(patch.keys())
            if self._depth == 0:
                try:
                    self._flush()
                except StoreError:
                    self._state, self._dirty = before, dirty
                    raise
        if self._depth == 0 and self._listeners:
            self._notify()

    def _flush(self) -> None:
        if self._dirty:
            self._db.write(self.run_id, self._state, sorted(self._dirty))
            self._dirty = set()

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    def subscribe(self, listener: Callable) -> Callable[[], None]:
        self._listeners = self._listeners + (listener,)

        def unsubscribe() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener(self._state)
            except Exception:
                pass

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, run {self.run_id})"


class SqliteStoreFactory(ProviderBase):
    """``store_factory`` for a SQLite file: ``factory(run_id)`` opens that run's store."""

    def __init__(self, path: str | os.PathLike, *, timeout: float = 5.0):
        self.path = os.fspath(path)
        self.timeout = timeout
        self._db: _Database | None = None
        self._lock = threading.Lock()

    def _database(self) -> _Database:
        with self._lock:
            if self._db is None:
                self._db = _Database(self.path, self.timeout)
            return self._db

    def __call__(self, run_id: str) -> SqliteStore:
        return SqliteStore(self.path, run_id, _db=self._database())

    def run_ids(self) -> list[str]:
        """Every run id with state in the file."""
        return self._database().run_ids()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __repr__(self) -> str:
        return f"SqliteStore.factory({self.path!r})"

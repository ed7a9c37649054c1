"""The SQLite file under ``SqliteStore``: opening and migrating it, and the rows of each run.

One connection per file per process, shared by that file's run stores. Each
top-level key of a run's state is one row, pickled (or raw ``bytes``), with a
CRC32 so a damaged value is reported instead of coming back wrong (see
``rows``). A run's per-stage history rows live in ``pipenb_history``,
one pickled row per seq with the same CRC32, written in the same SQLite
transaction as the state keys of the stage that produced them; the rows of
the last few stages wait in the run's history journal, a row of its state
(see ``journal``). Artifacts have their own two tables (see ``artifacts``).
The file records its schema version in ``PRAGMA user_version``; older files
are upgraded in place, newer ones refused.
The connection keeps each run's journal in memory after reading it once.
Closing the connection moves the journals it wrote into ``pipenb_history``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Mapping

from ...core.checkpoints import PipelineCheckpoint
from ...core.errors import StoreError
from ...core.state import PIPELINE_DATA_KEY, FrozenDict, RunNote, is_mapping, with_note
from . import journal as journals
from . import artifacts as artifact_rows
from . import lease
from .location import check_location
# JOURNAL_KEY, JOURNAL_MAGIC, JOURNAL_ROWS: the tests have always read them here
from .journal import JOURNAL_KEY, JOURNAL_MAGIC, JOURNAL_ROWS, NO_JOURNAL, RESERVED, Journal  # noqa: F401
from .rows import PICKLED, article, check_crc, checked_value, pickle_history, pickle_state, type_name, unpickle

SCHEMA_VERSION = 5
"""The ``PRAGMA user_version`` this code writes; 0 is the first schema (no ``crc`` column), 1 has no history
table, 2 no lease table, 3 no history journal (a pipenb of schema 3 would show the journal as a state key and
miss its rows, so it must refuse a file of schema 4), 4 no artifact tables (see ``artifacts``; a pipenb of
schema 4 would resume runs without their artifacts). docs/durability.md describes the tables."""

SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL"}
"""``SqliteStore.factory(synchronous=...)``: NORMAL survives a process crash; FULL also a power loss (each commit
synced to disk). See docs/durability.md."""

_CREATE = """
CREATE TABLE IF NOT EXISTS pipenb_state (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    kind   INTEGER NOT NULL DEFAULT 0,   -- 0: pickled, 1: raw bytes (no pickling, no extra copy)
    crc    INTEGER,                      -- zlib.crc32(value); NULL for rows of schema 0 (read unchecked)
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID
"""

_CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS pipenb_history (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,             -- the row's own seq: -1 is the initial state, then one per stage
    row    BLOB NOT NULL,                -- the pickled row tuple
    crc    INTEGER NOT NULL,             -- zlib.crc32(row)
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID
"""

_SQLITE_MAGIC = b"SQLite format 3\x00"


class Database:
    """One connection per file per process, shared by that file's run stores."""

    def __init__(self, path: str, timeout: float, synchronous: str = "normal"):
        self.path = path
        self.lock = threading.RLock()
        existed = check_location(path)
        # The file's identity when opened: a commit checks the path still leads
        # to it (SQLite would go on writing to a deleted file without a word).
        self.stat_path = os.path.abspath(path)
        self.identity: tuple[int, int] | None = None  # None: not a file (":memory:")
        self.closed = False
        self.journals: dict[str, Journal] = {}  # run id -> its journal as last read or written here
        self.wrote: set[str] = set()  # the runs whose journal this connection wrote (close() moves those)
        try:
            self.conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise self.open_error(exc, existed) from exc
        try:
            # Big pages and memory-mapped reads: states hold large blobs (arrays, frames, bytes).
            # page_size only takes effect on a new file, before WAL is switched on.
            self.conn.execute("PRAGMA page_size=65536")
            self.conn.execute("PRAGMA mmap_size=268435456")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={SYNCHRONOUS[synchronous]}")
            self.migrate()
            page = self.conn.execute("PRAGMA page_size").fetchone()[0]
            self.journal_bytes = journals.journal_bytes(page)
            if path != ":memory:":
                st = os.stat(self.stat_path)
                self.identity = (st.st_dev, st.st_ino)
        except BaseException as exc:
            self.conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self.open_error(exc, existed) from exc
            if isinstance(exc, OSError):
                raise StoreError(f"SQLite store {path!r}: cannot stat the file after opening it: {exc}") from exc
            raise

    def open_error(self, exc: sqlite3.Error, existed: bool) -> StoreError:
        path = self.path
        if getattr(exc, "sqlite_errorcode", None) == 26 or "not a database" in str(exc):  # SQLITE_NOTADB
            try:
                with open(path, "rb") as f:
                    head = f.read(16)
            except OSError:
                head = b""
            if head != _SQLITE_MAGIC:
                return StoreError(f"SQLite store {path!r}: the file is not a SQLite database "
                                  f"(it starts with {head!r}): {type(exc).__name__}: {exc}")
        if not existed:
            return StoreError(f"SQLite store {path!r}: cannot create the database file in "
                              f"{os.path.dirname(os.path.abspath(path))!r}: {type(exc).__name__}: {exc}")
        return StoreError(f"cannot open SQLite store {path!r}: {type(exc).__name__}: {exc}")

    def migrate(self) -> None:
        """Bring the file to ``SCHEMA_VERSION``; refuse a file written by a newer pipenb."""
        conn = self.conn
        if self.version() == SCHEMA_VERSION:
            return  # the usual case: nothing to write (a read-only file opens too)
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self.version()  # again: another process may have migrated meanwhile
            if version < SCHEMA_VERSION:
                conn.execute(_CREATE)
                columns = {row[1] for row in conn.execute("PRAGMA table_info(pipenb_state)")}
                if "crc" not in columns:  # schema 0
                    conn.execute("ALTER TABLE pipenb_state ADD COLUMN crc INTEGER")
                conn.execute(_CREATE_HISTORY)  # schemas 0 and 1
                conn.execute(lease.CREATE)  # schemas 0 to 2
                for create in artifact_rows.CREATE:  # schemas 0 to 4
                    conn.execute(create)
                clash = conn.execute("SELECT run_id, key FROM pipenb_state WHERE key >= ? LIMIT 1",
                                     (RESERVED,)).fetchone()  # schemas 0 to 3 took any str key
                if clash is not None:
                    raise StoreError(
                        f"SQLite store {self.path!r}: run {clash[0]}: state key {clash[1]!r} starts with "
                        f"{RESERVED!r} (U+10FFFF), which schema {SCHEMA_VERSION} keeps for pipenb's own rows; open the file "
                        f"with the pipenb that wrote it and rename the key"
                    )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def version(self) -> int:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"SQLite store {self.path!r} was written by a newer pipenb (schema version {version}; "
                             f"this pipenb knows up to {SCHEMA_VERSION}); upgrade pipenb to open it")
        return version

    def error(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(f"SQLite store {self.path!r}: {what} failed: {type(exc).__name__}: {exc}")

    def check_file(self, what: str) -> None:
        """Refuse to go on if the path no longer leads to the file that was opened (~1 µs: one stat)."""
        if self.closed:
            raise StoreError(f"SQLite store {self.path!r}: {what} refused: the store was closed")
        if self.identity is None:
            return
        try:
            st = os.stat(self.stat_path)
        except OSError as exc:
            raise StoreError(
                f"SQLite store {self.path!r}: {what} refused: the file is gone from its path ({exc.strerror}); "
                f"was it or its directory removed? Nothing was written"
            ) from None
        if (st.st_dev, st.st_ino) != self.identity:
            raise StoreError(
                f"SQLite store {self.path!r}: {what} refused: the file at that path was replaced since the store "
                f"opened it (deleted or moved, then a new file made there). Nothing was written"
            )

    def where(self, run_id: str) -> str:
        """How an error about a row of ``run_id`` starts: the file and the run."""
        return f"SQLite store {self.path!r}: run {run_id}"

    def load(self, run_id: str) -> FrozenDict:
        # CAST: a row damaged into TEXT still comes back as its bytes (and fails its checksum).
        # key < RESERVED: the state's rows only (never the journal); a range, so SQLite stops at it.
        rows = self.reading(f"reading run {run_id}", lambda conn: conn.execute(
            "SELECT key, CAST(value AS BLOB), kind, crc FROM pipenb_state WHERE run_id = ? AND key < ?",
            (run_id, RESERVED),
        ).fetchall())
        where = self.where(run_id)
        state = {key: checked_value(where, f"key {key!r}", blob, kind, crc) for key, blob, kind, crc in rows}
        if PIPELINE_DATA_KEY in state:
            note = self.check_pipeline_data(run_id, state.pop(PIPELINE_DATA_KEY))
            return with_note(FrozenDict(state), note)  # the user state kept apart (see core.state.Snapshot)
        return FrozenDict(state)

    def check_pipeline_data(self, run_id: str, data: object) -> RunNote:
        """The engine reads its reserved key without checks: refuse a row it did not write."""
        if not is_mapping(data):
            raise StoreError(
                f"run {run_id}: stored {PIPELINE_DATA_KEY} is {article(type_name(data))}, not the engine's mapping; "
                f"the file was changed outside pipenb ({self.path!r})"
            )
        note = RunNote.of(data)
        cp = note.checkpoint
        if cp is not None and not isinstance(cp, PipelineCheckpoint):
            raise StoreError(
                f"run {run_id}: stored {PIPELINE_DATA_KEY}['checkpoint'] is {article(type_name(cp))}, not a "
                f"PipelineCheckpoint; the file was changed outside pipenb ({self.path!r})"
            )
        return note

    def load_history(self, run_id: str) -> list[tuple]:
        """The run's history rows by seq: ``pipenb_history``'s, then the journal's (a journal row replaces its seq)."""
        where = self.where(run_id)
        with self.lock:
            rows, journal = self.reading(f"reading the history of run {run_id}",
                                         lambda conn: journals.read(conn, where, run_id))
            if journal.crc is not None and run_id not in self.journals:
                self.journals[run_id] = journal  # a commit checks its crc before trusting it
        blobs = {}
        for seq, blob, crc in rows + list(journal.rows):
            check_crc(where, f"history row {seq}", blob, crc)
            blobs[seq] = blob  # the journal's rows come last: they replace the table's of the same seq
        return [unpickle(where, f"history row {seq}", blobs[seq]) for seq in (sorted(blobs) if journal.rows else blobs)]

    def history_next_seq(self, run_id: str) -> int:
        """One past the highest seq of the run's stored history rows (0 when none), nothing unpickled: the table's
        ``MAX(seq)`` and the seqs in the journal's row headers."""
        where = self.where(run_id)
        with self.lock:  # the journal kept in memory is read under the lock, like the file
            return self.reading(f"reading the history of run {run_id}",
                                lambda conn: journals.next_seq(conn, where, run_id, self.journals.get(run_id)))

    def append_journal(self, run_id: str, frames: bytes, rows: tuple) -> Journal:
        """Inside a write transaction: add ``rows`` (``journal.frames``') to the run's journal, or move it all
        into ``pipenb_history`` once it is full; the journal as it is now stored (see ``journal.append``)."""
        return journals.append(self.conn, self.where(run_id), run_id, self.journals.get(run_id), frames, rows,
                               self.journal_bytes)

    # -- leases (see lease) ------------------------------------------------------
    def lease(self, run_id: str) -> lease.Lease | None:
        with self.lock:
            try:
                return lease.read(self.conn, run_id)
            except sqlite3.Error as exc:
                raise self.error(f"reading the lease of run {run_id}", exc) from exc

    def leases(self) -> dict[str, lease.Lease]:
        with self.lock:
            try:
                return lease.read_all(self.conn)
            except sqlite3.Error as exc:
                raise self.error("reading the leases", exc) from exc

    def acquire(self, run_id: str, token: str, expected: int) -> tuple[int | None, str | None]:
        return self._in_transaction(f"taking the lease of run {run_id}",
                                    lambda conn: lease.acquire(conn, run_id, token, expected))

    def release(self, run_id: str, token: str) -> None:
        self._in_transaction(f"releasing the lease of run {run_id}", lambda conn: lease.release(conn, run_id, token))

    def reading(self, what: str, fn):
        """``fn(conn)`` under the lock, once the file is checked; a StoreError saying ``what`` failed if SQLite fails."""
        with self.lock:
            self.check_file(what)
            try:
                return fn(self.conn)
            except sqlite3.Error as exc:
                raise self.error(what, exc) from exc

    def _in_transaction(self, what: str, fn):
        """``fn(conn)`` in one write transaction (``reading``'s checks), rolled back if anything fails."""
        with self.lock:
            self.check_file(what)
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(conn)
                    conn.execute("COMMIT")
                    return out
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self.error(what, exc) from exc

    def stored_data(self) -> list[tuple[str, object]]:
        """(run id, the engine's reserved data) of every run that has it, in one query."""
        rows = self.reading("listing runs", lambda conn: conn.execute(
            "SELECT run_id, CAST(value AS BLOB), crc FROM pipenb_state WHERE key = ?", (PIPELINE_DATA_KEY,)
        ).fetchall())
        out = []
        for run_id, blob, crc in rows:
            try:
                out.append((run_id, checked_value("", "", blob, PICKLED, crc)))
            except StoreError:
                continue  # a damaged row is reported when that run is opened
        return out

    def write(self, run_id: str, state: Mapping, keys, history: list[tuple] = (), epoch: int | None = None, *,
              artifacts: list[tuple] = (), copies: list[tuple] = ()) -> None:
        """One SQLite transaction: the ``keys`` of ``state`` (upserted, or deleted when absent), the ``history`` rows
        (into the run's journal, see ``journal``) and the ``artifacts`` rows with the fork ``copies`` (see
        ``artifacts.write``).

        Everything is pickled before the transaction begins, so a value that
        cannot be pickled writes nothing.
        """
        upserts = [pickle_state(run_id, key, state[key]) for key in keys if key in state]
        deletes = [(run_id, key) for key in keys if key not in state]
        frames, rows = journals.frames(run_id, [pickle_history(run_id, row) for row in history]) if history else (b"", ())

        def commit(conn: sqlite3.Connection) -> Journal | None:
            if epoch is not None and not lease.holds(conn, run_id, epoch):
                raise StoreError(
                    f"run {run_id}: this context is no longer the run's driver (another context or process "
                    f"took it over since); nothing was written to {self.path!r}"
                )
            if upserts:
                conn.executemany(
                    "INSERT OR REPLACE INTO pipenb_state (run_id, key, value, kind, crc) VALUES (?, ?, ?, ?, ?)",
                    upserts,
                )
            if deletes:
                conn.executemany("DELETE FROM pipenb_state WHERE run_id = ? AND key = ?", deletes)
            if artifacts or copies:
                artifact_rows.write(conn, run_id, artifacts, copies)
            return self.append_journal(run_id, frames, rows) if rows else None

        with self.lock:
            journal = self._in_transaction(f"commit for run {run_id}", commit)
            if journal is not None:
                self.journals[run_id] = journal  # only once committed: a failed commit leaves memory as it was
                self.wrote.add(run_id)

    def clear(self, run_id: str) -> None:
        """Delete every row of ``run_id``, state and history (its journal is a state row), in one SQLite transaction."""
        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM pipenb_state WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM pipenb_history WHERE run_id = ?", (run_id,))
            artifact_rows.clear(conn, run_id)

        with self.lock:
            self._in_transaction(f"clearing run {run_id}", delete)
            self.journals[run_id] = NO_JOURNAL

    def load_artifacts(self, run_id: str, before: int | None = None) -> dict:
        """Key -> artifact (or ``NotSaved``) of ``run_id``, latest, or before history seq ``before``."""
        where = self.where(run_id)
        return self.reading(f"reading the artifacts of run {run_id}",
                            lambda conn: artifact_rows.load(conn, where, run_id, before))

    def synchronous(self) -> str:
        """The connection's ``PRAGMA synchronous``, as ``factory(synchronous=...)`` names it."""
        value = self.reading("reading PRAGMA synchronous",
                             lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
        return {1: "normal", 2: "full"}.get(value, str(value))

    def run_ids(self) -> list[str]:
        return self.reading("listing runs", lambda conn: [r[0] for r in conn.execute(
            "SELECT run_id FROM pipenb_state UNION SELECT run_id FROM pipenb_history ORDER BY run_id")])

    def close(self) -> None:
        """Move the journals this connection wrote into ``pipenb_history`` (best effort), then close.

        A connection that only read a run's history writes nothing here."""
        with self.lock:
            if not self.closed:
                self.flush_journals()
            self.closed = True
            self.conn.close()

    def flush_journals(self) -> None:
        """One transaction: each journal kept in memory that is still the stored one goes into ``pipenb_history``.

        Only tidies the file (a journal is as valid as the table), so any failure
        leaves the journals as they are, without a word, and a busy file is
        waited for briefly.
        """
        pending = [(run_id, self.journals[run_id]) for run_id in self.wrote if self.journals[run_id].rows]
        if not pending:
            return
        try:
            self.conn.execute("PRAGMA busy_timeout = 200")
            self._in_transaction("moving history journals",
                                 lambda conn: [journals.move(conn, run_id, journal) for run_id, journal in pending])
        except (sqlite3.Error, StoreError):
            return
        self.journals.clear()
        self.wrote.clear()

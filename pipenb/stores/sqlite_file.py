"""The SQLite file under ``SqliteStore``: schema, migrations, checksums, and the rows of each run.

One connection per file per process, shared by that file's run stores. Each
top-level key of a run's state is one row, pickled (or raw ``bytes``), with a
CRC32 so a damaged value is reported instead of coming back wrong. A run's
per-stage history rows live in ``pipenb_history``, one pickled row per seq
with the same CRC32, written in the same SQLite transaction as the state
keys of the stage that produced them. The file
records its schema version in ``PRAGMA user_version``; older files are
upgraded in place, newer ones refused.

History journal (schema 4). A row in ``pipenb_history`` sits on another
b-tree page than the run's state, so writing it with each stage dirtied one
more 64 KiB page per commit (a stage cost 1.5-1.9x as much). Instead, a
commit appends its history rows to the run's *journal*: one more row of
``pipenb_state`` under ``JOURNAL_KEY``, which sorts after every key a state
may hold, so it sits on the run's own page, beside the rows every commit
rewrites anyway. Its value is raw bytes: a magic line, then per history row a
header (seq, crc32, length) and the pickled row, so appending a row appends
bytes; the journal row's own ``crc`` covers the whole value. Once it holds
``JOURNAL_ROWS`` rows or ``JOURNAL_BYTES`` bytes, the commit that reaches it
moves them into ``pipenb_history`` and deletes the journal, all in the same
SQLite transaction: one history page write per ``JOURNAL_ROWS`` stages. A row
of the journal replaces a table row of the same seq (it is newer), so
``load_history`` is the table, then the journal, by seq. The state is read with
``key < RESERVED`` and a state key starting with ``RESERVED`` is refused, so
the journal never shows in a state. The connection keeps each run's journal
in memory after reading it once; a commit writes the new journal only where
the stored row still has the crc of the one in memory (``WHERE crc = ?``, no
read), so a journal written meanwhile by another connection is read again and
gone on from, never overwritten.
Closing the connection moves the journals it wrote into ``pipenb_history``.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import struct
import threading
import zlib
from typing import Mapping, NamedTuple

from ..core.checkpoints import PipelineCheckpoint
from ..core.errors import StoreError
from ..core.state import PIPELINE_DATA_KEY, FrozenDict, is_mapping
from . import sqlite_lease as lease

SCHEMA_VERSION = 4
"""The ``PRAGMA user_version`` this code writes; 0 is the first schema (no ``crc`` column), 1 has no history
table, 2 no lease table, 3 no history journal (a pipenb of schema 3 would show the journal as a state key and
miss its rows, so it must refuse a file of schema 4)."""

RESERVED = "\U0010ffff"
"""No state key may start with this (the last code point): keys from it on belong to pipenb, not the state."""
JOURNAL_KEY = RESERVED + "journal"
"""The ``pipenb_state`` key of a run's history journal (see the module docstring)."""
JOURNAL_ROWS = 64
"""A commit that brings the journal to this many rows moves them into ``pipenb_history`` (measured: 32 to 128
give about the same cost per stage; 1, the table at every commit, costs as much as no journal)."""
JOURNAL_BYTES = 15 * 1024
"""... and so does one that brings it to this many bytes (a big row goes to the table at once). Below what a
64 KiB page keeps of a row in the page itself (16,422 bytes), so the journal never spills into overflow pages,
which every commit would then rewrite; a file of smaller pages gets a smaller bound (``Database.journal_bytes``)."""

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

_INSERT_HISTORY = "INSERT OR REPLACE INTO pipenb_history (run_id, seq, row, crc) VALUES (?, ?, ?, ?)"

_DELETE_JOURNAL = "DELETE FROM pipenb_state WHERE run_id = ? AND key = ?"
_ADD_JOURNAL = "INSERT OR IGNORE INTO pipenb_state (run_id, key, value, kind, crc) VALUES (?, ?, ?, 1, ?)"
_UPDATE_JOURNAL = "UPDATE pipenb_state SET value = ?, crc = ? WHERE run_id = ? AND key = ? AND crc = ?"

_PICKLED, _RAW = 0, 1
_SQLITE_MAGIC = b"SQLite format 3\x00"


def type_name(value: object) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def article(name: str) -> str:
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _unpicklable_part(value: object, where: str, depth: int = 0) -> tuple[str, object] | None:
    """The innermost part of ``value`` that does not pickle, as (its path, it); None if none is found."""
    if depth < 50:
        if is_mapping(value) or isinstance(value, dict):
            items = value.items()
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = enumerate(value)
        else:
            items = ()
        for k, v in items:
            try:
                pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                found = _unpicklable_part(v, f"{where}[{k!r}]", depth + 1)
                return found if found is not None else (f"{where}[{k!r}]", v)
    return None


def unpicklable(run_id: str, key: str, value: object, exc: BaseException) -> StoreError:
    part = _unpicklable_part(value, key)
    if part is None:
        what = type_name(value)
    else:
        what = f"{type_name(part[1])} (at {part[0]})"
    return StoreError(f"run {run_id}: key {key!r} holds {article(what)} that cannot be pickled, so the commit was not "
                      f"kept: {type(exc).__name__}: {exc}")


def pickle_history(run_id: str, row: tuple) -> tuple:
    """``(run_id, seq, blob, crc)`` for the history table; StoreError naming the run and the seq if it cannot pickle."""
    try:
        blob = pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        part = _unpicklable_part(row, "row")
        what = type_name(row) if part is None else f"{type_name(part[1])} (at {part[0]})"
        raise StoreError(f"run {run_id}: history row {row[0]} holds {article(what)} that cannot be pickled, so the "
                         f"commit was not kept: {type(exc).__name__}: {exc}") from exc
    return (run_id, row[0], blob, zlib.crc32(blob))


def check_location(path: str) -> bool:
    """Refuse a path that can never hold the database; returns whether the file exists already."""
    if not path:
        raise StoreError("SQLite store path is empty")
    if path == ":memory:":
        return False
    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise StoreError(f"SQLite store {path!r}: that path is a directory, not a file")
    if os.path.lexists(full):
        return True
    parent = os.path.dirname(full)
    ancestor = parent
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise StoreError(f"SQLite store {path!r}: {ancestor!r} is not a directory")
    if ancestor != parent:
        raise StoreError(f"SQLite store {path!r}: the directory {parent!r} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"SQLite store {path!r}: cannot create the database file: "
                         f"the directory {parent!r} is not writable")
    return False


_FRAME = struct.Struct("<qII")  # a journal row's header: seq, crc32 of its blob, its blob's length
JOURNAL_MAGIC = b"pipenb-journal-1\n"


class Journal(NamedTuple):
    """A run's history journal: its stored value, its rows ``(seq, blob, crc)``, the stored row's crc.

    The value is ``JOURNAL_MAGIC`` then, per row, ``_FRAME`` and the pickled
    row: appending rows appends bytes (nothing is pickled again), and the
    value's crc32 goes on from the previous one.
    """

    value: bytes = b""
    rows: tuple = ()
    crc: int | None = None  # the crc column of the stored journal row; None: there is no journal row

    def extended(self, frames: bytes, rows: tuple) -> Journal:
        value = (self.value or JOURNAL_MAGIC) + frames
        crc = zlib.crc32(frames, self.crc if self.crc is not None else _MAGIC_CRC)
        return Journal(value, self.rows + rows, crc)


_MAGIC_CRC = zlib.crc32(JOURNAL_MAGIC)
NO_JOURNAL = Journal()


def journal_frames(run_id: str, rows: list[tuple]) -> tuple[bytes, tuple]:
    """``pickle_history``'s rows as journal bytes, and as ``(seq, blob, crc)`` rows."""
    try:
        frames = b"".join(_FRAME.pack(seq, crc, len(blob)) + blob for _, seq, blob, crc in rows)
    except struct.error as exc:
        raise StoreError(f"run {run_id}: history row {rows[0][1]}: its seq does not fit in 64 bits, so the commit "
                         f"was not kept: {exc}") from exc
    return frames, tuple(r[1:] for r in rows)


class Database:
    """One connection per file per process, shared by that file's run stores."""

    def __init__(self, path: str, timeout: float):
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
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.migrate()
            page = self.conn.execute("PRAGMA page_size").fetchone()[0]
            # A row's payload stays in its (index b-tree) page up to (page - 12) * 64 / 255 - 23 bytes.
            self.journal_bytes = min(JOURNAL_BYTES, (page - 12) * 64 // 255 - 23 - 512)
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

    def load(self, run_id: str) -> FrozenDict:
        with self.lock:
            self.check_file(f"reading run {run_id}")
            try:
                # CAST: a row damaged into TEXT still comes back as its bytes (and fails its checksum).
                # key < RESERVED: the state's rows only (never the journal); a range, so SQLite stops at it.
                rows = self.conn.execute(
                    "SELECT key, CAST(value AS BLOB), kind, crc FROM pipenb_state WHERE run_id = ? AND key < ?",
                    (run_id, RESERVED),
                ).fetchall()
            except sqlite3.Error as exc:
                raise self.error(f"reading run {run_id}", exc) from exc
        state = {}
        for key, blob, kind, crc in rows:
            if crc is not None and zlib.crc32(blob) != crc:
                raise StoreError(
                    f"SQLite store {self.path!r}: run {run_id}: key {key!r} is corrupt (checksum mismatch over its "
                    f"{len(blob)} stored bytes); the file was damaged or changed outside pipenb"
                )
            if kind == _RAW:
                state[key] = blob
                continue
            try:
                state[key] = pickle.loads(blob)
            except Exception as exc:
                raise StoreError(
                    f"SQLite store {self.path!r}: run {run_id}: cannot unpickle key {key!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        if PIPELINE_DATA_KEY in state:
            self.check_pipeline_data(run_id, state[PIPELINE_DATA_KEY])
        return FrozenDict(state)

    def check_pipeline_data(self, run_id: str, data: object) -> None:
        """The engine reads its reserved key without checks: refuse a row it did not write."""
        if not is_mapping(data):
            raise StoreError(
                f"run {run_id}: stored {PIPELINE_DATA_KEY} is {article(type_name(data))}, not the engine's mapping; "
                f"the file was changed outside pipenb ({self.path!r})"
            )
        cp = data.get("checkpoint")
        if cp is not None and not isinstance(cp, PipelineCheckpoint):
            raise StoreError(
                f"run {run_id}: stored {PIPELINE_DATA_KEY}['checkpoint'] is {article(type_name(cp))}, not a "
                f"PipelineCheckpoint; the file was changed outside pipenb ({self.path!r})"
            )

    def load_history(self, run_id: str) -> list[tuple]:
        """The run's history rows by seq: ``pipenb_history``'s, then the journal's (a journal row replaces its seq)."""
        with self.lock:
            self.check_file(f"reading the history of run {run_id}")
            try:
                # One statement, so one snapshot: a commit that moves the journal into the table meanwhile
                # cannot make its rows show twice or not at all.
                rows = self.conn.execute(
                    "SELECT 0, seq, CAST(row AS BLOB), crc FROM pipenb_history WHERE run_id = ? "
                    "UNION ALL SELECT 1, 0, CAST(value AS BLOB), crc FROM pipenb_state WHERE run_id = ? AND key = ? "
                    "ORDER BY 1, 2", (run_id, run_id, JOURNAL_KEY)
                ).fetchall()
            except sqlite3.Error as exc:
                raise self.error(f"reading the history of run {run_id}", exc) from exc
            journal = NO_JOURNAL
            if rows and rows[-1][0] == 1:
                _, _, blob, crc = rows.pop()
                journal = self.decode_journal(run_id, blob, crc)
                if run_id not in self.journals:
                    self.journals[run_id] = journal  # a commit checks its crc before trusting it
        blobs = {}
        for seq, blob, crc in [r[1:] for r in rows] + list(journal.rows):
            if zlib.crc32(blob) != crc:
                raise StoreError(
                    f"SQLite store {self.path!r}: run {run_id}: history row {seq} is corrupt (checksum mismatch over "
                    f"its {len(blob)} stored bytes); the file was damaged or changed outside pipenb"
                )
            blobs[seq] = blob  # the journal's rows come last: they replace the table's of the same seq
        history = []
        for seq in sorted(blobs) if journal.rows else blobs:
            try:
                history.append(pickle.loads(blobs[seq]))
            except Exception as exc:
                raise StoreError(
                    f"SQLite store {self.path!r}: run {run_id}: cannot unpickle history row {seq}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return history

    def decode_journal(self, run_id: str, value: bytes, crc: int | None) -> Journal:
        """The stored journal row as a ``Journal``; a StoreError naming the run if it is damaged."""
        where = f"SQLite store {self.path!r}: run {run_id}: the history journal"
        if crc is None or zlib.crc32(value) != crc:
            raise StoreError(f"{where} is corrupt (checksum mismatch over its {len(value)} stored bytes); the file was "
                             f"damaged or changed outside pipenb")
        if not value.startswith(JOURNAL_MAGIC):
            raise StoreError(f"{where} is not in a format this pipenb knows (it starts with {value[:20]!r}); the file "
                             f"was changed outside pipenb")
        rows, at, size = [], len(JOURNAL_MAGIC), len(value)
        while at < size:
            if at + _FRAME.size > size:
                raise StoreError(f"{where} is truncated (a row header at byte {at} of {size})")
            seq, row_crc, length = _FRAME.unpack_from(value, at)
            at += _FRAME.size
            if at + length > size:
                raise StoreError(f"{where} is truncated (history row {seq} needs {length} bytes at byte {at} of {size})")
            rows.append((seq, value[at:at + length], row_crc))
            at += length
        return Journal(value, tuple(rows), crc)

    def stored_journal(self, run_id: str) -> Journal:
        """Inside a transaction: the run's journal as the file holds it."""
        row = self.conn.execute("SELECT CAST(value AS BLOB), crc FROM pipenb_state WHERE run_id = ? AND key = ?",
                                (run_id, JOURNAL_KEY)).fetchone()
        return NO_JOURNAL if row is None else self.decode_journal(run_id, *row)

    def stored_journal_crc(self, run_id: str) -> int | None:
        row = self.conn.execute("SELECT crc FROM pipenb_state WHERE run_id = ? AND key = ?",
                                (run_id, JOURNAL_KEY)).fetchone()
        return None if row is None else row[0]

    def append_journal(self, run_id: str, frames: bytes, rows: tuple) -> Journal:
        """Inside a write transaction: add ``rows`` (``journal_frames``') to the run's journal, or move it all into
        ``pipenb_history`` once it is full; the journal as it is now stored.

        The journal kept in memory is trusted only if the stored one still has its
        crc: the write of the new journal checks it (``WHERE crc = ?``), so the
        usual commit reads nothing; one that finds another journal (written by
        another connection) reads it and goes on from it.
        """
        conn = self.conn
        journal = self.journals.get(run_id)
        for _ in range(2):
            if journal is None:
                journal = self.stored_journal(run_id)
            new = journal.extended(frames, rows)
            if len(new.rows) < JOURNAL_ROWS and len(new.value) < self.journal_bytes:
                if journal.crc is None:
                    written = conn.execute(_ADD_JOURNAL, (run_id, JOURNAL_KEY, new.value, new.crc)).rowcount
                else:
                    written = conn.execute(_UPDATE_JOURNAL, (new.value, new.crc, run_id, JOURNAL_KEY, journal.crc)).rowcount
                if written == 1:
                    return new
            elif journal is not self.journals.get(run_id) or self.stored_journal_crc(run_id) == journal.crc:
                conn.executemany(_INSERT_HISTORY, [(run_id, *r) for r in new.rows])  # in order: a seq's last row wins
                if journal.crc is not None:
                    conn.execute(_DELETE_JOURNAL, (run_id, JOURNAL_KEY))
                return NO_JOURNAL
            journal = None  # the file holds another journal than the one in memory: go on from the stored one
        raise StoreError(f"SQLite store {self.path!r}: run {run_id}: the history journal changed while it was written")

    # -- leases (see sqlite_lease) ------------------------------------------------------
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

    def _in_transaction(self, what: str, fn):
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
        with self.lock:
            self.check_file("listing runs")
            try:
                rows = self.conn.execute(
                    "SELECT run_id, CAST(value AS BLOB), crc FROM pipenb_state WHERE key = ?", (PIPELINE_DATA_KEY,)
                ).fetchall()
            except sqlite3.Error as exc:
                raise self.error("listing runs", exc) from exc
        out = []
        for run_id, blob, crc in rows:
            if crc is not None and zlib.crc32(blob) != crc:
                continue  # a damaged row is reported when that run is opened
            try:
                out.append((run_id, pickle.loads(blob)))
            except Exception:
                continue
        return out

    def write(self, run_id: str, state: Mapping, keys, history: list[tuple] = (), epoch: int | None = None) -> None:
        """One SQLite transaction: the ``keys`` of ``state`` (upserted, or deleted when absent) and the ``history`` rows
        (into the run's journal, see the module docstring).

        Everything is pickled before the transaction begins, so a value that
        cannot be pickled writes nothing.
        """
        upserts, deletes = [], []
        for key in keys:
            if key in state:
                value = state[key]
                if type(value) is bytes:
                    blob, kind = value, _RAW
                else:
                    try:
                        blob, kind = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), _PICKLED
                    except Exception as exc:
                        raise unpicklable(run_id, key, value, exc) from exc
                upserts.append((run_id, key, blob, kind, zlib.crc32(blob)))
            else:
                deletes.append((run_id, key))
        frames, rows = journal_frames(run_id, [pickle_history(run_id, row) for row in history]) if history else (b"", ())
        with self.lock:
            self.check_file(f"commit for run {run_id}")
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
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
                    journal = self.append_journal(run_id, frames, rows) if rows else None
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self.error(f"commit for run {run_id}", exc) from exc
            if journal is not None:
                self.journals[run_id] = journal  # only once committed: a failed commit leaves memory as it was
                self.wrote.add(run_id)

    def clear(self, run_id: str) -> None:
        """Delete every row of ``run_id``, state and history (its journal is a state row), in one SQLite transaction."""
        with self.lock:
            self.check_file(f"clearing run {run_id}")
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("DELETE FROM pipenb_state WHERE run_id = ?", (run_id,))
                    conn.execute("DELETE FROM pipenb_history WHERE run_id = ?", (run_id,))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self.error(f"clearing run {run_id}", exc) from exc
            self.journals[run_id] = NO_JOURNAL

    def run_ids(self) -> list[str]:
        with self.lock:
            self.check_file("listing runs")
            try:
                return [r[0] for r in self.conn.execute(
                    "SELECT run_id FROM pipenb_state UNION SELECT run_id FROM pipenb_history ORDER BY run_id")]
            except sqlite3.Error as exc:
                raise self.error("listing runs", exc) from exc

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
        conn = self.conn
        try:
            self.check_file("moving history journals")
            conn.execute("PRAGMA busy_timeout = 200")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for run_id, journal in pending:
                    if conn.execute(_DELETE_JOURNAL + " AND crc = ?", (run_id, JOURNAL_KEY, journal.crc)).rowcount:
                        # it was still the stored journal (nobody else wrote it since): its rows go to the table
                        conn.executemany(_INSERT_HISTORY, [(run_id, *r) for r in journal.rows])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, StoreError):
            return
        self.journals.clear()
        self.wrote.clear()



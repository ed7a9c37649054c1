"""A run's history journal: its history rows written beside its state, moved into ``pipenb_history`` in batches.

Why it exists (schema 4). A row in ``pipenb_history`` sits on another b-tree
page than the run's state, so writing it with each stage dirtied one more
64 KiB page per commit (a stage cost 1.5-1.9x as much). Instead, a commit
appends its history rows to the run's *journal*: one more row of
``pipenb_state`` under ``JOURNAL_KEY``, which sorts after every key a state
may hold, so it sits on the run's own page, beside the rows every commit
rewrites anyway. Its value is raw bytes: a magic line, then per history row a
header (seq, crc32, length) and the pickled row, so appending a row appends
bytes; the journal row's own ``crc`` covers the whole value. Once it holds
``JOURNAL_ROWS`` rows or ``JOURNAL_BYTES`` bytes, the commit that reaches it
moves them into ``pipenb_history`` and deletes the journal, all in the same
SQLite transaction: one history page write per ``JOURNAL_ROWS`` stages. A row
of the journal replaces a table row of the same seq (it is newer), so the
history is the table, then the journal, by seq. The state is read with
``key < RESERVED`` and a state key starting with ``RESERVED`` is refused, so
the journal never shows in a state.

The connection (``file.Database``) keeps each run's journal in memory
after reading it once; ``append`` writes the new journal only where the
stored row still has the crc of the one in memory (``WHERE crc = ?``, no
read), so a journal written meanwhile by another connection is read again and
gone on from, never overwritten. The functions here take the connection and
run inside the caller's transaction; they keep no state of their own.
"""

from __future__ import annotations

import sqlite3
import struct
import zlib
from typing import NamedTuple

from ...core.errors import StoreError

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
which every commit would then rewrite; a file of smaller pages gets a smaller bound (``journal_bytes``)."""
JOURNAL_MAGIC = b"pipenb-journal-1\n"

_FRAME = struct.Struct("<qII")  # a journal row's header: seq, crc32 of its blob, its blob's length
_MAGIC_CRC = zlib.crc32(JOURNAL_MAGIC)

_INSERT_HISTORY = "INSERT OR REPLACE INTO pipenb_history (run_id, seq, row, crc) VALUES (?, ?, ?, ?)"
_DELETE_JOURNAL = "DELETE FROM pipenb_state WHERE run_id = ? AND key = ?"
_ADD_JOURNAL = "INSERT OR IGNORE INTO pipenb_state (run_id, key, value, kind, crc) VALUES (?, ?, ?, 1, ?)"
_UPDATE_JOURNAL = "UPDATE pipenb_state SET value = ?, crc = ? WHERE run_id = ? AND key = ? AND crc = ?"
# One statement, so one snapshot: a commit that moves the journal into the table meanwhile cannot make its rows
# show twice or not at all. The journal, if any, is the last row (its first column is 1).
_READ_HISTORY = ("SELECT 0, seq, CAST(row AS BLOB), crc FROM pipenb_history WHERE run_id = ? "
                 "UNION ALL SELECT 1, 0, CAST(value AS BLOB), crc FROM pipenb_state WHERE run_id = ? AND key = ? "
                 "ORDER BY 1, 2")


def journal_bytes(page_size: int) -> int:
    """The journal's byte bound for a file of ``page_size``: a row's payload stays in its (index b-tree) page up to
    (page - 12) * 64 / 255 - 23 bytes."""
    return min(JOURNAL_BYTES, (page_size - 12) * 64 // 255 - 23 - 512)


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

    def next_seq(self) -> int:
        """One past the highest seq of its rows; 0 when it has none (or only the initial row, seq -1)."""
        return max((seq for seq, _, _ in self.rows), default=-1) + 1


NO_JOURNAL = Journal()


def frames(run_id: str, rows: list[tuple]) -> tuple[bytes, tuple]:
    """``pickle_history``'s rows as journal bytes, and as ``(seq, blob, crc)`` rows."""
    try:
        data = b"".join(_FRAME.pack(seq, crc, len(blob)) + blob for _, seq, blob, crc in rows)
    except struct.error as exc:
        raise StoreError(f"run {run_id}: history row {rows[0][1]}: its seq does not fit in 64 bits, so the commit "
                         f"was not kept: {exc}") from exc
    return data, tuple(r[1:] for r in rows)


def decode(where: str, value: bytes, crc: int | None) -> Journal:
    """The stored journal row as a ``Journal``; a StoreError starting with ``where`` (file, run) if it is damaged."""
    where = f"{where}: the history journal"
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


def stored(conn: sqlite3.Connection, where: str, run_id: str) -> Journal:
    """Inside a transaction: the run's journal as the file holds it."""
    row = conn.execute("SELECT CAST(value AS BLOB), crc FROM pipenb_state WHERE run_id = ? AND key = ?",
                       (run_id, JOURNAL_KEY)).fetchone()
    return NO_JOURNAL if row is None else decode(where, *row)


def stored_crc(conn: sqlite3.Connection, run_id: str) -> int | None:
    """The CRC-32 stored with the run's history journal, or None when the run has none."""
    row = conn.execute("SELECT crc FROM pipenb_state WHERE run_id = ? AND key = ?", (run_id, JOURNAL_KEY)).fetchone()
    return None if row is None else row[0]


def append(conn: sqlite3.Connection, where: str, run_id: str, kept: Journal | None, frames: bytes, rows: tuple,
           max_bytes: int) -> Journal:
    """Inside a write transaction: add ``rows`` (``frames``') to the run's journal, or move it all into
    ``pipenb_history`` once it is full; the journal as it is now stored.

    ``kept`` is the journal the connection keeps in memory (None: not read
    yet). It is trusted only if the stored one still has its crc: the write of
    the new journal checks it (``WHERE crc = ?``), so the usual commit reads
    nothing; one that finds another journal (written by another connection)
    reads it and goes on from it.
    """
    journal = kept
    for _ in range(2):
        if journal is None:
            journal = stored(conn, where, run_id)
        new = journal.extended(frames, rows)
        if len(new.rows) < JOURNAL_ROWS and len(new.value) < max_bytes:
            if journal.crc is None:
                written = conn.execute(_ADD_JOURNAL, (run_id, JOURNAL_KEY, new.value, new.crc)).rowcount
            else:
                written = conn.execute(_UPDATE_JOURNAL, (new.value, new.crc, run_id, JOURNAL_KEY, journal.crc)).rowcount
            if written == 1:
                return new
        elif journal is not kept or stored_crc(conn, run_id) == journal.crc:
            conn.executemany(_INSERT_HISTORY, [(run_id, *r) for r in new.rows])  # in order: a seq's last row wins
            if journal.crc is not None:
                conn.execute(_DELETE_JOURNAL, (run_id, JOURNAL_KEY))
            return NO_JOURNAL
        journal = None  # the file holds another journal than the one in memory: go on from the stored one
    raise StoreError(f"{where}: the history journal changed while it was written")


def move(conn: sqlite3.Connection, run_id: str, journal: Journal) -> None:
    """Inside a write transaction: if ``journal`` is still the stored one (nobody else wrote it since), its rows go
    into ``pipenb_history`` and the journal row goes."""
    if conn.execute(_DELETE_JOURNAL + " AND crc = ?", (run_id, JOURNAL_KEY, journal.crc)).rowcount:
        conn.executemany(_INSERT_HISTORY, [(run_id, *r) for r in journal.rows])


def read(conn: sqlite3.Connection, where: str, run_id: str) -> tuple[list[tuple], Journal]:
    """The run's history as stored: ``pipenb_history``'s rows ``(seq, blob, crc)`` by seq, and its journal.

    Nothing is unpickled or checked but the journal's framing and crc."""
    rows = conn.execute(_READ_HISTORY, (run_id, run_id, JOURNAL_KEY)).fetchall()
    journal = NO_JOURNAL
    if rows and rows[-1][0] == 1:
        _, _, blob, crc = rows.pop()
        journal = decode(where, blob, crc)
    return [r[1:] for r in rows], journal


def next_seq(conn: sqlite3.Connection, where: str, run_id: str, kept: Journal | None) -> int:
    """One past the highest seq of the run's stored history rows, at least 0, nothing unpickled: ``MAX(seq)`` of
    ``pipenb_history`` and the seqs in the stored journal's row headers (``kept``'s rows, if it is still the stored
    one). One statement, so one snapshot, as in ``read``."""
    top, value, crc = conn.execute(
        "SELECT MAX(seq), (SELECT CAST(value AS BLOB) FROM pipenb_state WHERE run_id = ? AND key = ?), "
        "(SELECT crc FROM pipenb_state WHERE run_id = ? AND key = ?) FROM pipenb_history WHERE run_id = ?",
        (run_id, JOURNAL_KEY, run_id, JOURNAL_KEY, run_id)).fetchone()
    if value is None:
        journal = NO_JOURNAL
    elif kept is not None and kept.crc == crc:
        journal = kept
    else:
        journal = decode(where, value, crc)
    return max(top + 1 if top is not None else 0, journal.next_seq())

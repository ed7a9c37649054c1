"""A run's artifacts in the SQLite file, by version, written with the stage commit that made them (SPEC 15).

Two tables. ``pipenb_artifacts`` has one row per artifact write: the run,
the key, the history seq of the stage commit that wrote it, and either the
value (small ones, inline), the hash of a ``pipenb_blobs`` row (large ones),
or a note saying why it was not saved. ``pipenb_blobs`` holds each large
value once, by content hash, so a value written again (a later stage, a fork)
adds a reference, not its bytes. A key's value at a point of the run is its
latest row before that point: a resume reads the latest of every key, a fork
at history record ``s`` the latest before ``s``. Rows are only ever added
(a fork copies the rows, not the blobs); ``clear`` drops a run's rows and the
blobs no run refers to any more.

Everything is pickled before the SQLite transaction begins (``prepare``): a
value that cannot be pickled becomes a note row, never a failed commit.
"""

from __future__ import annotations

import hashlib
import pickle
import sqlite3
import zlib

from ...core.artifacts import NOT_DURABLE, NotSaved
from .rows import PICKLED, RAW, checked_value, type_name

INLINE = 4096
"""Values up to this many bytes are stored in their ``pipenb_artifacts`` row (no blob row, no hash to compute):
step outputs and small artifacts add no page write besides the run's own rows."""

CREATE = (
    """
CREATE TABLE IF NOT EXISTS pipenb_blobs (
    hash  BLOB PRIMARY KEY,              -- blake2b (16 bytes) of value
    value BLOB NOT NULL,
    kind  INTEGER NOT NULL,              -- 0: pickled, 1: raw bytes
    crc   INTEGER NOT NULL               -- zlib.crc32(value)
)""",
    """
CREATE TABLE IF NOT EXISTS pipenb_artifacts (
    run_id  TEXT NOT NULL,
    version INTEGER NOT NULL,            -- the order of the run's writes: a key's latest has the highest
    key     TEXT NOT NULL,
    seq     INTEGER NOT NULL,            -- the history seq of the stage commit that wrote it
    value   BLOB,                        -- a small value, inline (else NULL)
    hash    BLOB,                        -- else pipenb_blobs.hash of a large one; both NULL: not saved
    kind    INTEGER NOT NULL DEFAULT 0,  -- of an inline value: 0 pickled, 1 raw bytes
    crc     INTEGER,                     -- zlib.crc32 of an inline value
    note    TEXT,                        -- not saved: why
    PRIMARY KEY (run_id, version)
) WITHOUT ROWID""",
)


def prepare(run_id: str, seq: int, items) -> tuple[list[tuple], dict[str, str]]:
    """The rows for ``items`` (``(key, value, durable)``): ``(key, seq, inline, hash, kind, crc, note, blob)``,
    and key -> why for those not saved. Pickles (and hashes large values) outside any transaction."""
    rows, skipped = [], {}
    for key, value, durable in items:
        why = None
        if not durable:
            why = NOT_DURABLE
        elif type(value) is NotSaved:
            why = value.reason  # still not saved since the restart that lost it
        elif type(value) is bytes:
            blob, kind = value, RAW
        else:
            try:
                blob, kind = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), PICKLED
            except Exception as exc:
                why = f"{type_name(value)} cannot be pickled: {type(exc).__name__}: {exc}"
        if why is not None:
            skipped[key] = why
            rows.append((key, seq, None, None, 0, None, why, None))
        elif len(blob) <= INLINE:
            rows.append((key, seq, blob, None, kind, zlib.crc32(blob), None, None))
        else:
            rows.append(
                (key, seq, None, hashlib.blake2b(blob, digest_size=16).digest(), kind, zlib.crc32(blob), None, blob)
            )
    return rows, skipped


def write(conn: sqlite3.Connection, run_id: str, rows: list[tuple], copies: list[tuple]) -> None:
    """Inside the stage's SQLite transaction: the ``copies`` (``(source run, before seq)``, forks) then ``rows``."""
    version = conn.execute(
        "SELECT COALESCE(MAX(version), 0) FROM pipenb_artifacts WHERE run_id = ?", (run_id,)
    ).fetchone()[0]
    for source, before in copies:
        old = conn.execute(
            "SELECT key, seq, value, hash, kind, crc, note FROM pipenb_artifacts WHERE run_id = ? "
            "AND seq < ? ORDER BY version",
            (source, before),
        ).fetchall()
        conn.executemany(
            "INSERT INTO pipenb_artifacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, version + i + 1, *r) for i, r in enumerate(old)],
        )
        version += len(old)
    blobs = [(r[3], r[7], r[4], r[5]) for r in rows if r[7] is not None]
    if blobs:
        conn.executemany("INSERT OR IGNORE INTO pipenb_blobs (hash, value, kind, crc) VALUES (?, ?, ?, ?)", blobs)
    conn.executemany(
        "INSERT INTO pipenb_artifacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (run_id, version + i + 1, key, seq, inline, digest, kind, None if digest else crc, note)
            for i, (key, seq, inline, digest, kind, crc, note, _blob) in enumerate(rows)
        ],
    )


def load(conn: sqlite3.Connection, where: str, run_id: str, before: int | None = None) -> dict:
    """Key -> value (or ``NotSaved``) of the run's artifacts: the latest of each key (before history seq
    ``before``, if given). Each value's checksum is checked; only the latest versions' blobs are read."""
    sql = "SELECT key, value, hash, kind, crc, note FROM pipenb_artifacts WHERE run_id = ?"
    args: tuple = (run_id,)
    if before is not None:
        sql += " AND seq < ?"
        args = (run_id, before)
    latest: dict[str, tuple] = {}
    for row in conn.execute(sql + " ORDER BY version", args):
        latest[row[0]] = row
    out = {}
    for key, inline, digest, kind, crc, note in latest.values():
        if digest is not None:
            found = conn.execute("SELECT value, kind, crc FROM pipenb_blobs WHERE hash = ?", (digest,)).fetchone()
            if found is None:
                out[key] = NotSaved(
                    key, "its value is missing from pipenb_blobs (the file was changed outside pipenb)", run_id
                )
                continue
            inline, kind, crc = found
        if inline is None:
            out[key] = NotSaved(key, note or "no reason recorded", run_id)
        else:
            out[key] = checked_value(where, f"artifact {key!r}", inline, kind, crc)
    return out


def clear(conn: sqlite3.Connection, run_id: str) -> None:
    """Inside a transaction: drop the run's artifact rows, then the blobs no run refers to any more."""
    gone = conn.execute("DELETE FROM pipenb_artifacts WHERE run_id = ? AND hash IS NOT NULL", (run_id,)).rowcount
    conn.execute("DELETE FROM pipenb_artifacts WHERE run_id = ?", (run_id,))
    if gone:
        conn.execute(
            "DELETE FROM pipenb_blobs WHERE hash NOT IN (SELECT hash FROM pipenb_artifacts WHERE hash IS NOT NULL)"
        )


def stored_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of artifact values in the file (inline ones and each blob once)."""
    inline = conn.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM pipenb_artifacts").fetchone()[0]
    blobs = conn.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM pipenb_blobs").fetchone()[0]
    return inline + blobs

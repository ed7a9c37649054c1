"""One driver per run across processes: the lease a SQLite file keeps for each run.

A run's lease row says which context drives it (``token``), from which
process (``pid`` on ``host``), whether it is running now, and an ``epoch``
that goes up each time a context takes the run over. A store remembers the
epoch it loaded or took; its writes happen only while the file still holds
that epoch, so a process or context that is no longer the run's driver
(an old kernel's expiry timer, an old context object) can never overwrite
what the current driver did. A lease whose process is gone (killed) is taken
over by the next resume; such a run shows as ``"interrupted"``.
"""

from __future__ import annotations

import os
import socket
import time
from typing import NamedTuple

CREATE = """
CREATE TABLE IF NOT EXISTS pipenb_lease (
    run_id  TEXT PRIMARY KEY,
    epoch   INTEGER NOT NULL,   -- goes up at every take-over; writes need the epoch they were loaded with
    token   TEXT NOT NULL,      -- the driving context
    pid     INTEGER NOT NULL,
    host    TEXT NOT NULL,
    since   REAL NOT NULL,      -- epoch seconds the lease was taken
    running INTEGER NOT NULL    -- 1 while a drive is going on
) WITHOUT ROWID
"""

HOST = socket.gethostname()


class Lease(NamedTuple):
    epoch: int
    token: str
    pid: int
    host: str
    since: float
    running: bool

    @property
    def alive(self) -> bool:
        """Whether the lease's process still lives (unknown hosts count as alive: never steal from them)."""
        return self.host != HOST or process_alive(self.pid)

    def where(self) -> str:
        here = "this process" if self.pid == os.getpid() and self.host == HOST else f"process {self.pid}"
        host = "" if self.host == HOST else f" on {self.host}"
        return f"{here}{host} (since {time.strftime('%H:%M:%S', time.localtime(self.since))})"


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped is a zombie: dead for our purpose
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def read(conn, run_id: str) -> Lease | None:
    """The lease of ``run_id`` in the file, or None when no driver ever took it."""
    row = conn.execute("SELECT epoch, token, pid, host, since, running FROM pipenb_lease WHERE run_id = ?",
                       (run_id,)).fetchone()
    return Lease(row[0], row[1], row[2], row[3], row[4], bool(row[5])) if row else None


def read_all(conn) -> dict[str, Lease]:
    """Every run's lease in the file, by run id."""
    return {r[0]: Lease(r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in conn.execute(
        "SELECT run_id, epoch, token, pid, host, since, running FROM pipenb_lease")}


def acquire(conn, run_id: str, token: str, expected: int) -> tuple[int | None, str | None]:
    """Inside a write transaction: take the run for ``token``; (new epoch, None) or (None, why not)."""
    lease = read(conn, run_id)
    held = lease.epoch if lease is not None else 0
    if lease is not None and lease.running and lease.token != token and lease.alive:
        return None, f"is running in {lease.where()}"
    if held != expected:
        return None, ("was driven by another context or process since this one loaded it "
                      f"(lease epoch {held}, this context has {expected})")
    epoch = held + 1
    conn.execute("INSERT OR REPLACE INTO pipenb_lease VALUES (?, ?, ?, ?, ?, ?, 1)",
                 (run_id, epoch, token, os.getpid(), HOST, time.time()))
    return epoch, None


def release(conn, run_id: str, token: str) -> None:
    """Mark the run as no longer running, if ``token`` still holds its lease (the epoch stays)."""
    conn.execute("UPDATE pipenb_lease SET running = 0 WHERE run_id = ? AND token = ?", (run_id, token))


def holds(conn, run_id: str, epoch: int) -> bool:
    """Inside a write transaction: whether the file still holds ``epoch`` for the run."""
    lease = read(conn, run_id)
    return (lease.epoch if lease is not None else 0) == epoch

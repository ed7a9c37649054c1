"""Opening a SQLite file that another process is creating or writing at that moment.

SQLite's busy timeout does not cover every lock: switching a brand-new file
to WAL while another connection holds its write lock (the other process
creating the same file, or writing its first rows) fails at once with
"database is locked", as SQLite's deadlock avoidance asks. Two kernels
opening the same new file together hit it. Opening therefore tries again,
for as long as the store's ``timeout``, the way the busy timeout waits for
every other lock; a file still locked after that is reported as locked, with
what to do, never as a directory that cannot hold a file.
"""

from __future__ import annotations

import sqlite3
import time

from ...core.errors import StoreError
from .file import Database

_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED


def is_busy(exc: BaseException | None) -> bool:
    """Whether ``exc`` is SQLite saying another connection holds a lock (worth waiting for)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; the message otherwise
    return (code & 0xFF) in _BUSY_CODES if code is not None else "locked" in str(exc) or "busy" in str(exc)


def open_database(path: str, timeout: float, synchronous: str = "normal") -> Database:
    """``Database(path, timeout, synchronous)``, tried again while another connection keeps the file locked (up to
    ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            return Database(path, timeout, synchronous)
        except StoreError as exc:
            cause = exc.__cause__
            if not is_busy(cause):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreError(
                    f"SQLite store {path!r}: the file stayed locked by another connection for {timeout:g} s while "
                    f"it was being opened ({type(cause).__name__}: {cause}); another process is creating or writing "
                    f"it. Try again once that process is done, or give the store longer to wait: "
                    f"SqliteStore.factory(path, timeout=...)"
                ) from cause
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)

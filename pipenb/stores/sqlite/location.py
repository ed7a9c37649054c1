"""Where a SQLite store's file goes: refuse, before SQLite is asked, a path that can never hold it.

A missing directory, a directory where the file should be, a directory that
is not writable: each is a ``StoreError`` naming the path when the store
factory is made, not a bare ``sqlite3`` error at the first commit.
"""

from __future__ import annotations

import os

from ...core.errors import StoreError


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
        raise StoreError(
            f"SQLite store {path!r}: cannot create the database file: the directory {parent!r} is not writable"
        )
    return False

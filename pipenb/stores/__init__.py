"""Run stores: the ``DataStore`` protocol and its in-memory and SQLite implementations."""

from .memory import InMemoryStore, MemoryStoreProvider
from .protocol import DataStore

__all__ = ["DataStore", "InMemoryStore", "MemoryStoreProvider", "SqliteStore", "SqliteStoreFactory"]


def __getattr__(name):
    if name in ("SqliteStore", "SqliteStoreFactory"):
        from . import sqlite

        return getattr(sqlite, name)
    raise AttributeError(f"module 'pipenb.stores' has no attribute {name!r}")

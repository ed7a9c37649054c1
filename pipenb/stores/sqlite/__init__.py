"""SQLite, the store that outlives the kernel: many runs in one file (WAL), one transaction per stage.

``store`` is the ``DataStore`` and its factory; ``file`` the file (schema, migrations, reads and
writes); ``rows`` rows as checksummed bytes; ``journal`` the history rows committed with each stage;
``lease`` one driver per run across processes.
"""

from .store import SqliteStore, SqliteStoreFactory

__all__ = ["SqliteStore", "SqliteStoreFactory"]

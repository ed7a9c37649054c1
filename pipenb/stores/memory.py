"""``InMemoryStore`` and the process-wide provider the factory uses by default.

The provider keeps each run's store by run id, so a run paused in a kernel can
be resumed by any factory of the same pipeline in that kernel (re-running the
cell that built the factory loses nothing). It lets go of a run's store once
the run completes, so finished runs do not pile up in a long-lived kernel.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

from ..core.errors import StoreError
from ..core.state import EMPTY, freeze, is_mapping, merge


class _Transaction:
    __slots__ = ("_store", "_snapshot")

    def __init__(self, store: InMemoryStore):
        self._store = store

    def __enter__(self):
        store = self._store
        store._lock.acquire()
        store._depth += 1
        self._snapshot = store._state
        return store

    def __exit__(self, exc_type, exc, tb):
        store = self._store
        store._depth -= 1
        if exc_type is not None:
            store._state = self._snapshot
        changed = store._state is not self._snapshot
        store._lock.release()
        if changed and store._depth == 0 and store._listeners:
            store._notify()
        return False


class InMemoryStore:
    """Run state in memory: O(1) snapshots, copy-on-write merges, all-or-nothing transactions."""

    durable = False

    def __init__(self, initial: Mapping[str, Any] | None = None):
        if initial is not None and not is_mapping(initial):
            raise StoreError(f"InMemoryStore initial state must be a mapping, got {type(initial).__name__}")
        self._state = freeze(initial) if initial else EMPTY
        self._listeners: tuple[Callable, ...] = ()
        self._lock = threading.RLock()
        self._depth = 0

    def get(self):
        return self._state

    def set(self, patch: Mapping[str, Any]) -> None:
        if not is_mapping(patch):
            raise StoreError(f"store patch must be a mapping, got {type(patch).__name__}: {patch!r}")
        with self._lock:
            self._state = merge(self._state, patch)
            notify = self._depth == 0 and self._listeners
        if notify:
            self._notify()

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    def compare_and_set(self, expected, new) -> bool:
        """Replace the whole state with ``new`` if it is still ``expected`` (optional fast path).

        The engine has already merged a stage's patches into ``new``; swapping it
        in is the same commit as setting each patch, without merging twice.
        """
        with self._lock:
            if self._state is not expected or self._depth:
                return False
            self._state = freeze(new)
            notify = bool(self._listeners)
        if notify:
            self._notify()
        return True

    def subscribe(self, listener: Callable) -> Callable[[], None]:
        self._listeners = self._listeners + (listener,)

        def unsubscribe() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def _notify(self) -> None:
        state = self._state
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:  # a watcher never breaks a commit
                pass

    def __repr__(self) -> str:
        return f"InMemoryStore({len(self._state)} keys)"


class MemoryStoreProvider:
    """``store_factory`` keeping one ``InMemoryStore`` per run id until the run completes."""

    def __init__(self):
        self._stores: dict[str, InMemoryStore] = {}
        self._lock = threading.Lock()

    def __call__(self, run_id: str) -> InMemoryStore:
        with self._lock:
            store = self._stores.get(run_id)
            if store is None:
                store = self._stores[run_id] = InMemoryStore()
            return store

    def release(self, run_id: str) -> None:
        with self._lock:
            self._stores.pop(run_id, None)

    def __contains__(self, run_id: str) -> bool:
        return run_id in self._stores

    def __len__(self) -> int:
        return len(self._stores)


default_provider = MemoryStoreProvider()

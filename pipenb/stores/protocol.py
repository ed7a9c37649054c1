"""The ``DataStore`` protocol every run store implements.

Synchronous on purpose: a stage commit is a handful of in-memory merges (or
one SQLite transaction), and keeping it sync means a commit can never be
interleaved with another coroutine halfway through.
"""

from __future__ import annotations

from typing import Any, Callable, ContextManager, Mapping, Protocol, runtime_checkable


@runtime_checkable
class DataStore(Protocol):
    def get(self) -> Mapping[str, Any]:
        """The whole state as a read-only snapshot, in O(1)."""

    def set(self, patch: Mapping[str, Any]) -> None:
        """Deep-merge ``patch`` (``DELETE`` removes a key)."""

    def transaction(self) -> ContextManager[Any]:
        """Writes inside apply all or nothing."""

    # Optional: ``compare_and_set(expected, new) -> bool`` replaces the whole
    # state when it is still ``expected``; the engine uses it, when present, to
    # commit a stage without merging its patches a second time.

    def subscribe(self, listener: Callable[[Mapping[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener(state)`` after each commit; returns the unsubscribe function."""

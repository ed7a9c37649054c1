"""``Listeners``: a set of callbacks that one failing callback can never break.

Buses, stores and the registry all keep "call these when something happens"
lists; they share this one so subscribing, unsubscribing (also from inside a
callback) and error handling behave the same everywhere.
"""

from __future__ import annotations

from typing import Any, Callable


class Listeners:
    """A set of callbacks that one failing callback can never break.

    ``add`` returns the unsubscribe function; calling the set calls every callback with the
    arguments, and an exception in one goes to ``on_error(callback, exc)`` (or is dropped)
    so the others still run.
    """

    __slots__ = ("items", "on_error")

    def __init__(self, on_error: Callable[[Callable, BaseException], Any] | None = None):
        self.items: tuple[Callable, ...] = ()  # a tuple: calling never sees a change mid-iteration
        self.on_error = on_error

    def add(self, listener: Callable) -> Callable[[], None]:
        """Subscribe; returns the function that unsubscribes (idempotent)."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, got {listener!r}")
        self.items = self.items + (listener,)

        def unsubscribe() -> None:
            self.items = tuple(x for x in self.items if x is not listener)

        return unsubscribe

    def __call__(self, *args) -> None:
        for listener in self.items:
            try:
                listener(*args)
            except Exception as exc:  # one listener never breaks the others or the caller
                if self.on_error is not None:
                    try:
                        self.on_error(listener, exc)
                    except Exception:
                        pass

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

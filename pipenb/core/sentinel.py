"""``Sentinel``: the one class behind ``END`` and ``DELETE``.

Both are markers a user returns (a router's "terminate", a patch's "remove
this key") that must survive pickling (SQLite, process pools) as the very
same object, so identity checks (``decision is END``) keep working.
"""

from __future__ import annotations

_KNOWN: dict[str, Sentinel] = {}


def _named(name: str) -> Sentinel:
    return _KNOWN[name]


class Sentinel:
    """A named marker that stays the very same object through pickling and copying, so
    ``decision is END`` holds after a SQLite round trip or a process pool. ``END`` and ``DELETE``
    are its two instances; ``Sentinel("END") is END``.
    """

    __slots__ = ("name",)

    def __new__(cls, name: str) -> Sentinel:
        known = _KNOWN.get(name)
        if known is None:
            known = _KNOWN[name] = super().__new__(cls)
            known.name = name
        return known

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self):
        return (_named, (self.name,))

    def __copy__(self) -> Sentinel:
        return self

    def __deepcopy__(self, memo) -> Sentinel:
        return self


END = Sentinel("END")
"""A router's answer that terminates the run (TypeScript's ``null``)."""

DELETE = Sentinel("DELETE")
"""A patch value that removes its key from the state."""

"""``EventLog``: every event of a run, kept compactly for views that show thousands.

A listener receives each event as a frozen dataclass the moment it happens;
that costs objects per event, plus the garbage collector's walks over all the
ones a table keeps. A view that wants *all* events but shows a few at a time
(the event table, the live graph) records instead: the bus appends one row of
plain references per event to a shared flat list (name, path, time, the
field values) and builds the frozen ``RunEvent`` only when someone reads it.

``ctx.record()`` opens a log; the run records while any log is open. Reads
are cheap bulk operations (``names``, ``paths``, ``last_by_path``) so a view
can fold 100,000 events without a Python call per event.
"""

from __future__ import annotations

from itertools import compress
from typing import Collection, Iterable, Iterator

from .events import BUILT, EVENT_TYPES, RunEvent, build

# A row: name, path, time, then the event's own field values (up to four, None
# padded), or the event a listener already got followed by BUILT.
_WIDTH = 7


class EventLog:
    """The events of one run from the moment it was opened, oldest first.

    ``log[i]`` / ``log[a:b]`` / iteration give frozen ``RunEvent`` objects
    (equal, not identical, from one read to the next). ``close()`` stops
    recording and keeps what was recorded.
    """

    __slots__ = ("run_id", "_bus", "_rows", "_start", "_stop")

    def __init__(self, bus, rows: list):
        self.run_id = bus.run_id
        self._bus = bus
        self._rows = rows
        self._start = len(rows)      # offset into the shared list, in references
        self._stop: int | None = None

    # -- lifetime -------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._stop is not None

    def close(self) -> None:
        """Stop recording; what was recorded stays readable."""
        if self._stop is None:
            self._stop = len(self._rows)
            self._bus._log_closed()

    def clear(self) -> None:
        """Forget what was recorded so far (an open log goes on recording).

        The rows stay in memory while any log of the run records; a log
        opened after all were closed starts a new list.
        """
        self._start = len(self._rows) if self._stop is None else self._stop

    def __del__(self) -> None:
        # A log nobody holds any more stops the recording it asked for.
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading --------------------------------------------------------------
    def _end(self) -> int:
        return len(self._rows) if self._stop is None else self._stop

    def __len__(self) -> int:
        return (self._end() - self._start) // _WIDTH

    def _bounds(self, start: int, stop: int | None, column: int) -> slice:
        n = len(self)
        start, stop, _ = slice(start, stop).indices(n)
        base = self._start + column
        return slice(base + start * _WIDTH, base + max(start, stop) * _WIDTH, _WIDTH)

    def names(self, start: int = 0, stop: int | None = None) -> list[str]:
        """Event names of ``log[start:stop]``, without building the events."""
        return self._rows[self._bounds(start, stop, 0)]

    def paths(self, start: int = 0, stop: int | None = None) -> list[tuple]:
        """Event paths of ``log[start:stop]`` (tuples of ``PathNode``), without building the events."""
        return self._rows[self._bounds(start, stop, 1)]

    def last_by_path(self, names: Iterable[str], start: int = 0, stop: int | None = None,
                     paths: Collection[tuple] | None = None) -> dict[tuple, int]:
        """For each path, the index of its last event in ``log[start:stop]`` whose name is in ``names``.

        "Where is each stage now" at C speed. Given ``paths``, only those are
        looked for, newest events first, and the search stops once each is
        found: a view that knows its stages reads the tail, not the whole log.
        """
        wanted = frozenset(names)
        unknown = wanted - EVENT_TYPES.keys()
        if unknown:
            raise ValueError(f"unknown event names {sorted(unknown)}; known: {', '.join(EVENT_TYPES)}")
        first, last, _ = slice(start, stop).indices(len(self))
        if paths is None:
            return self._last(wanted, first, last)
        paths = paths if isinstance(paths, (set, frozenset, dict)) else set(paths)
        found: dict[tuple, int] = {}
        hi, size = last, 64
        while hi > first and len(found) < len(paths):
            lo = max(first, hi - size)
            for path, i in self._last(wanted, lo, hi).items():
                if path in paths and path not in found:
                    found[path] = i
            hi, size = lo, size * 4
        return found

    def _last(self, wanted: frozenset, first: int, last: int) -> dict[tuple, int]:
        if last <= first:
            return {}
        mask = list(map(wanted.__contains__, self.names(first, last)))
        return dict(zip(compress(self.paths(first, last), mask), compress(range(first, last), mask), strict=True))

    def __getitem__(self, index):
        if isinstance(index, slice):
            first, last, step = index.indices(len(self))
            events = self._build(first, max(first, last))
            return events if step == 1 else events[::step]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"event {index} of a log of {n} events (run {self.run_id})")
        return self._build(index, index + 1)[0]

    def _build(self, first: int, last: int) -> list[RunEvent]:
        base = self._start
        rows = self._rows[base + first * _WIDTH: base + last * _WIDTH]
        run_id = self.run_id
        out = []
        for at in range(0, len(rows), _WIDTH):
            name, path, time, v1, v2, v3, v4 = rows[at: at + _WIDTH]
            out.append(v1 if v2 is BUILT else build(name, run_id, path, time, v1, v2, v3, v4))
        return out

    def __iter__(self) -> Iterator[RunEvent]:
        n, chunk = len(self), 4096
        for first in range(0, n, chunk):
            yield from self._build(first, min(n, first + chunk))

    def __repr__(self) -> str:
        state = "closed" if self.closed else "recording"
        return f"<EventLog run={self.run_id} events={len(self)} {state}>"

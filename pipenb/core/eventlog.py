"""The event stream's format: how events are built, recorded and read back.

A listener receives each event as a frozen dataclass the moment it happens;
that costs objects per event, plus the garbage collector's walks over all the
ones a table keeps. A view that wants *all* events but shows a few at a time
(the event table, the live graph) records instead: the run appends one row of
plain references per event to a flat list shared by every open log (name,
path, time, the field values) and the frozen ``RunEvent`` is built only when
someone reads it.

Everything that knows the row layout lives here: the per-event emit methods
(generated once, with the fields as named parameters, so engine call sites
say what they emit), the builders that turn a row back into an event, the
``Recording`` that counts open logs, and ``EventLog``.
"""

from __future__ import annotations

from itertools import compress
from time import time as _now
from typing import Collection, Iterable, Iterator

from .events import EVENT_TYPES, FIELDS, RunEvent

_set_dict = object.__setattr__
_new = object.__new__
BUILT = object()  # in a row: the first value is the event a listener already got
# Value slots in a row. Events with more fields (step:progress, coalesced to a
# few a second) are always built and kept whole, so the common ones stay narrow.
_SLOTS = 4
# A row: name, path, time, then the event's own field values (None padded),
# or the event a listener already got followed by BUILT.
_WIDTH = 3 + _SLOTS


def _maker(name: str):
    # One dict display per event type (what dataclasses do with exec): the
    # fastest way CPython builds the 6 to 9 entry __dict__ of an event.
    own = FIELDS[name]
    params = "".join(f", v{i}=None" for i in range(1, max(_SLOTS, len(own)) + 1))
    entries = "".join(f", {field!r}: v{i}" for i, field in enumerate(own, 1))
    code = (f"def make(run_id, path, time{params}):\n"
            f"    event = _new(cls)\n"
            f"    _set_dict(event, '__dict__', {{'name': {name!r}, 'run_id': run_id, 'path': path, "
            f"'time': time{entries}}})\n"
            f"    return event\n")
    scope = {"_new": _new, "_set_dict": _set_dict, "cls": EVENT_TYPES[name], "__name__": __name__}
    exec(code, scope)  # noqa: S102 - generated from the event dataclasses' field names only
    return scope["make"]


_MAKERS = {name: _maker(name) for name in EVENT_TYPES}


def build(name: str, run_id: str, path: tuple, time: float, *values) -> RunEvent:
    """The frozen event from its row values (in ``FIELDS[name]`` order)."""
    return _MAKERS[name](run_id, path, time, *values)


def method_name(event_name: str) -> str:
    """``"stage:start"`` -> ``"stage_start"``: the bus method that emits it."""
    return event_name.replace(":", "_")


def _emitter(name: str):
    """The bus method emitting ``name``, its fields as named parameters.

    Nobody hears it: one dict lookup. Only logs hear it: one row appended, no
    object. Listeners hear it: the event is built once, the row keeps it.
    """
    own = FIELDS[name]
    values = ", ".join(own)
    pad = ", None" * (_SLOTS - len(own))
    built_pad = ", None" * (_SLOTS - 2)
    log_only = (f"    if not handlers:\n"
                f"        self.recording.rows += ({name!r}, path, now, {values}{pad})\n"
                f"        return None\n") if len(own) <= _SLOTS else ""
    code = (f"def emit(self, path, {values}):\n"
            f"    handlers = self.heard.get({name!r})\n"
            f"    if handlers is None:\n"
            f"        return None\n"
            f"    now = _now()\n"
            f"{log_only}"
            f"    event = make(self.run_id, path, now, {values})\n"
            f"    rows = self.recording.rows\n"
            f"    if rows is not None:\n"
            f"        rows += ({name!r}, path, now, event, BUILT{built_pad})\n"
            f"    return self.deliver(event, handlers)\n")
    # __name__: the generated code is pipenb.core's own (interrupt.in_sync_step tells it from a step's)
    scope = {"_now": _now, "make": _MAKERS[name], "BUILT": BUILT, "__name__": __name__}
    exec(code, scope)  # noqa: S102 - generated from the event dataclasses' field names only
    emit = scope["emit"]
    emit.__name__ = emit.__qualname__ = method_name(name)
    emit.__doc__ = f"Emit ``{name}`` ({', '.join(own)}); an awaitable when an async listener must be awaited."
    return emit


EMITTERS = {method_name(name): _emitter(name) for name in EVENT_TYPES}


class Recording:
    """The rows the open logs of one run share, and how many logs are open.

    ``rows`` is None while no log is open: then the run records nothing.
    """

    __slots__ = ("rows", "open", "changed")

    def __init__(self, changed):
        self.rows: list | None = None
        self.open = 0
        self.changed = changed  # called when recording starts or stops (the bus re-plans who hears what)

    def start(self) -> list:
        if self.rows is None:
            self.rows = []
            self.changed()
        self.open += 1
        return self.rows

    def stop(self) -> None:
        self.open -= 1
        if self.open == 0:
            self.rows = None  # closed logs keep the list; the run stops paying for it
            self.changed()


class EventLog:
    """The events of one run from the moment it was opened, oldest first.

    ``log[i]`` / ``log[a:b]`` / iteration give frozen ``RunEvent`` objects
    (equal, not identical, from one read to the next). ``close()`` stops
    recording and keeps what was recorded.
    """

    __slots__ = ("run_id", "_recording", "_rows", "_start", "_stop")

    def __init__(self, run_id: str, recording: Recording):
        self.run_id = run_id
        self._recording = recording
        self._rows = rows = recording.start()
        self._start = len(rows)      # offset into the shared list, in references
        self._stop: int | None = None

    # -- lifetime -------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the log stopped recording (what it recorded stays readable)."""
        return self._stop is not None

    def close(self) -> None:
        """Stop recording; what was recorded stays readable."""
        if self._stop is None:
            self._stop = len(self._rows)
            self._recording.stop()

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
        makers = _MAKERS
        for at in range(0, len(rows), _WIDTH):
            name, path, time, *values = rows[at: at + _WIDTH]
            out.append(values[0] if values[1] is BUILT else makers[name](run_id, path, time, *values))
        return out

    def __iter__(self) -> Iterator[RunEvent]:
        n, chunk = len(self), 4096
        for first in range(0, n, chunk):
            yield from self._build(first, min(n, first + chunk))

    def __repr__(self) -> str:
        state = "closed" if self.closed else "recording"
        return f"<EventLog run={self.run_id} events={len(self)} {state}>"

"""A followed run's marks on its stage graph, and the graph redrawn with them off the run's loop.

``StageGraph`` shows what a run did on the graph itself (SPEC 14): visit
counts, edges taken, undeclared moves, stale stages, conditional breakpoints.
Those come from the run's history and breakpoints (``RunMarksReader``), and
drawing them takes Graphviz a tenth of a second or more on a long pipeline,
too long for the run's loop: ``BackgroundRender`` lays the graph out on a
worker thread, one drawing at a time, always the newest marks asked for, and
the thread ends when there is nothing left to draw.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from pipenb.core.lifecycle import RUNNING

READ_EVERY = 0.5  # seconds between two reads of a running run's marks

EMPTY_MARKS: dict = {"visits": {}, "transitions": {}, "stale": (), "conditional": {}}


def ran_older_code(history, definition) -> list:
    """The records of ``history`` that ran older code than ``definition`` (``History.stale``), less those
    that ran the code of a newer definition of the same pipeline: a dashboard built before a fix, showing a
    run resumed with the fix, must not call the fixed stage "older code" and offer to re-run it with the bug."""
    stale = history.stale(definition)
    newest = definition.newer
    if not stale or newest is None:
        return stale
    older_than_newest = {r.seq for r in history.stale(newest)}
    return [r for r in stale if r.seq in older_than_newest]


class RunMarksReader:
    """Reads a run context's marks for ``to_svg``; cheap to ask again when nothing changed."""

    def __init__(self, definition=None):
        self.definition = definition  # the drawn pipeline: stale also against it when the run holds another
        self._key = None
        self._read_at = float("-inf")
        self._stale_for: tuple | None = None  # the definitions ``_stale`` was compared with
        self._stale: list = []
        self.deferred = False  # the last read found a change but left it for later (see ``READ_EVERY``)
        self.marks = EMPTY_MARKS

    def read(self, ctx, force: bool = False) -> dict | None:
        """The marks of ``ctx`` as ``to_svg`` keyword arguments when they changed since the last read (or
        ``force``), else None. A new record, a new definition (``ctx.rebind``: what is stale changes) or a
        changed condition is a change."""
        history, bps = ctx.history, ctx.breakpoints
        conditional = {address: bps.condition(address) for address in sorted(bps.conditional)}
        key = (history.next_seq, len(history), id(ctx.pipeline), tuple((a, id(w)) for a, w in conditional.items()))
        if key == self._key and not force:
            return None
        # Each read walks the whole history: while the run goes, a few a second (the drawings' own pace), so a
        # long run's loop is not kept busy counting; every change is read once it stops.
        running, now = ctx.status == RUNNING, time.monotonic()
        self.deferred = running and not force and now - self._read_at < READ_EVERY
        if self.deferred:  # the caller asks again on a later tick
            return None
        self._key, self._read_at = key, now
        # Stale against the run's own definition (after ``rebind``) and against the one drawn (a dashboard of
        # the fixed pipeline showing a run that has not resumed yet): what the stale notice names too. A record
        # made while the run goes ran the code it holds, so only a new definition, or the run stopping, asks.
        # Against its own definition it is SPEC 14's ``stale()`` as it stands; against the drawn one, records
        # that ran a newer definition's code (a run resumed with a fix) are not older code.
        own, drawn = history.definition, self.definition
        against = (id(own), id(drawn))
        if force or not running or against != self._stale_for:
            found = set() if own is None else {r.address for r in history.stale(own)}
            if drawn is not None and drawn is not own:
                found.update(r.address for r in ran_older_code(history, drawn))
            self._stale, self._stale_for = sorted(found), against
        stale = self._stale
        self.marks = {
            "visits": history.visits(),
            "transitions": history.transitions(),
            "stale": stale,
            "conditional": conditional,
        }
        return self.marks

    def without_conditions_gone(self, conditional: set) -> dict | None:
        """The marks last read, less the conditions no longer set (a breakpoint removed by a click), or None
        when none went. Reads nothing of the run but the addresses given: safe on a comm thread."""
        marks = self.marks
        kept = {a: w for a, w in marks["conditional"].items() if a in conditional}
        if len(kept) == len(marks["conditional"]):
            return None
        self.marks = dict(marks, conditional=kept)
        return self.marks

    def forget(self) -> None:
        """Read everything again next time (a new run is followed)."""
        self._key = self._stale_for = None
        self._read_at = float("-inf")
        self.marks = EMPTY_MARKS


class BackgroundRender:
    """``draw(marks) -> svg`` on a worker thread, then ``done(svg)``; the newest request wins."""

    def __init__(self, draw: Callable[[dict], str], done: Callable[[str], None], per_second: float = 2.0):
        self._draw, self._done = draw, done
        # A run committing stages fast would keep a core busy laying out: a few drawings a second at most.
        self.interval = 1.0 / per_second
        self._last = float("-inf")
        self._woken = threading.Event()  # close() ends a wait for the next slot
        self._lock = threading.Lock()
        self._pending: dict | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.drawn = 0  # drawings handed to ``done`` (tests read it)

    def submit(self, marks: dict) -> None:
        """Draw ``marks`` soon (replacing a request not started yet)."""
        with self._lock:
            if self._closed:
                return
            self._pending = marks
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="pipenb-graph-render", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            self._woken.wait(max(0.0, self._last + self.interval - time.monotonic()))
            with self._lock:
                marks, self._pending = self._pending, None
                if marks is None or self._closed:
                    self._thread = None
                    return
            self._last = time.monotonic()
            svg = self._draw(marks)
            with self._lock:
                if self._closed:
                    self._thread = None
                    return
            self._done(svg)
            self.drawn += 1

    def busy(self) -> bool:
        """Whether a drawing is asked for or under way."""
        with self._lock:
            return self._thread is not None

    def close(self) -> None:
        """Draw nothing more (a drawing under way finishes, unseen)."""
        with self._lock:
            self._closed = True
            self._pending = None
        self._woken.set()

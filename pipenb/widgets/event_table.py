"""``EventTable``: a live table of a run's events, filterable, with counts per event.

The table records the run through an ``EventLog`` (``ctx.record()``): no
Python call and no object per event, so a run of 100,000 events barely
notices it. At most ten times a second it counts the new events in bulk and
formats the newest ``max_rows`` matching ones, the only rows that reach the
browser. ``dataframe`` builds every recorded event.

A step's ``step:progress`` reports share one live row: it stands where the
step's first report came and shows its latest one (counts still count them
all). The table follows its run through an owned ``RunFollower``
(follower.py); its JS and CSS are the files beside this module, given to
anywidget as paths (hot reload with ``ANYWIDGET_HMR=1``).
"""

from __future__ import annotations

import functools
import html
import json
import pathlib
import threading
import time
from collections import Counter

import anywidget
import traitlets

from pipenb.core.events import EVENT_NAMES, stage_address
from pipenb.display import short_id
from pipenb.core.lifecycle import RUNNING, can_run

from ..display import duration_text
from .follower import RunFollower
from .snapshot import Snapshot, close_tree, rows_html

HERE = pathlib.Path(__file__).parent
COLUMNS = ["time", "elapsed_ms", "event", "path", "stage", "step", "duration_ms", "detail"]  # .rows, .dataframe
# What people see: the SPEC's words, and one "when" column: the elapsed time is the time cell's tooltip,
# durations carry their unit ("12 ms", "1.25 s").
VIEW_COLUMNS = ["time", "event", "path", "stage", "step", "duration", "detail"]


def view_row(row: list) -> list:
    """A row (``COLUMNS``) as shown (``VIEW_COLUMNS``)."""
    ms = row[6]
    return [row[0], *row[2:6], "" if ms is None else duration_text(ms / 1000), row[7]]


@functools.lru_cache(maxsize=64)
def _clock(second: int) -> str:
    # Rows come in runs of the same second: format each second once.
    return time.strftime("%H:%M:%S", time.localtime(second))


def _short(value, limit=80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def detail_of(event) -> str:
    """One line saying what an event is about (plain text; the browser shows it as text)."""
    name = event.name
    if name == "pipeline:start":
        return f"entry {event.entry}" + (" (resumed)" if event.resumed else "")
    if name == "pipeline:success":
        return event.status
    if name == "pipeline:paused":
        return f"{event.reason}; resumes at {'/'.join(event.checkpoint.resume_at)}"
    if name in ("pipeline:failure", "stage:failure", "step:failure"):
        return _short(f"{type(event.error).__name__}: {event.error}", 160)
    if name == "stage:success":
        return f"next → {event.next!r}" if event.next is not None else "next → (in order)"
    if name == "stage:paused":
        return _short(repr(event.instruction)) if event.instruction is not None else ""
    if name == "step:success":
        return _short("patch " + ", ".join(map(str, event.patch)) if event.patch else "no change")
    if name == "stage:start":
        return _short(event.label) if event.label != event.stage_id else ""
    if name == "step:progress":
        count = f"{event.done}" if event.total is None else f"{event.done}/{event.total}"
        return _short(count if event.message is None else f"{count} — {event.message}", 160)
    return ""


class _ProgressIndex:
    """Which ``step:progress`` events of one log are shown: the first of each step, as its latest.

    Built incrementally (progress events are few: a few a second per step).
    """

    __slots__ = ("log", "scanned", "first", "latest", "hidden")

    def __init__(self, log):
        self.log = log
        self.scanned = 0
        self.first: dict[tuple, int] = {}    # (path, step id) -> index of its first report
        self.latest: dict[int, int] = {}     # first report's index -> the latest report's index
        self.hidden: set[int] = set()        # reports shown through their step's first one

    def update(self) -> None:
        log = self.log
        stop = len(log)
        if stop == self.scanned:
            return
        names = log.names(self.scanned, stop)
        for offset, name in enumerate(names):
            if name != "step:progress":
                continue
            i = self.scanned + offset
            event = log[i]  # kept built in the log: no work to read it
            key = (event.path, event.step_id)
            first = self.first.get(key)
            if first is None:
                self.first[key] = i
                self.latest[i] = i
            else:
                self.latest[first] = i
                self.hidden.add(i)
        self.scanned = stop


class EventTable(Snapshot, anywidget.AnyWidget):
    """A live table of a run's events: filter by event name and stage, counts per event, at most
    ``max_rows`` rows sent to the browser (the newest); ``.dataframe`` has every event for pandas::

        table = EventTable(ctx, max_rows=1000)
        task = ctx.start(); display(table)
        await task
        table.dataframe.query("event == 'stage:success'")
    """

    _esm = HERE / "event_table.js"
    _css = HERE / "event_table.css"

    columns = traitlets.List(traitlets.Unicode(), VIEW_COLUMNS).tag(sync=True)
    # The shown rows (newest last, at most max_rows) travel as one JSON string:
    # ipywidgets would otherwise walk every cell of every row on each redraw.
    rows_json = traitlets.Unicode("[]").tag(sync=True)
    counts = traitlets.Dict({}).tag(sync=True)              # event name -> how many
    total = traitlets.Int(0).tag(sync=True)
    shown = traitlets.Int(0).tag(sync=True)
    event_filter = traitlets.List(traitlets.Unicode(), []).tag(sync=True)   # [] = all events
    stage_filter = traitlets.Unicode("").tag(sync=True)     # substring of the stage address
    event_names = traitlets.List(traitlets.Unicode(), list(EVENT_NAMES)).tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)

    def __init__(self, ctx=None, max_rows: int = 1000, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows must be an int >= 1, got {max_rows!r}")
        self.max_rows = max_rows
        self.rows: list[list] = []   # what the browser shows, as Python lists
        self.add_class("pipenb-event-table")
        self._logs: list = []        # EventLogs shown, oldest first; the last may be recording
        self._owned = None           # the log this table opened (and closes on detach)
        self._counts: Counter = Counter()
        self._counted: list[int] = []  # per log, how many of its events are in _counts
        self._pushed = -1            # total at the last redraw
        self._where: dict[tuple, tuple] = {}     # event path -> (pipeline path, stage address) as shown
        self._cache: dict[tuple, list] = {}      # (log number, index) -> its row, for the rows shown
        self._cache_t0: float | None = None      # the time "elapsed" counts from, for those rows
        self._progress: dict[int, _ProgressIndex] = {}  # log number -> its progress rows
        self._lock = threading.Lock()  # filter changes arrive on a comm thread, redraws on the loop
        self.ctx = None  # the run followed
        self.follower = RunFollower(self.redraw, self._changed, settled=lambda event: self.refresh_snapshot())
        self.observe(lambda change: self._refilter(), names=["event_filter", "stage_filter"])
        if ctx is not None:
            self.attach(ctx)

    def attach(self, ctx, history: list | None = None) -> EventTable:
        """Record ``ctx``'s events from now on, after what the table recorded before.

        ``history``: EventLogs someone else keeps for this one run, the last one
        recording ``ctx`` (a dashboard keeps them per run, so picking a run again
        shows all of it). The table then shows exactly those and leaves them open.
        """
        self.detach()
        self.ctx = ctx
        with self._lock:
            if history is None:
                self._owned = self.follower.open_log(ctx)
                self._logs.append(self._owned)
                self._counted.append(0)
            else:
                self._logs, self._counted = list(history), [0] * len(history)
                self._counts.clear()
                self._cache = {}
        if not can_run(ctx.status) and ctx.status != RUNNING and not self._total():
            self.note = (f"attached to run {short_id(ctx.run_id)} after it {ctx.status}; "
                         f"state and checkpoint show where it is")
        else:
            self.note = f"run {short_id(ctx.run_id)}"
        self._pushed = -1
        self.follower.follow(ctx)
        return self

    def detach(self) -> None:
        """Let go of the run: its listeners and the log opened for it (the events recorded stay)."""
        self.follower.stop()
        if self._owned is not None:
            with self._lock:
                self._count_new()
            self._owned = None
        self.ctx = None

    def clear(self) -> None:
        """Forget every recorded event (an attached run goes on being recorded)."""
        with self._lock:
            self._logs, self._counted = [], []
            self._counts.clear()
            self._cache = {}
            self._progress = {}
            if self.ctx is not None:  # attached: go on recording, from now
                if self._owned is not None:
                    self._owned.clear()
                else:
                    self._owned = self.follower.open_log(self.ctx)
                self._logs, self._counted = [self._owned], [0]
        self._push()

    def _changed(self) -> bool:
        return self._total() != self._pushed

    def redraw(self) -> None:
        """Send the newest rows and the counts as recorded now."""
        self._push()

    # -- reading the logs ------------------------------------------------------
    def _total(self) -> int:
        return sum(map(len, self._logs))

    def _count_new(self) -> None:
        for no, log in enumerate(self._logs):
            names = log.names(self._counted[no])
            if names:
                self._counts.update(names)
                self._counted[no] += len(names)

    def _where_of(self, path) -> tuple[str, str]:
        where = self._where.get(path)
        if where is None:
            where = self._where[path] = ("/".join(n.pipeline_id for n in path), stage_address(path) or "")
        return where

    def _progress_of(self, no: int) -> _ProgressIndex:
        index = self._progress.get(no)
        if index is None or index.log is not self._logs[no]:
            index = self._progress[no] = _ProgressIndex(self._logs[no])
        index.update()
        return index

    def _events(self):
        for log in self._logs:
            yield from log

    def _newest_keys(self) -> list[tuple]:
        """Keys of the newest ``max_rows`` rows that pass the filters, oldest first.

        A key is (log number, index), or (log number, index, latest index) for a
        step's progress row: where its first report was, showing its latest one.
        """
        keys: list = []
        wanted = set(self.event_filter)
        needle = self.stage_filter
        for no in range(len(self._logs) - 1, -1, -1):
            log = self._logs[no]
            left = self.max_rows - len(keys)
            if left <= 0:
                break
            progress = self._progress_of(no)
            hidden, latest = progress.hidden, progress.latest
            if not wanted and not needle:
                n = len(log)
                lo = max(0, n - left)
                while hidden and lo > 0 and n - lo - sum(1 for i in hidden if i >= lo) < left:
                    lo = max(0, n - left - sum(1 for i in hidden if i >= lo))
                shown = [i for i in range(lo, n) if i not in hidden][-left:]
                keys[:0] = [(no, i) if i not in latest else (no, i, latest[i]) for i in shown]
                continue
            names, paths = log.names(), log.paths()
            hits = []
            for i in range(len(names) - 1, -1, -1):
                if i in hidden:
                    continue
                if (not wanted or names[i] in wanted) and (not needle or needle in self._where_of(paths[i])[1]):
                    hits.append((no, i) if i not in latest else (no, i, latest[i]))
                    if len(hits) == left:
                        break
            keys[:0] = hits[::-1]
        return keys

    def _rows_for(self, keys: list, t0: float) -> list:
        """The shown rows; rows already shown last time are reused, only new ones are built."""
        if t0 != self._cache_t0:
            self._cache, self._cache_t0 = {}, t0
        cache = self._cache
        missing: dict[int, list[int]] = {}
        for key in keys:
            if key not in cache:
                if len(key) == 3:  # a progress row: its latest report
                    cache[key] = self._row(self._logs[key[0]][key[2]], t0)
                    continue
                missing.setdefault(key[0], []).append(key[1])
        for no, indices in missing.items():
            log, lo, hi = self._logs[no], indices[0], indices[-1] + 1
            if hi - lo <= 2 * len(indices):  # mostly one run of new events: build them in bulk
                span = log[lo:hi]
                events = [span[i - lo] for i in indices]
            else:
                events = [log[i] for i in indices]
            for i, event in zip(indices, events, strict=True):
                cache[no, i] = self._row(event, t0)
        rows = [cache[k] for k in keys]
        self._cache = dict(zip(keys, rows, strict=True))  # keep only what is shown
        return rows

    # -- rendering -------------------------------------------------------------
    def _row(self, event, t0: float) -> list:
        t = event.time
        where = self._where_of(event.path)
        duration = getattr(event, "duration", None)
        return [
            f"{_clock(int(t))}.{int(t * 1000) % 1000:03d}",
            round((t - t0) * 1000, 1),
            event.name,
            where[0],
            where[1],
            getattr(event, "step_id", "") or "",
            None if duration is None else round(duration * 1000, 3),
            detail_of(event),
        ]

    def _t0(self, fallback: float = 0.0) -> float:
        first = next((log for log in self._logs if len(log)), None)
        return first[0].time if first is not None else fallback

    def _refilter(self) -> None:
        self._pushed = -1
        self._push()

    def _push(self) -> None:
        with self._lock:
            self._count_new()
            total = self._total()
            rows = self._rows_for(self._newest_keys(), self._t0())
            self._pushed = total
            counts = {name: n for name, n in self._counts.items() if n}
        self.rows = rows
        self.rows_json = json.dumps(rows)
        self.counts = counts
        self.total = total
        self.shown = len(rows)

    def close(self) -> None:
        """Let go of the run (listeners, own logs) and close this widget and its layout."""
        self.detach()
        close_tree(self, super().close)

    # -- the static snapshot (SPEC 12) ----------------------------------------
    SNAPSHOT_ROWS = 20

    def snapshot_rows(self, n: int | None = None) -> list:
        """The newest ``n`` rows passing the filters, as they are now (built apart from the live rows)."""
        n = self.SNAPSHOT_ROWS if n is None else n
        with self._lock:
            self._count_new()
            keys = self._newest_keys()[-n:] if n > 0 else []
            t0 = self._t0()
            return [self._row(self._logs[k[0]][k[-1]], t0) for k in keys]

    def snapshot_text(self) -> str:
        return f"EventTable: {self._total()} events" + (f" ({self.note})" if self.note else "")

    def snapshot_html(self) -> str:
        rows = self.snapshot_rows()
        total = self._total()
        counts = " · ".join(f"{html.escape(k)} {v}" for k, v in sorted(self._counts.items()) if v)
        head = f"showing the last {len(rows)} of {total} events" + (f" · {counts}" if counts else "")
        note = f"<div>{html.escape(self.note)}</div>" if self.note else ""
        return (f'<div class="pipenb-snapshot pipenb-snapshot-table">{note}<div>{head}</div>'
                f"{rows_html(VIEW_COLUMNS, [view_row(r) for r in rows])}</div>")

    @property
    def events(self) -> list:
        """Every recorded event (frozen ``RunEvent`` objects), oldest first."""
        with self._lock:
            return list(self._events())

    @property
    def dataframe(self):
        """Every recorded event (not just the shown ones) as a pandas DataFrame."""
        import pandas as pd

        events = self.events
        t0 = events[0].time if events else 0.0
        return pd.DataFrame([self._row(e, t0) for e in events], columns=COLUMNS)

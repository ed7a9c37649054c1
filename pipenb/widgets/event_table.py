"""``EventTable``: a live table of a run's events, filterable, with counts per event.

The listener only appends the event object and counts it (cheap enough for
tens of thousands of events a second); rows are formatted when they are shown,
at most ten times a second, and only the newest ``max_rows`` matching rows
ever reach the browser. ``dataframe`` has every recorded event.
"""

from __future__ import annotations

import pathlib
import threading
import time

import anywidget
import traitlets

from pipenb.core.events import EVENT_NAMES

from .throttle import Ticker

HERE = pathlib.Path(__file__).parent
_RUN_EDGES = ("pipeline:start", "pipeline:success", "pipeline:paused", "pipeline:failure")
COLUMNS = ["time", "elapsed_ms", "event", "path", "stage", "step", "duration_ms", "detail"]


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
    return ""


class EventTable(anywidget.AnyWidget):
    _esm = HERE / "event_table.js"
    _css = HERE / "event_table.css"

    columns = traitlets.List(traitlets.Unicode(), COLUMNS).tag(sync=True)
    rows = traitlets.List([]).tag(sync=True)               # newest last, at most max_rows
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
        self.add_class("pipenb-event-table")
        self._events: list = []
        self._counts: dict[str, int] = {}
        self._counted = 0            # events already in _counts
        self._pushed = -1            # len(_events) at the last redraw
        self._t0: float | None = None
        self._off: list = []
        self._ticker = Ticker(self._push, lambda: len(self._events) != self._pushed)
        self._lock = threading.Lock()  # filter changes arrive on a comm thread, redraws on the loop
        self.observe(lambda change: self._refilter(), names=["event_filter", "stage_filter"])
        self.ctx = None
        if ctx is not None:
            self.attach(ctx)

    def attach(self, ctx) -> EventTable:
        """Record ``ctx``'s events from now on (keeps what was recorded before)."""
        self.detach()
        self.ctx = ctx
        # The per-event cost is one list.append; formatting happens at redraw time.
        self._off = [ctx.on("*", self._events.append), ctx.on("*", self._on_run)]
        if ctx.status not in ("prepared", "running"):
            self.note = f"attached to run {ctx.run_id[:8]} after it {ctx.status}; state and checkpoint show where it is"
        else:
            self.note = f"run {ctx.run_id[:8]}"
        if ctx.status == "running":
            self._ticker.start()
        self._push()
        return self

    def detach(self) -> None:
        for off in self._off:
            off()
        self._off = []
        self._ticker.stop()

    def clear(self) -> None:
        self._events.clear()
        self._counts.clear()
        self._counted = 0
        self._t0 = None
        self._push()

    def _on_run(self, event) -> None:
        # After the append (listeners run in subscription order); acts on the run's edges only.
        if event.name not in _RUN_EDGES or len(event.path) != 1:
            return
        if event.name == "pipeline:start":
            self._ticker.start()
        else:
            self._ticker.stop()
            self._ticker.flush_now()  # a run ended or paused: show it without waiting

    # -- rendering -------------------------------------------------------------
    def _row(self, event) -> list:
        if self._t0 is None:
            self._t0 = self._events[0].time if self._events else event.time
        duration = getattr(event, "duration", None)
        return [
            time.strftime("%H:%M:%S", time.localtime(event.time)) + f".{int(event.time * 1000) % 1000:03d}",
            round((event.time - self._t0) * 1000, 1),
            event.name,
            "/".join(n.pipeline_id for n in event.path),
            event.stage_address or "",
            getattr(event, "step_id", "") or "",
            None if duration is None else round(duration * 1000, 3),
            detail_of(event),
        ]

    def _matches(self, event) -> bool:
        if self.event_filter and event.name not in self.event_filter:
            return False
        return not self.stage_filter or self.stage_filter in (event.stage_address or "")

    def _refilter(self) -> None:
        self._pushed = -1
        self._push()

    def _push(self) -> None:
        with self._lock:
            self._push_locked()

    def _push_locked(self) -> None:
        events, counts = self._events, self._counts
        for event in events[self._counted:]:
            counts[event.name] = counts.get(event.name, 0) + 1
        self._counted = self._pushed = len(events)
        picked = []
        if not self.event_filter and not self.stage_filter:
            picked = self._events[-self.max_rows:]
        else:
            for event in reversed(self._events):
                if self._matches(event):
                    picked.append(event)
                    if len(picked) == self.max_rows:
                        break
            picked.reverse()
        self.rows = [self._row(e) for e in picked]
        self.counts = dict(counts)
        self.total = len(self._events)
        self.shown = len(picked)

    @property
    def redraws(self) -> int:
        return self._ticker.count

    @property
    def dataframe(self):
        """Every recorded event (not just the shown ones) as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame([self._row(e) for e in self._events], columns=COLUMNS)

"""``HistoryView``: the dashboard's History tab, one entry per record of the shown run's history.

Debugging a run means asking "what did this stage change?": picking an entry
shows the state after that record and its diff against the state before, and
enables "Fork from here" (a new run from before that record, SPEC 10; the
dashboard does the fork, through its factory). A long run keeps every record;
the list shows the newest ``MAX_HISTORY_ROWS`` and redraws only when the
history grew, so a 4/s redraw of a waiting run costs nothing here. Each
record's "keys changed" is computed once and kept.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ...display import clock, diff_html, duration_text, state_html
from .pick_table import PickTable

HISTORY_COLUMNS = ["#", "stage", "started", "took", "keys changed"]
MAX_HISTORY_ROWS = 500  # the newest records listed (a long run keeps every record; the list shows these)
PICK_HINT = '<div class="pipenb-hint">pick an entry to see the state after it and what it changed</div>'


class HistoryView(widgets.VBox):
    """The entries, the Fork button and the picked record's diff and state. ``call(fn)`` runs ``fn`` on
    the kernel's loop (a click may come on another thread)."""

    def __init__(self, call):
        self.ctx = None
        self.entries = PickTable(HISTORY_COLUMNS, empty="no stage committed yet")
        self.entries.add_class("pipenb-history")
        self.entries.observe(lambda change: call(self.show_record), names="value")
        self.record_view = widgets.HTML("")
        self.record_view.add_class("pipenb-record")
        self.fork_button = widgets.Button(description="Fork from here", icon="code-fork", disabled=True,
                                          layout=widgets.Layout(width="150px"))
        self.fork_button.add_class("pipenb-btn-fork")
        self._diff_keys: dict[tuple, str] = {}  # (run id, seq) -> "keys changed" of that record
        self._listed = None  # (run id, history length, last seq) last listed
        super().__init__([self.entries, widgets.HBox([self.fork_button]), self.record_view])

    def follow(self, ctx) -> None:
        """Show ``ctx``'s history from now on (``None``: no run), nothing picked."""
        self.ctx = ctx
        self._listed = None
        self.entries.value = None
        if ctx is None:
            self.entries.rows = []
            self.record_view.value = ""
            self.fork_button.disabled = True

    def refresh(self) -> None:
        """List the records (when the history changed since the last listing) and the picked one."""
        ctx = self.ctx
        if ctx is None:
            return
        h = ctx.history
        key = (ctx.run_id, len(h), h[-1].seq if len(h) else None)
        if key == self._listed:
            return
        self._listed = key
        n = len(h)
        rows = []
        for i in range(max(0, n - MAX_HISTORY_ROWS), n):
            r = h[i]
            changed = self._diff_keys.get((ctx.run_id, r.seq))
            if changed is None:
                changed = self._diff_keys[(ctx.run_id, r.seq)] = ", ".join(map(str, h.diff(i).keys)) or "—"
            rows.append({"id": str(r.seq), "cells": [str(r.seq), r.address, clock(r.started),
                                                     duration_text(r.duration) if not r.is_edit else "edit",
                                                     changed],
                         "cls": "pipenb-pick-edit" if r.is_edit else ""})
        self.entries.rows = rows
        if self.entries.value is not None and self.entries.row(self.entries.value) is None:
            self.entries.value = None
        self.show_record()

    def picked(self):
        """(history, index) of the picked entry, or (history, None); (None, None) without a run."""
        ctx = self.ctx
        if ctx is None or self.entries.value is None:
            return None, None
        h = ctx.history
        for i in range(len(h) - 1, -1, -1):
            if str(h[i].seq) == self.entries.value:
                return h, i
        return h, None

    def show_record(self) -> None:
        h, i = self.picked()
        if i is None:
            self.record_view.value = PICK_HINT if self.ctx is not None else ""
            self.fork_button.disabled = True
            return
        r = h[i]
        d = h.diff(i)
        title = f"state after #{r.seq} {r.address}"
        self.record_view.value = (
            f'<div class="pipenb-view-title"><b>changes of #{r.seq}</b> <code>{html.escape(r.address)}</code></div>'
            f"{diff_html(d)}{state_html(r.state, title=title, marked=set(d.keys))}")
        self.fork_button.disabled = False

    def pick(self, seq: int | None) -> None:
        """Show history record ``seq`` (as a click on its entry does)."""
        self.entries.value = None if seq is None else str(seq)


def last_writers(ctx) -> dict:
    """Per top-level key of ``ctx``'s state, the stage that last wrote it (SPEC 14: the state view names it).
    The search walks back from the newest record and stops once every key is found."""
    return ctx.history.writers(list(ctx.state))

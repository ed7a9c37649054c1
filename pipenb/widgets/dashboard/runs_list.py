"""``RunsList``: the dashboard's runs table, one row per run of its pipeline (SPEC 11).

The rows come from two places read at two speeds. The registry holds the
runs of this kernel: it is memory, read at every redraw, so a run that
starts, pauses, expires or is discarded shows at once. The store holds the
runs this kernel does not (left by a restarted kernel or another process):
``factory.runs()`` queries it (SQLite), so it is read at most once every
``STORE_EVERY`` seconds, never on every redraw of a running run. Each row
says where the run is (time left in memory, or "in the store"), roughly how
much state it holds, and its note (an artifact that cannot be saved, the
process running it). A click on a row picks it, its buttons resume or
discard it: both reach the dashboard through ``on_pick`` / ``on_action``.
It is the table itself (a ``PickTable``): the dashboard's ``runs``.
"""

from __future__ import annotations

import time

from pipenb.display import short_id
from pipenb.core.lifecycle import PREPARED, can_run, is_finished
from pipenb.core.registry import RunRecord

from ...display import size_text, time_left
from .pick_table import PickTable

RUN_COLUMNS = ["run", "pipeline", "status", "stage", "time left", "size", "note", "actions"]
STORE_EVERY = 1.0  # seconds between two reads of the store's runs
INTERRUPTED = "interrupted"  # a stored run whose process died mid-run: resuming continues it
GONE = "gone"  # a run released here whose checkpoint left the store: another kernel or registry finished it
GONE_NOTE = "no checkpoint in the store any more: completed or discarded elsewhere"


def row_actions(status: str) -> list[str]:
    """A finished run is only removed from the list; a waiting one resumed or discarded (checkpoint cleared)."""
    if is_finished(status):
        return ["remove"]
    return (["resume"] if can_run(status) or status == INTERRUPTED else []) + ["discard"]


def runs_title(hidden: int) -> str:
    """The runs list's title; says how many prepared runs that never ran it leaves out."""
    more = f" · not listed: {hidden} prepared run{'s' if hidden != 1 else ''} never started" if hidden else ""
    return (
        f'<div class="pipenb-view-title"><b>runs</b> <span class="pipenb-hint">(click a row to show it'
        f"{more})</span></div>"
    )


class RunsList(PickTable):
    """The runs table and where its rows come from.

    ``on_pick(run_id)`` hears a click on a row and ``on_action(action, run_id)`` a row's button, both
    through ``call`` (the kernel's loop: a click may come on another thread).
    """

    def __init__(self, factory, registry, call, on_pick, on_action):
        super().__init__(RUN_COLUMNS, empty="no runs yet")
        self.factory = factory
        self.registry = registry
        self.discarded: set[str] = set()  # discarded here: never listed again, even from a stale read
        self.seen: set[str] = set()  # runs this dashboard showed: listed even while prepared and never run
        self.hidden = 0  # prepared runs never run nor shown here, left out of the last listing
        self.gone: set[str] = set()  # released here, finished or discarded elsewhere since (the store says)
        self.add_class("pipenb-runs")
        self.observe(self._picked, names="value")
        self.on_action(lambda action, run_id: call(on_action, action, run_id))
        self._call, self._on_pick = call, on_pick
        self._stored: list[RunRecord] = []  # the store's runs the registry did not hold at the last read
        self._read_at: float | None = None  # time.monotonic() of the last read
        self._refreshing = False

    def _picked(self, change) -> None:
        run_id = change["new"]
        if self._refreshing or not run_id:
            return
        self._call(self._on_pick, run_id)

    def stored(self, read: bool = False) -> list[RunRecord]:
        """The runs only the store knows: as last read, or read again (``read``) when that is about
        ``STORE_EVERY`` s old."""
        now = time.monotonic()
        if self._read_at is None or (read and now - self._read_at >= STORE_EVERY * 0.9):
            self._read_at = now
            regs = self.registry.runs()
            held = {r.run_id for r in regs}
            listed = self.factory.runs()
            ids = {r.run_id for r in listed if not is_finished(r.status)}
            # Released here, and the store has no checkpoint of it any more: completed or discarded elsewhere.
            self.gone = {r.run_id for r in regs if not r.live and r.run_id not in ids}
            self._stored = [r for r in listed if r.run_id not in held and not r.live]
        return self._stored

    def records(self, read_store: bool = False) -> list[RunRecord]:
        """This pipeline's runs: the registry's now (held, then finished), then the store's (see ``stored``).

        Prepared runs that never ran are left out unless this dashboard showed them (a fork it made):
        cells that prepare runs they never start would otherwise fill the list (``hidden`` counts them).
        """
        pid = self.factory.pipeline.id
        stored = self.stored(read_store)
        held = [
            r
            for r in self.registry.runs() + self.registry.finished()
            if r.pipeline_id == pid and r.run_id not in self.gone
        ]
        ids = {r.run_id for r in held}
        stored = [r for r in stored if r.run_id not in ids]
        listed = [r for r in held + stored if r.run_id not in self.discarded]
        shown = [r for r in listed if r.status != PREPARED or r.run_id in self.seen]
        self.hidden = len(listed) - len(shown)
        return shown

    def _row(self, rec: RunRecord, shown) -> dict:
        status, at = rec.status, rec.paused_at or ""
        if shown is not None and shown.run_id == rec.run_id:  # the shown run's own status is the newest
            # A finished run continues nowhere: its stage cell stays blank, as in its row when another run is
            # shown (a row must not change when it is picked).
            status, at = shown.status, "" if is_finished(shown.status) else shown.position
        if rec.run_id in self.gone:
            return {
                "id": rec.run_id,
                "cells": [short_id(rec.run_id), rec.pipeline_id, GONE, at, "", "", GONE_NOTE],
                "cls": f"pipenb-pick-status-{GONE}",
                "actions": ["discard"],
            }
        if rec.expires_at is not None:
            left = time_left(rec.time_left)
        elif is_finished(status):
            left = "" if rec.live else "in the store" if rec.ended is not None else "record only"
        elif not rec.live:
            left = "in the store"
        else:
            left = ""
        return {
            "id": rec.run_id,
            "cells": [short_id(rec.run_id), rec.pipeline_id, status, at, left, size_text(rec.size), rec.note],
            "cls": f"pipenb-pick-status-{status}",
            "actions": row_actions(status),
        }

    def refresh(self, shown, read_store: bool = False) -> set[str]:
        """Redraw the rows (``shown``: the run the dashboard shows, picked); the run ids listed."""
        if shown is not None:
            self.seen.add(shown.run_id)
        rows = [self._row(rec, shown) for rec in self.records(read_store)]
        listed = {row["id"] for row in rows}
        if shown is not None and shown.run_id not in listed:
            rows.insert(
                0,
                self._row(RunRecord(shown.run_id, shown.pipeline_id, shown.status, shown.position, None, True), shown),
            )
            listed.add(shown.run_id)
        self._refreshing = True
        try:
            if rows != self.rows:
                self.rows = rows
            self.value = shown.run_id if shown is not None else None
        finally:
            self._refreshing = False
        return listed

    def row_text(self, run_id: str) -> str:
        """The row of ``run_id`` as one line of text ("" when it is not listed)."""
        row = self.row(run_id)
        return "  ".join(c for c in row["cells"] if c) if row is not None else ""

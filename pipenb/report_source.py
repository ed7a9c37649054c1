"""What a run report is made from, gathered from a live context or from a store file.

A report must work in a new process, where a run in a SQLite file has no
``Pipeline`` object: only its history rows, state and checkpoint. So the
report reads a ``RunSource`` (those facts, plus the pipeline and the events
when they exist) built by ``from_context`` or ``from_sqlite``, and draws the
path the run took (``run_map_svg``: its stages, visit counts, moves taken)
from the records alone.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from typing import Any

from .graph import PALETTE, ROUTE_COLOUR, clean_text

EDIT = " (edit)"
FINISHED = "completed"


class ReportError(Exception):
    """A report could not be made: the file or the run named is missing or unreadable."""


@dataclass
class RunSource:
    """The facts a report shows; ``pipeline`` and ``events`` are None when unknown."""

    run_id: str
    pipeline_id: str
    status: str
    position: str
    history: Any
    state: Any
    checkpoint: Any = None
    pipeline: Any = None
    events: Any = None
    error: Any = None
    where: str = ""
    notes: list = field(default_factory=list)


def visits(history) -> dict[str, int]:
    """``{address: count}`` of committed records: History's own ``visits()`` when it has one."""
    own = getattr(history, "visits", None)
    if callable(own):
        return dict(own())
    out: dict[str, int] = {}
    for r in history:
        if r.stage_id is not None:
            out[r.address] = out.get(r.address, 0) + 1
    return out


def transitions(history) -> dict[tuple, int]:
    """``{(from, to): count}`` of moves between consecutive stage records (edits skipped)."""
    own = getattr(history, "transitions", None)
    if callable(own):
        return dict(own())
    out: dict[tuple, int] = {}
    stages = [r.address for r in history if r.stage_id is not None]
    for pair in zip(stages, stages[1:], strict=False):
        out[pair] = out.get(pair, 0) + 1
    return out


def _error_of(events):
    for e in reversed(list(events or ())):
        if e.name in ("pipeline:failure", "stage:failure", "step:failure"):
            return e.error
    return None


def from_context(ctx, events=None, error=None) -> RunSource:
    """A live (or finished) run of this process."""
    status = ctx.status
    error = error if error is not None else _error_of(events)
    return RunSource(ctx.run_id, ctx.pipeline_id, status, ctx.position, ctx.history, ctx.state,
                     ctx.checkpoint, ctx.pipeline, events, error, where="this process")


def from_sqlite(path: str, run_id: str) -> RunSource:
    """A run kept in a SQLite file (another process, or an earlier kernel, ran it)."""
    if not os.path.isfile(path):
        raise ReportError(f"no such SQLite file: {path}")
    from .core.checkpoints import read_checkpoint, stored_status
    from .core.errors import PipelineError
    from .core.history import History, replay
    from .core.state import PIPELINE_DATA_KEY, user_view
    from .stores.sqlite import SqliteStore

    try:
        provider = SqliteStore.factory(path)
        store = provider(run_id)
        rows = store.load_history()
        data = store.get()
    except PipelineError as exc:
        raise ReportError(f"cannot read {path}: {exc}") from None
    if not data and not rows:
        known = provider.run_ids()
        raise ReportError(f"run {run_id!r} is not in {path} (it holds: {', '.join(known[:20]) or 'no runs'})")
    cp = read_checkpoint(store, None, run_id)
    reserved = data.get(PIPELINE_DATA_KEY)
    status = stored_status(reserved) or ("paused" if cp is not None else FINISHED)
    state = user_view(data)
    history = replay(rows, None) if rows else History(state, None)
    source = RunSource(run_id, cp.pipeline_id if cp is not None else "(unknown pipeline)", status,
                       "/".join(cp.resume_at) if cp is not None else "", history, state, cp, where=path)
    if cp is None:
        source.notes.append("no checkpoint is kept for this run: it completed (or was terminated)")
    return source


def run_map_svg(source: RunSource) -> str:
    """The stages the run reached, in first-visit order, each with its visit count, and every move taken."""
    count, moves = visits(source.history), transitions(source.history)
    nodes = list(count)
    status = {a: "success" for a in nodes}
    if source.position and source.status in ("paused", "failed", "aborted"):
        if source.position not in status:  # where it stopped (failed) or continues (paused): no record there
            nodes.append(source.position)
            count[source.position] = 0
            ran = [r.address for r in source.history if r.stage_id is not None]
            if source.status != "paused" and ran:
                moves[(ran[-1], source.position)] = 1
        status[source.position] = source.status  # "aborted" has its own colour
    if not nodes:
        return ""
    row_h, box_w, x = 52, 220, 20
    y_of = {a: 12 + i * row_h for i, a in enumerate(nodes)}
    width, height = x + box_w + 40 + 36 * min(len(moves), 12) + 80, 24 + row_h * len(nodes)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="pipenb-runmap" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
           '<defs><marker id="pipenb-runmap-arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" '
           'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="currentColor" fill-opacity="0.75"/></marker></defs>']
    lane = 0
    for (a, b), n in moves.items():
        if a not in y_of or b not in y_of:
            continue
        y1, y2 = y_of[a] + 14, y_of[b] + 14
        if nodes.index(b) == nodes.index(a) + 1:
            out.append(f'<path d="M{x + 40},{y1 + 14} L{x + 40},{y2 - 15}" stroke="currentColor" stroke-opacity="0.75" '
                       f'fill="none" marker-end="url(#pipenb-runmap-arrow)"/><text x="{x + 48}" y="{(y1 + y2) / 2 + 4:.0f}" '
                       f'fill="currentColor">×{n}</text>')
            continue
        bend = x + box_w + 30 + 36 * (lane % 12)
        lane += 1
        out.append(f'<path d="M{x + box_w},{y1} C{bend},{y1} {bend},{y2} {x + box_w + 2},{y2}" fill="none" '
                   f'stroke="{ROUTE_COLOUR}" stroke-dasharray="5,4" marker-end="url(#pipenb-runmap-arrow)">'
                   f'<title>{html.escape(clean_text(f"{a} → {b}", 400))}</title></path>'
                   f'<text x="{bend - 10}" y="{(y1 + y2) / 2 + 4:.0f}" fill="currentColor">×{n}</text>')
    for a in nodes:
        c = PALETTE.get(status[a], PALETTE["pending"])
        shown = html.escape(clean_text(a, 30)) + (f" ×{count[a]}" if count[a] > 1 else "")
        out.append(f'<g class="node"><title>{html.escape(clean_text(a, 2000))}</title>'
                   f'<rect x="{x}" y="{y_of[a]}" width="{box_w}" height="28" rx="6" fill="{c["fill"]}" '
                   f'stroke="{c["stroke"]}"/><text x="{x + 10}" y="{y_of[a] + 18}" fill="{c["text"]}">{shown}'
                   f"</text></g>")
    out.append("</svg>")
    return "".join(out)

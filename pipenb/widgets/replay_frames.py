"""What ``RunReplay`` shows at each position of a run, computed from the records alone.

Scrubbing a 10,000-record run must draw each position in well under 50 ms,
so nothing here walks the history from the start per position: the visit
counts and moves up to record ``i`` are read from per-address (and per-move)
sorted index lists with a binary search, a record's events from the events
sorted by time, and its state from the history (states share structure, a
read is cheap). The graph is laid out once; a position is a small dict the
browser applies to the drawn nodes and edges (replay.js).

Nothing here runs a step or changes the history: it only reads.
"""

from __future__ import annotations

import html
from bisect import bisect_left, bisect_right
from collections import defaultdict

from ..display import clock, diff_html, duration_text, state_html

EDIT = " (edit)"
MAX_EVENTS = 60  # a record's events shown (a stage with more steps shows its first ones)
_SLACK = 5e-3  # seconds around a record's start and end where its stage's events are looked for
_STAGE_ENDS = (
    "stage:success",
    "stage:paused",
    "stage:failure",
)  # a record's events shown (a stage with more steps shows its first ones)


def _decision_text(decision) -> str:
    return "next" if decision is None else decision if isinstance(decision, str) else repr(decision)


class Timeline:
    """Prefix counts over one history: visits and moves up to any record, by binary search."""

    def __init__(self, records):
        self.addresses = [r.address for r in records]
        self.visit_at: dict[str, list[int]] = defaultdict(list)  # address -> indexes of its records
        self.move_at: dict[tuple, list[int]] = defaultdict(list)  # (from, to) -> indexes of the "to" records
        last = None
        for i, r in enumerate(records):
            if r.stage_id is None:  # an edit: neither a visit nor a move (SPEC 14)
                continue
            self.visit_at[r.address].append(i)
            if last is not None:
                self.move_at[(last, r.address)].append(i)
            last = r.address

    def visits(self, i: int) -> dict[str, int]:
        """``{address: count}`` of the stage records up to and including record ``i``."""
        out = {}
        for address, at in self.visit_at.items():
            n = bisect_right(at, i)
            if n:
                out[address] = n
        return out

    def moves(self, i: int) -> dict[tuple, int]:
        """``{(from, to): count}`` of the moves made up to and including record ``i``."""
        out = {}
        for move, at in self.move_at.items():
            n = bisect_right(at, i)
            if n:
                out[move] = n
        return out


class EventIndex:
    """Recorded events sorted by time, to find the ones of a record's stage while it ran."""

    def __init__(self, events):
        pairs = sorted(((e.time, k, e) for k, e in enumerate(events or ())), key=lambda p: (p[0], p[1]))
        self.times = [p[0] for p in pairs]
        self.events = [p[2] for p in pairs]

    def __len__(self) -> int:
        return len(self.events)

    def of(self, record) -> list:
        """The events of ``record``'s stage: from its ``stage:start`` (the one nearest the record's start) to
        the end of that visit. A loop's stage runs back to back, so a time window alone would take in the
        end of the visit before and the start of the one after."""
        if not self.events or record.stage_id is None:
            return []
        lo = bisect_left(self.times, record.started - _SLACK)
        hi = bisect_right(self.times, record.started + record.duration + _SLACK)
        address = record.address
        mine = [e for e in self.events[lo:hi] if e.stage_address == address]
        starts = [k for k, e in enumerate(mine) if e.name == "stage:start"]
        if not starts:
            return mine[:MAX_EVENTS]
        first = min(starts, key=lambda k: abs(mine[k].time - record.started))
        out = []
        for e in mine[first:]:
            out.append(e)
            if e.name in _STAGE_ENDS:
                break
        return out[:MAX_EVENTS]


def events_html(events, started: float) -> str:
    """A record's events as a small escaped table (time from the stage's start)."""
    if not events:
        return ""
    rows = []
    for e in events:
        detail = getattr(e, "error", None) or getattr(e, "message", None) or ""
        took = getattr(e, "duration", None)
        rows.append(
            f"<tr><td>+{max(e.time - started, 0.0) * 1000:.1f} ms</td><td>{html.escape(e.name)}</td>"
            f"<td>{html.escape(str(getattr(e, 'step_id', None) or ''))}</td>"
            f"<td>{'' if took is None else html.escape(duration_text(took))}</td>"
            f"<td>{html.escape(str(detail)[:300])}</td></tr>"
        )
    return (
        '<table class="pipenb-replay-events"><thead><tr><th>at</th><th>event</th><th>step</th><th>took</th>'
        f"<th>detail</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


class Frames:
    """One run's positions: ``frame(i)`` is what the replay shows at record ``i`` (JSON-ready)."""

    def __init__(self, history, events=None):
        self.history = history
        self.records = history.raw()  # record fields without their states: states are read per position
        self.timeline = Timeline(self.records)
        self.events = EventIndex(events)

    def __len__(self) -> int:
        return len(self.records)

    def frame(self, i: int) -> dict:
        """Position ``i``: the record, the graph's visits and moves up to it, its state, changes and events."""
        if not self.records:
            return {"i": -1, "n": 0}
        h, r = self.history, self.records[i]
        state, diff = h[i].state, h.diff(i)
        changed = [str(k) for k in diff.keys]
        edit = r.stage_id is None
        visits = self.timeline.visits(i)
        return {
            "i": i,
            "n": len(self.records),
            "seq": r.seq,
            "address": r.address,
            "label": r.label,
            "edit": edit,
            "current": r.address[: -len(EDIT)] if edit else r.address,
            "started": r.started,
            "clock": clock(r.started),
            "took": "edit" if edit else duration_text(r.duration),
            "decision": _decision_text(r.decision),
            "visits": visits,
            "ran": sorted(visits),
            "edges": [[a, b, n] for (a, b), n in self.timeline.moves(i).items()],
            "changed": changed,
            "state_html": state_html(state, title=f"state after #{r.seq} {r.address}", marked=set(diff.keys)),
            "diff_html": diff_html(diff),
            "events_html": events_html(self.events.of(r), r.started),
        }


def edge_ids(pipeline, moves) -> dict[str, str]:
    """``{"from\\0to": element id}``: the drawn edge each move of the run went along (graph.py names a
    declared edge ``pipenb-edge-<i>``, by its index in ``pipeline.edges()``, and an undeclared move
    ``pipenb-edge-u<j>``, in the order the moves are given). The browser restyles those elements per
    position; a move with no edge here (the built-in layout names none) is drawn by replay.js itself."""
    from ..graph_marks import RunMarks

    moves = {move: n for move, n in moves.items() if n}
    ids = {
        f"{a}\0{b}": f"pipenb-edge-u{j}"
        for j, (a, b, _n) in enumerate(RunMarks.of(pipeline, transitions=moves).undeclared)
    }
    for a, b in moves:
        key = f"{a}\0{b}"
        if key not in ids:
            along = RunMarks.of(pipeline, transitions={(a, b): 1}).edge_counts  # the one edge this move took
            if along:
                ids[key] = f"pipenb-edge-{next(iter(along))}"
    return ids


def addresses_svg(addresses: list[str]) -> str:
    """A plain drawing for a history without its pipeline: its stages in first-visit order, one row each
    (replay.js draws the moves between them)."""
    from ..graph import PALETTE, clean_text, node_id

    nodes = list(dict.fromkeys(a for a in addresses if not a.endswith(EDIT)))
    row_h, box_w = 50, 240
    width, height = box_w + 160, max(row_h * len(nodes) + 10, 40)
    c = PALETTE["pending"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} '
        f'{height}" font-family="Helvetica, sans-serif" font-size="12">'
    ]
    for k, a in enumerate(nodes):
        y = 10 + k * row_h
        out.append(
            f'<g id="{html.escape(node_id(a), quote=True)}" class="node"><title>{html.escape(clean_text(a))}'
            f'</title><rect x="10" y="{y}" width="{box_w}" height="30" rx="6" fill="{c["fill"]}" '
            f'stroke="{c["stroke"]}"/><text x="20" y="{y + 19}" fill="{c["text"]}">'
            f"{html.escape(clean_text(a, 34))}</text></g>"
        )
    if not nodes:
        out.append('<text x="10" y="24" fill="currentColor">no stage has run</text>')
    out.append("</svg>")
    return "".join(out)

"""A run's stages as bars over time: where did the time go?

The history says what each stage did; this draws *when* and *for how long*:
one row per stage address, one bar per visit (a loop's stage gets one bar per
pass), coloured by outcome with the palette of the stage graph, the steps
inside a bar when an ``EventLog`` recorded them, and a time axis. Reports
and snapshots inline it, so it is a pure function returning SVG text: no
widget, no script, nothing fetched.

Every SVG made here is well-formed XML whatever the labels hold (graph.py's
``clean_text`` then ``html.escape``). Text outside the pastel bars uses
``currentColor`` so it follows the page's colour in light and dark themes.
"""

from __future__ import annotations

import html
import math
from bisect import bisect_right
from typing import Iterable, NamedTuple

from .display import duration_text
from .graph import PALETTE, clean_text
from .timeline_gaps import MIN_GAP, Scale, band_svg, cuts_note, find_cuts

# Outcomes the palette may not have (yet): drawn in these colours, pastel fills like the others.
_EXTRA = {
    "aborted": {"fill": "#e5e7eb", "stroke": "#4b5563", "text": "#1f2937"},
    "completed": PALETTE["success"],
    "terminated": {"fill": "#e5e7eb", "stroke": "#4b5563", "text": "#1f2937"},
    "edit": {"fill": "#e9d5ff", "stroke": "#7e22ce", "text": "#1f2937"},
}
ROW_H, BAR_H, STEP_H = 30, 20, 4
LABEL_CHARS = 28  # characters of an address shown at the left of its row
TIP_CHARS = 2000  # characters kept in a bar's tooltip
CHAR_W = 6.6  # an 11px sans-serif character, wide enough for digits and units
_STEPS = {"step:success": "success", "step:failure": "failed"}


class Bar(NamedTuple):
    """One visit of a stage (or one step inside it): where, when, how long, how it ended."""

    address: str
    start: float
    duration: float
    outcome: str
    tip: str


def colours(outcome: str) -> dict[str, str]:
    """The fill, stroke and text colours of an outcome (pending's for one nobody knows)."""
    return PALETTE.get(outcome) or _EXTRA.get(outcome) or PALETTE["pending"]


def _record_outcome(record) -> str:
    if getattr(record, "stage_id", "") is None:
        return "edit"
    decision = getattr(record, "decision", None)
    return "paused" if type(decision).__name__ == "Pause" else "success"


def record_bars(records) -> list[Bar]:
    """One bar per history record (edits included, drawn as edits)."""
    bars = []
    for r in records:
        decision = "next" if r.decision is None else r.decision if isinstance(r.decision, str) else repr(r.decision)
        tip = f"#{r.seq} {r.address}\n{duration_text(r.duration)} · then {decision}"
        bars.append(Bar(r.address, float(r.started), max(float(r.duration), 0.0), _record_outcome(r), tip))
    return bars


def _address(event) -> str | None:
    ids = [node[1] for node in event.path if node[1] is not None]
    return "/".join(ids) if ids else None


def event_bars(events) -> tuple[list[Bar], list[Bar]]:
    """From recorded events: the stage visits that left no record (failed, aborted, still running), and the steps."""
    stages, steps, open_stages = [], [], {}
    for e in events or ():
        name, address = e.name, _address(e)
        if address is None:
            continue
        if name == "stage:start":
            open_stages[address] = e.time
        elif name in ("stage:success", "stage:paused"):
            open_stages.pop(address, None)
        elif name == "stage:failure":
            start = open_stages.pop(address, e.time - (e.duration or 0.0))
            aborted = type(e.error).__name__ in ("AbortedError", "CancelledError", "KeyboardInterrupt")
            outcome = "aborted" if aborted else "failed"
            tip = f"{address}\n{outcome}: {type(e.error).__name__}: {e.error}"
            stages.append(Bar(address, start, e.duration or 0.0, outcome, tip))
        elif name in _STEPS:
            duration = e.duration or 0.0
            tip = f"step {e.step_id} of {address}\n{duration_text(duration)} · {_STEPS[name]}"
            steps.append(Bar(address, e.time - duration, duration, _STEPS[name], tip))
    ends = [e.time for e in events or ()]
    for address, start in open_stages.items():  # started, never ended: running now (or the process died)
        stages.append(Bar(address, start, max(max(ends, default=start) - start, 0.0), "running", f"{address}\nrunning"))
    return stages, steps


def tick_step(span: float, target: int = 6) -> float:
    """A round step (1, 2 or 5 times a power of ten, or whole minutes) giving about ``target`` ticks."""
    raw = span / max(target, 1)
    for minutes in (1, 2, 5, 10, 15, 30, 60, 120):
        if raw > 30 and raw <= minutes * 60:
            return minutes * 60.0
    power = 10.0 ** _floor_log10(raw)
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return mult * power
    return 10 * power


def _floor_log10(x: float) -> int:
    n = 0
    x = max(x, 1e-9)
    while x >= 10:
        x, n = x / 10, n + 1
    while x < 1:
        x, n = x * 10, n - 1
    return n


def tick_text(t: float, step: float) -> str:
    """A tick's time since the run started: ``0``, ``250 ms``, ``1.5 s``, ``2:30``."""
    if t == 0:
        return "0"
    if step < 1:
        if t < 1:  # sub-millisecond steps keep their decimals: "0.5 ms", not a second "0 ms"
            return f"{t * 1000:.{max(0, -_floor_log10(step * 1000))}f} ms"
        places = 1 if step >= 0.1 else 2
        if t < 60:
            return f"{t:.{places}f} s"
        return f"{int(t // 60)}:{t % 60:0{places + 3}.{places}f} min"  # after a cut: 3:13.5 min, not 193.5 s
    if step < 60 and t < 60:
        return f"{t:.0f} s"
    s = int(round(t))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d} min"


def _esc(text: str, limit: int | None = None) -> str:
    return html.escape(clean_text(text, limit), quote=True)


def _axis(scale: Scale, y_top: int, y_axis: int) -> list[str]:
    """The time axis: a line per stretch drawn to scale (broken at the cuts), ticks counting real time."""
    step = tick_step(scale.shown)
    out = []
    bands = [(scale.x(c.start), scale.x(c.start) + scale.band) for c in scale.cuts]
    for a, b in scale.segments():
        out.append(
            f'<line x1="{scale.x(a):.1f}" y1="{y_axis}" x2="{scale.x(b):.1f}" y2="{y_axis}" '
            f'stroke="currentColor" stroke-opacity="0.5"/>'
        )
        k, count = math.ceil((a - scale.t0) / step - 1e-6), 0
        while scale.t0 + k * step <= b + step * 1e-4 and count < 200:
            t = k * step
            x, text = scale.x(scale.t0 + t), tick_text(t, step)
            half = len(text) * CHAR_W / 2 + 4
            k, count = k + 1, count + 1
            if any(xa - 3 <= x <= xb + 3 for xa, xb in bands):
                continue  # on a band's edge: the band's own line is there
            label = "" if any(x + half > xa and x - half < xb for xa, xb in bands) else _esc(text)
            out.append(
                f'<line x1="{x:.1f}" y1="{y_top}" x2="{x:.1f}" y2="{y_axis + 4}" stroke="currentColor" '
                f'stroke-opacity="0.15"/>'
                f'<text x="{x:.1f}" y="{y_axis + 17}" text-anchor="middle" fill="currentColor">{label}</text>'
            )
    return out


def _bar_svg(bar: Bar, x: float, w: float, y: float, room_right: float, alone: bool = False) -> str:
    """A bar and its duration: inside it when it fits; else beside it, unless the bar is ``alone`` on its
    row, whose total at the right already says the same (the same text twice side by side read as a glitch)."""
    c = colours(bar.outcome)
    label = duration_text(bar.duration) if bar.outcome != "edit" else "edit"
    text_w = len(label) * CHAR_W + 8
    if w >= text_w:
        text = (
            f'<text x="{x + w / 2:.1f}" y="{y + BAR_H / 2 + 3:.1f}" text-anchor="middle" '
            f'fill="{c["text"]}">{_esc(label)}</text>'
        )
    elif alone and bar.outcome != "edit":
        text = ""
    elif room_right >= text_w:
        text = f'<text x="{x + w + 4:.1f}" y="{y + BAR_H / 2 + 3:.1f}" fill="currentColor">{_esc(label)}</text>'
    else:
        text = (
            f'<text x="{x - 4:.1f}" y="{y + BAR_H / 2 + 3:.1f}" text-anchor="end" '
            f'fill="currentColor">{_esc(label)}</text>'
        )
    return (
        f'<g class="bar {bar.outcome}"><title>{_esc(bar.tip, TIP_CHARS)}</title>'
        f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{BAR_H}" rx="3" fill="{c["fill"]}" '
        f'stroke="{c["stroke"]}"/>{text}</g>'
    )


def _step_svg(bar: Bar, x: float, w: float, y: float) -> str:
    c = colours(bar.outcome)
    return (
        f'<rect class="step {bar.outcome}" x="{x:.1f}" y="{y + BAR_H - STEP_H - 1}" width="{w:.1f}" '
        f'height="{STEP_H}" fill="{c["stroke"]}" fill-opacity="0.55"><title>{_esc(bar.tip, TIP_CHARS)}</title>'
        f"</rect>"
    )


def _rows(bars: list[Bar]) -> dict[str, list[Bar]]:
    rows: dict[str, list[Bar]] = {}
    for bar in sorted(bars, key=lambda b: b.start):
        rows.setdefault(bar.address, []).append(bar)
    return rows


def _row_total(row: list[Bar]) -> str:
    total = sum(b.duration for b in row)
    return f"{len(row)}× · {duration_text(total)}" if len(row) > 1 else duration_text(total)


def _inside(row: list[Bar], starts: list[float], t: float) -> bool:
    """Whether time ``t`` falls in one of ``row``'s bars (sorted by start; ``starts`` their starts), with a
    millisecond of slack: a binary search, so a 10,000-visit row with its steps stays linear overall."""
    j = bisect_right(starts, t + 1e-3)
    return any(row[k].start - 1e-3 <= t <= row[k].start + row[k].duration + 1e-3 for k in range(max(j - 2, 0), j))


def _row_svg(address: str, row: list[Bar], steps: list[Bar], scale: Scale, y: int, longest: Bar | None) -> list[str]:
    """One stage's row: its address, its bars (the run's longest outlined), its steps, its total at the right."""
    plot_end = scale.points[-1][1]
    out = [
        f'<g class="row"><title>{_esc(address, TIP_CHARS)}</title><text x="{scale.points[0][1] - 8}" '
        f'y="{y + BAR_H / 2 + 3:.1f}" text-anchor="end" fill="currentColor">'
        f"{_esc(address, LABEL_CHARS)}</text></g>",
        f'<text x="{plot_end + 8:.1f}" y="{y + BAR_H / 2 + 3:.1f}" fill="currentColor" '
        f'fill-opacity="0.8">{_esc(_row_total(row))}</text>',
    ]
    for j, bar in enumerate(row):
        x, w = scale.x(bar.start), max(scale.length(bar.duration), 2.0)
        nxt = min(scale.x(row[j + 1].start) if j + 1 < len(row) else plot_end, scale.next_cut_x(x + w))
        out.append(_bar_svg(bar, x, w, y, nxt - x - w, alone=len(row) == 1))
        if bar is longest:
            out.append(
                f'<rect x="{x - 1.5:.1f}" y="{y - 1.5}" width="{w + 3:.1f}" height="{BAR_H + 3}" rx="4" '
                f'fill="none" stroke="currentColor" stroke-width="1.5"><title>the longest</title></rect>'
            )
    starts = [b.start for b in row]
    for step in steps:
        if _inside(row, starts, step.start):
            out.append(_step_svg(step, scale.x(step.start), max(scale.length(step.duration), 1.0), y))
    return out


def _pauses(records, events) -> list[float]:
    """When the run stood still: the end of each record that decided to pause, each ``pipeline:paused`` event.

    A log opened after a pause (a dashboard shown on a paused run) never saw its event; then the history and
    the resume tell: an edit record (the state is edited only while the run stands: both its ends, so the gaps
    either side of it are the pause) and a ``pipeline:start`` after the run's first record (a resume), unless
    the log saw the run fail just before it (then it stood failed, not paused).
    """
    ends = [r.started + r.duration for r in records if type(r.decision).__name__ == "Pause"]
    edits = [t for r in records if getattr(r, "stage_id", "") is None for t in (r.started, r.started + r.duration)]
    first = min((r.started for r in records), default=float("inf"))
    resumes, failed = [], False
    for e in events:
        if e.name == "pipeline:start" and e.time > first and not failed:
            resumes.append(e.time)
        if e.name.startswith("pipeline:"):
            failed = e.name == "pipeline:failure"
    return ends + edits + resumes + [e.time for e in events if e.name == "pipeline:paused"]


def timeline_svg(records: Iterable, events=None, *, width: int = 900, min_gap: float = MIN_GAP) -> str:
    """The run as an SVG timeline (see the module docstring).

    ``records``: ``StageRecord`` s (a ``History``); ``events``: an ``EventLog``
    or ``RunEvent`` s, for step bars and the visits that committed nothing
    (failed, aborted, running). Times on the axis count from the run's start.
    Idle spans (no stage running) longer than ``min_gap`` seconds and a tenth
    of the busy time are cut from the axis and marked (``timeline_gaps``).
    """
    records, events = list(records), list(events) if events is not None else []
    extra, steps = event_bars(events)
    rows = _rows(record_bars(records) + extra)
    if not rows:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="30" font-family="sans-serif" '
            'font-size="12"><text x="4" y="20" fill="currentColor">no stage has run yet</text></svg>'
        )
    every = [b for row in rows.values() for b in row]
    t0 = min(b.start for b in every)
    t1 = max(t0 + 1e-3, max(b.start + b.duration for b in every))
    cuts = find_cuts([(b.start, b.start + b.duration) for b in every], _pauses(records, events), min_gap=min_gap)
    label_w = int(min(max(len(clean_text(a, LABEL_CHARS)) for a in rows), LABEL_CHARS) * CHAR_W) + 16
    plot_w = max(width - label_w - 96 - 16, 120)  # 96: the rows' totals at the right
    scale = Scale(t0, t1, cuts, label_w, plot_w)
    y_axis = 20 + ROW_H * len(rows) + 4
    height = y_axis + 26 + (16 if cuts else 0)
    # The scale rides on the root element, so a view can place a marker at any time (RunReplay's position):
    # data-map is the piecewise map with the cuts; data-t0/span/x0/w the linear one of a run without them.
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pipenb-timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11" '
        f'data-t0="{t0!r}" data-span="{t1 - t0!r}" data-x0="{label_w}" data-w="{plot_w}" '
        f'data-map="{scale.data_map()}">'
    ]
    out += _axis(scale, 8, y_axis)
    out += [band_svg(c, scale, 8, y_axis, CHAR_W) for c in cuts]
    if cuts:
        out.append(
            f'<text class="cuts-note" x="{label_w}" y="{y_axis + 33}" fill="currentColor" '
            f'fill-opacity="0.8">{_esc(cuts_note(cuts))}</text>'
        )
    longest = max(every, key=lambda b: b.duration) if len(every) > 1 else None
    steps_of: dict[str, list[Bar]] = {}
    for step in steps:
        steps_of.setdefault(step.address, []).append(step)
    for i, (address, row) in enumerate(rows.items()):
        out += _row_svg(address, row, steps_of.get(address, []), scale, 20 + i * ROW_H, longest)
    out.append("</svg>")
    return "".join(out)

"""Cut the idle spans out of a timeline's time axis, and say so.

A run that paused for minutes between stages drawn to wall-clock scale turns
its work into slivers at both ends of the plot: the eye reads the pause, not
where the work time went. The timeline cuts each long idle span (no stage of
any row running in it) down to a fixed-width band, drawn as a broken axis
with the span's length written under it ("paused 3 min"), and keeps every
stretch of work to one scale. Nothing is hidden: the axis ticks keep counting
real time since the start, so they jump across a cut, the band says how long
it was, and the total cut is written at the end of the axis.

``Scale`` maps a time to an x with the cuts; its breakpoints ride on the SVG
(``data-map``) so a view can place a marker at any time (RunReplay's).
"""

from __future__ import annotations

import html
from bisect import bisect_left, bisect_right
from typing import NamedTuple

from .display import duration_text

MIN_GAP = 1.0  # seconds: a shorter idle span is never cut (engine overhead, a quick resume click)
BUSY_SHARE = 0.1  # ...nor one shorter than this share of the run's busy time (it does not squeeze the bars)
GAP_W = 90.0  # px: a cut's band, wide enough for "paused 59 min" under it
MAX_CUTS = 40  # cuts at most (the longest): each band stays a few pixels wide at least
MAX_CUTS_SHARE = 0.35  # of the plot's width, at most, for all the bands together


class Cut(NamedTuple):
    """An idle span cut from the axis: from ``start`` to ``end`` (seconds, the records' clock)."""

    start: float
    end: float
    paused: bool  # the run was paused there (a Pause decision, a pipeline:paused event, an edit, a resume), not idle

    @property
    def length(self) -> float:
        """Seconds cut."""
        return self.end - self.start


def gap_text(seconds: float) -> str:
    """A cut's length, rounded for a label: ``12 s``, ``3 min``, ``1.5 h``."""
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    if seconds < 3570:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def find_cuts(spans, pauses=(), *, min_gap: float = MIN_GAP) -> list[Cut]:
    """The idle spans between ``spans`` ((start, end) of everything drawn) long enough to cut.

    ``pauses``: times the run is known to have paused at; a cut holding one (or starting within
    a millisecond after it) is labelled a pause.
    """
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    busy = sum(end - start for start, end in merged)
    threshold = max(min_gap, busy * BUSY_SHARE)
    pauses = sorted(pauses)
    cuts = []
    for (_, a), (b, _) in zip(merged, merged[1:], strict=False):
        if b - a > threshold:
            j = bisect_right(pauses, b)
            paused = j > 0 and pauses[j - 1] >= a - 1e-3
            cuts.append(Cut(a, b, paused))
    # Past MAX_CUTS the bands would be too thin to see: the longest are cut, the others drawn to scale.
    return sorted(sorted(cuts, key=lambda c: c.length, reverse=True)[:MAX_CUTS])


class Scale:
    """Time to x over a plot ``x0 .. x0 + width`` showing ``t0 .. t1``, each cut a band of ``band`` px."""

    def __init__(self, t0: float, t1: float, cuts: list[Cut], x0: float, width: float):
        self.t0, self.cuts = t0, cuts
        self.band = min(GAP_W, MAX_CUTS_SHARE * width / len(cuts)) if cuts else 0.0
        self.shown = max(t1 - t0 - sum(c.length for c in cuts), 1e-3)  # seconds drawn to scale
        per_s = (width - self.band * len(cuts)) / self.shown
        self.points = [(t0, float(x0))]  # breakpoints (time, x) of a piecewise-linear map
        for c in cuts:
            x = self.points[-1][1] + (c.start - self.points[-1][0]) * per_s
            self.points += [(c.start, x), (c.end, x + self.band)]
        self.points.append((max(t1, self.points[-1][0]), float(x0 + width)))
        self.per_s = per_s
        self._times = [t for t, _ in self.points]  # for a binary search: a run with many pauses stays fast
        self._cut_xs = [self.x(c.start) for c in cuts]

    def x(self, t: float) -> float:
        """The x of time ``t`` (clamped to the plot)."""
        pts = self.points
        i = min(max(bisect_right(self._times, t) - 1, 0), len(pts) - 2)
        (ta, xa), (tb, xb) = pts[i], pts[i + 1]
        if tb <= ta:
            return xa
        return xa + (min(max(t, ta), tb) - ta) / (tb - ta) * (xb - xa)

    def length(self, duration: float) -> float:
        """The width of ``duration`` seconds of work (a bar never spans a cut: cuts lie between bars)."""
        return duration * self.per_s

    def next_cut_x(self, x: float) -> float:
        """The left edge of the first band right of ``x`` (inf when none): a label beside a bar stops there."""
        i = bisect_left(self._cut_xs, x - 1e-6)
        return self._cut_xs[i] if i < len(self._cut_xs) else float("inf")

    def segments(self) -> list[tuple[float, float]]:
        """The spans of time drawn to scale, between the cuts."""
        bounds = [self.t0] + [t for c in self.cuts for t in (c.start, c.end)] + [self.points[-1][0]]
        return list(zip(bounds[::2], bounds[1::2], strict=True))

    def data_map(self) -> str:
        """The breakpoints as ``t:x t:x ...`` (seconds, px) for a script placing a marker."""
        return " ".join(f"{t!r}:{x:.2f}" for t, x in self.points)


def band_svg(cut: Cut, scale: Scale, y_top: float, y_axis: float, char_w: float) -> str:
    """A cut drawn: a faint band between dashed edges, the axis broken at both edges, its length under it."""
    xa = scale.x(cut.start)
    xb = xa + scale.band
    word = "paused" if cut.paused else "idle"
    label = next(
        (t for t in (f"{word} {gap_text(cut.length)}", gap_text(cut.length)) if len(t) * char_w + 6 <= scale.band), ""
    )
    tip = (
        f"{word} {duration_text(cut.length)}: cut from the time axis, drawn {scale.band:.0f} px wide "
        f"(the bars either side are to scale)"
    )
    edges = "".join(
        f'<line x1="{x:.1f}" y1="{y_top}" x2="{x:.1f}" y2="{y_axis}" stroke="currentColor" stroke-opacity="0.45" '
        f'stroke-dasharray="3 3"/><line x1="{x - 3:.1f}" y1="{y_axis + 5}" x2="{x + 3:.1f}" y2="{y_axis - 5}" '
        f'stroke="currentColor" stroke-width="1.5"/>'
        for x in (xa, xb)
    )
    return (
        f'<g class="cut {word}"><title>{html.escape(tip)}</title>'
        f'<rect x="{xa:.1f}" y="{y_top}" width="{scale.band:.1f}" height="{y_axis - y_top}" '
        f'fill="currentColor" fill-opacity="0.07"/>{edges}'
        f'<text x="{(xa + xb) / 2:.1f}" y="{y_axis + 17}" text-anchor="middle" fill="currentColor" '
        f'font-style="italic">{html.escape(label)}</text></g>'
    )


def cuts_note(cuts: list[Cut]) -> str:
    """The line under a cut axis: how much time the bands stand for."""
    total = gap_text(sum(c.length for c in cuts))
    paused = sum(c.paused for c in cuts)
    what = "pause" if paused == len(cuts) else "idle time" if not paused else "pause and idle time"
    where = f"the {len(cuts)} shaded bands" if len(cuts) > 1 else "the shaded band"
    return f"time axis cut at {where}: {total} of {what} not drawn to scale"

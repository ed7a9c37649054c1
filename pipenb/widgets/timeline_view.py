"""``TimelineView``: a run's stages as bars over time, drawn live while it goes.

"Where does the time go?" is asked while a run is slow, not only in the
report afterwards. This view draws ``pipenb.timeline.timeline_svg`` (the
report's timeline: one row per stage, one bar per visit, steps inside) for
the run it follows: at most ``per_second`` times a second while it runs, only
when a stage or step ended since, and once more when it stops; a finished run
is drawn once. It follows the run through an owned ``RunFollower`` like the
other views. A hidden view (``active = False``: the dashboard's folded
section) draws nothing until it is shown.

The SVG is made in Python from escaped text, so the widget is a plain
``ipywidgets.HTML`` with no script of its own.
"""

from __future__ import annotations

import html
import itertools

import ipywidgets as widgets

from ..timeline import timeline_svg
from .follower import RunFollower

EMPTY = '<div class="pipenb-timeline-view pipenb-hint">no run to draw yet</div>'


class TimelineView(widgets.HTML):
    """The timeline of one run: ``attach(ctx)`` (with the dashboard's logs of it, or a log of its own)."""

    def __init__(self, ctx=None, *, width: int = 900, per_second: float = 10.0):
        super().__init__(EMPTY, layout=widgets.Layout(width="100%", overflow="auto"))
        self.add_class("pipenb-timeline-widget")
        self.width = width
        self.ctx = None
        self.logs: list = []  # the EventLogs of the followed run, oldest first (steps and unfinished stages)
        self._drawn = None  # (run id, records, events, status) last drawn
        self._active = True
        self.follower = RunFollower(self.redraw, self._changed, per_second=per_second)
        if ctx is not None:
            self.attach(ctx)

    @property
    def active(self) -> bool:
        """Whether the view draws (False while it is hidden: a folded section draws nothing)."""
        return self._active

    @active.setter
    def active(self, value: bool) -> None:
        self._active = bool(value)
        if self._active:
            self.redraw()

    def attach(self, ctx, logs: list | None = None) -> TimelineView:
        """Follow ``ctx``; ``logs``: EventLogs someone else keeps of this run (left open), else one of our own."""
        self.detach()
        self.ctx = ctx
        self.logs = list(logs) if logs is not None else [self.follower.open_log(ctx)]
        self._drawn = None
        self.follower.follow(ctx)
        return self

    def detach(self) -> None:
        """Stop following (what is drawn stays)."""
        self.follower.stop()
        self.ctx = None
        self.logs = []

    def _key(self):
        ctx = self.ctx
        return (ctx.run_id, len(ctx.history), sum(len(log) for log in self.logs), ctx.status)

    def _changed(self) -> bool:
        return self._active and self.ctx is not None and self._key() != self._drawn

    def redraw(self) -> None:
        """Draw the followed run now (nothing while inactive or when nothing changed)."""
        ctx = self.ctx
        if not self._active or ctx is None:
            return
        key = self._key()
        if key == self._drawn:
            return
        self._drawn = key
        events = itertools.chain.from_iterable(self.logs)
        # Scaled down to the output's width (the SVG has a viewBox), never wider than it.
        svg = timeline_svg(ctx.history.raw(), events, width=self.width).replace(
            "<svg ", '<svg style="max-width:100%;height:auto" ', 1)
        self.value = f'<div class="pipenb-timeline-view" title="run {html.escape(ctx.run_id)}">{svg}</div>'

    def folded(self, title: str) -> widgets.Accordion:
        """This view in a section folded under ``title``: it draws only while unfolded."""
        self.active = False
        section = widgets.Accordion(children=[self], selected_index=None,
                                    layout=widgets.Layout(width="auto", margin="0"))
        section.set_title(0, title)
        section.add_class("pipenb-timeline-section")
        section.observe(lambda change: setattr(self, "active", change["new"] == 0), names="selected_index")
        return section

    def svg(self) -> str:
        """The SVG drawn now ("" before any run)."""
        start = self.value.find("<svg")
        return self.value[start : self.value.rfind("</svg>") + 6] if start >= 0 else ""

    def close(self) -> None:
        """Let go of the run and close the widget."""
        self.detach()
        super().close()

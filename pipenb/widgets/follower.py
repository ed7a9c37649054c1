"""``RunFollower``: the part of a view that follows a run, owned by the view.

Every live view (the stage graph, the event table, the run panel, the
dashboard) needs the same mechanics: hear when the followed run starts and
when it stops (pauses, ends, fails), redraw at most N times a second while
it goes and once more when it stops, and let go cleanly. A view owns one
``RunFollower`` and hands it callbacks; the view keeps its own ``ctx`` and
says what to do at each edge, so reading a view never needs a base class's
hooks. One rule for ``EventLog``s: the follower closes the logs opened
through it (``open_log``) when it stops; logs handed to a view stay open for
whoever keeps them (the dashboard keeps one per run it lists).
"""

from __future__ import annotations

from typing import Callable

from pipenb.core.events import ROOT_EDGES
from pipenb.core.lifecycle import RUNNING

from .throttle import Ticker

Edge = Callable[[object], None]


def _ignore(event) -> None:
    return None


class RunFollower:
    """Follows one run at a time for a view.

    ``redraw()`` draws the view; ``changed()`` says whether a tick has anything
    to draw. At the run's root edges: ``started(event)`` when it starts or
    continues, ``stopped(event)`` when it pauses, ends or fails (before the
    closing redraw), ``settled(event)`` after the closing redraw was asked for
    (snapshots refresh there; a view may let the run go there).
    """

    def __init__(self, redraw: Callable[[], None], changed: Callable[[], bool] | None = None, *,
                 per_second: float = 10.0, started: Edge = _ignore, stopped: Edge = _ignore,
                 settled: Edge = _ignore):
        self.ticker = Ticker(redraw, changed or (lambda: True), per_second)
        self._started, self._stopped, self._settled = started, stopped, settled
        self._listening: list = []
        self._own_logs: list = []

    def open_log(self, ctx):
        """An ``EventLog`` of ``ctx``, closed when this follower stops."""
        log = ctx.record()
        self._own_logs.append(log)
        return log

    def follow(self, ctx, setup: Callable[[], None] | None = None) -> None:
        """Hear ``ctx``'s root edges, run ``setup()``, then tick while it runs and draw it now
        (``stop()`` first whatever was followed before).

        Listeners hear an edge in the order they subscribed: a view whose parts
        follow the same run attaches them in ``setup``, so it hears each edge
        before they do (the dashboard's snapshot update goes out before its
        graph's closing redraw, so the browser redraws the output before it
        shows the final statuses, not after).
        """
        self._listening = [ctx.on(name, self._on_edge) for name in ROOT_EDGES]
        if setup is not None:
            setup()
        if ctx.status == RUNNING:
            self.ticker.start()
        self.ticker.flush_now()

    def stop(self) -> None:
        """Hear nothing more, tick no more, close the logs opened here."""
        for off in self._listening:
            off()
        self._listening = []
        self.ticker.stop()
        for log in self._own_logs:
            log.close()
        self._own_logs = []

    def _on_edge(self, event) -> None:
        if not event.is_root:
            return
        if event.name == "pipeline:start":
            self._started(event)
            self.ticker.start()
            return
        self.ticker.stop()
        self._stopped(event)
        self.ticker.flush_now()  # a run stopped: show it without waiting for a tick
        self._settled(event)

    @property
    def redraws(self) -> int:
        """How many times the view was redrawn through this follower (tests and bench read it)."""
        return self.ticker.count

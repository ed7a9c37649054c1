"""``RunFollower``: what every widget that follows a run shares.

Attach to a run, hear when it starts and when it stops (pauses, ends,
fails), redraw at most ten times a second while it goes and once more when it
stops, and detach cleanly. One rule for ``EventLog``s: a widget closes the
logs it opened itself (``open_log``); logs handed to it stay open for whoever
keeps them (the dashboard keeps one per run it lists).
"""

from __future__ import annotations

from pipenb.core.events import ROOT_EDGES
from pipenb.core.lifecycle import RUNNING

from .throttle import Ticker


class RunFollower:
    """Mixin: call ``_follow_init()`` in ``__init__``; override ``_redraw`` and
    ``_changed``, and the hooks ``_attached``, ``_run_started``, ``_run_stopped``,
    ``_run_settled``."""

    def _follow_init(self, per_second: float = 10.0) -> None:
        self.ctx = None
        self._listening: list = []
        self._own_logs: list = []
        self._ticker = Ticker(self._redraw, self._changed, per_second)

    # -- for subclasses ---------------------------------------------------------
    def _redraw(self) -> None:
        raise NotImplementedError

    def _changed(self) -> bool:
        return True

    def _attached(self, ctx) -> None:
        """``ctx`` was just attached (before the first redraw)."""

    def _detached(self) -> None:
        """The run was just let go (its listeners and own logs are gone)."""

    def _run_started(self, event) -> None:
        """The followed run started or continued (its ``pipeline:start``)."""

    def _run_stopped(self, event) -> None:
        """The followed run paused, finished or failed (before the closing redraw)."""

    def _run_settled(self, event) -> None:
        """The followed run paused, finished or failed, and the closing redraw was asked for
        (snapshots refresh here; a follower may let the run go here)."""

    # -- the shared mechanics ---------------------------------------------------
    def open_log(self, ctx):
        """An ``EventLog`` of ``ctx`` that this widget owns and closes on detach."""
        log = ctx.record()
        self._own_logs.append(log)
        return log

    def attach(self, ctx):
        """Follow ``ctx`` (after letting go of any run followed before)."""
        self.detach()
        self.ctx = ctx
        self._listening = [ctx.on(name, self._on_edge) for name in ROOT_EDGES]
        self._attached(ctx)
        if ctx.status == RUNNING:
            self._ticker.start()
        self._ticker.flush_now()
        return self

    def detach(self) -> None:
        for off in self._listening:
            off()
        self._listening = []
        self._ticker.stop()
        for log in self._own_logs:
            log.close()
        self._own_logs = []
        if self.ctx is not None:
            self._detached()
        self.ctx = None

    def _on_edge(self, event) -> None:
        if not event.is_root:
            return
        if event.name == "pipeline:start":
            self._run_started(event)
            self._ticker.start()
            return
        self._ticker.stop()
        self._run_stopped(event)
        self._ticker.flush_now()  # a run stopped: show it without waiting for a tick
        self._run_settled(event)

    def redraw(self) -> None:
        """Draw what the run shows now, without waiting for the next tick."""
        self._redraw()

    @property
    def redraws(self) -> int:
        return self._ticker.count

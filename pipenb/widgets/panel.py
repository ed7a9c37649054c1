"""``RunPanel``: the compact live view a ``RunContext`` shows when it is a cell's result.

One live panel per context: showing the same context again shows the same
panel (``RunPanel.for_context``), so displaying a run many times adds no
widget and no listener. A panel lets its run go (listeners removed, its
``EventLog`` closed) once the run finished for good (completed or
terminated); it keeps showing the last state. ``close()`` closes the panel
and every widget in it.
"""

from __future__ import annotations

import html
import weakref

import ipywidgets as widgets

from pipenb.display import short_id
from pipenb.core.lifecycle import is_finished

from ..display import run_context_html
from .follower import RunFollower
from .snapshot import Snapshot, close_tree
from .stage_graph import StageGraph

_PANELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # RunContext -> its live RunPanel


class RunPanel(Snapshot, widgets.VBox):
    """A line (run, status, position, state keys) over the run's ``StageGraph``; follows its one run
    through an owned ``RunFollower`` until the run finished for good."""

    def __init__(self, ctx):
        self.line = widgets.HTML()
        self.line.add_class("pipenb-run-line")
        self.graph = StageGraph(ctx.pipeline, ctx)
        super().__init__([self.line, self.graph])
        self.add_class("pipenb-run-panel")
        self.follower = RunFollower(self.redraw, settled=self._run_settled)
        self._last_html = ""
        self._last_text = f"RunPanel of run {ctx.run_id}"
        self._closed = False
        self.ctx = ctx
        self.follower.follow(ctx)
        if is_finished(ctx.status):
            self._let_go()

    @classmethod
    def for_context(cls, ctx) -> RunPanel:
        """The context's live panel: the one shown before if it is still open, else a new one."""
        panel = _PANELS.get(ctx)
        if panel is None or panel.closed:
            panel = _PANELS[ctx] = cls(ctx)
        return panel

    def redraw(self) -> None:
        """Draw the run's line as it is now."""
        ctx = self.ctx
        if ctx is None:
            return
        self.line.value = self._line_html(ctx)

    @staticmethod
    def _line_html(ctx) -> str:
        keys = ", ".join(map(str, list(ctx.state)[:8]))
        return (
            f"<b>{html.escape(ctx.pipeline_id)}</b> run <code title='{html.escape(ctx.run_id)}'>"
            f"{html.escape(short_id(ctx.run_id))}</code> <b>{html.escape(ctx.status)}</b> at "
            f"<code>{html.escape(ctx.position)}</code> · state keys: {html.escape(keys) or '<i>none</i>'}"
        )

    # -- the static snapshot (SPEC 12) ------------------------------------------
    def snapshot_text(self) -> str:
        ctx = self.ctx
        if ctx is None:
            return self._last_text
        return f"RunContext {ctx.pipeline_id!r} run {short_id(ctx.run_id)}: {ctx.status} at {ctx.position}"

    def snapshot_html(self) -> str:
        ctx = self.ctx
        if ctx is None:  # let go of its run: the last state it saw
            return self._last_html
        return (f'<div class="pipenb-snapshot pipenb-snapshot-panel"><div>{self._line_html(ctx)}</div>'
                f"{self.graph.snapshot_svg()}{run_context_html(ctx)}</div>")

    # -- letting go ---------------------------------------------------------------
    def _run_settled(self, event) -> None:
        self.refresh_snapshot()  # the snapshot of the stopped run
        if self.ctx is not None and is_finished(self.ctx.status):
            self._let_go()

    def _let_go(self) -> None:
        """The run finished for good: draw it once more, then drop its listeners and log."""
        ctx = self.ctx
        if ctx is None:
            return
        self.redraw()
        self.graph.redraw()
        self._last_html, self._last_text = self.snapshot_html(), self.snapshot_text()
        self.detach()

    @property
    def closed(self) -> bool:
        """True once ``close()`` closed the panel and its widgets."""
        return self._closed

    def detach(self) -> None:
        """Let go of the run (the panel and its graph): listeners and logs."""
        self.follower.stop()
        self.graph.detach()
        self.ctx = None

    def close(self) -> None:
        self._closed = True
        self.detach()
        close_tree(self, super().close)

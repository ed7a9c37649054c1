"""``RunPanel``: the compact live view a ``RunContext`` shows when it is a cell's result."""

from __future__ import annotations

import html

import ipywidgets as widgets

from pipenb.core.ids import short_id

from .follower import RunFollower
from .stage_graph import StageGraph


class RunPanel(RunFollower, widgets.VBox):
    def __init__(self, ctx):
        self.line = widgets.HTML()
        self.line.add_class("pipenb-run-line")
        self.graph = StageGraph(ctx.pipeline, ctx)
        super().__init__([self.line, self.graph])
        self.add_class("pipenb-run-panel")
        self._follow_init()
        self.attach(ctx)

    def _redraw(self) -> None:
        ctx = self.ctx
        if ctx is None:
            return
        keys = ", ".join(map(str, list(ctx.state)[:8]))
        self.line.value = (
            f"<b>{html.escape(ctx.pipeline_id)}</b> run <code title='{html.escape(ctx.run_id)}'>"
            f"{html.escape(short_id(ctx.run_id))}</code> <b>{html.escape(ctx.status)}</b> at "
            f"<code>{html.escape(ctx.position)}</code> · state keys: {html.escape(keys) or '<i>none</i>'}"
        )

    def close(self) -> None:
        self.detach()
        self.graph.detach()
        self.graph.close()
        super().close()

"""``RunPanel``: the compact live view a ``RunContext`` shows when it is a cell's result."""

from __future__ import annotations

import html

import ipywidgets as widgets

from .stage_graph import StageGraph


class RunPanel(widgets.VBox):
    def __init__(self, ctx):
        self.ctx = ctx
        self.line = widgets.HTML()
        self.line.add_class("pipenb-run-line")
        self.graph = StageGraph(ctx.pipeline, ctx)
        for name in ("pipeline:start", "pipeline:paused", "pipeline:success", "pipeline:failure"):
            ctx.on(name, lambda event: self._update() if len(event.path) == 1 else None)
        super().__init__([self.line, self.graph])
        self.add_class("pipenb-run-panel")
        self._update()

    def _update(self) -> None:
        ctx = self.ctx
        keys = ", ".join(map(str, list(ctx.state)[:8]))
        self.line.value = (
            f"<b>{html.escape(ctx.pipeline_id)}</b> run <code>{html.escape(ctx.run_id)}</code> "
            f"<b>{html.escape(ctx.status)}</b> at <code>{html.escape(ctx.position)}</code>"
            f" · state keys: {html.escape(keys) or '<i>none</i>'}"
        )

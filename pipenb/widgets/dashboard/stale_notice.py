"""``StaleNotice``: the dashboard's line about code that changed, with "re-run from the first changed stage".

After a fix, a person wants the run again from the first stage whose code
changed, with the work before it kept (SPEC 14). The notice compares the
picked run's history with the dashboard factory's definition (the code the
dashboard runs, SPEC 9): when records ran other code (``History.stale``) it
names their stages and shows the button, which forks the run at the first
such record and starts the fork with the new code (the dashboard does the
fork, through its factory). It also says when the pipeline was redefined in a
later cell, so this dashboard's factory is the older code.

Comparing fingerprints walks the history: it is done at most once a second
and never while the run goes (its records are the code running now).
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from pipenb.display import short_id
from pipenb.core.lifecycle import RUNNING
from pipenb.core.lookback import stage_code

from ..graph_render import ran_older_code


def _codes(pipe, prefix: str = "") -> dict:
    """``{stage address: fingerprint of its code}`` of every stage, sub-pipelines' included."""
    out = {}
    for stage in pipe.stages:
        address = prefix + stage.id
        out[address] = stage_code(pipe, stage)
        if stage.pipeline is not None:
            out.update(_codes(stage.pipeline, address + "/"))
    return out


def _redefined_html(pipeline) -> str:
    """The "redefined in a later cell" notice: only when the newer definition runs other code (a cell run
    again as it was, or a notebook declaring the same pipeline twice, changes nothing)."""
    newer = pipeline.newer
    if newer is None or _codes(newer) == _codes(pipeline):
        return ""
    return (
        f"⚠ pipeline <code>{html.escape(pipeline.id)}</code> was redefined in a later cell; this dashboard "
        f"runs the definition it was built with. Build a new factory and dashboard to run the new code."
    )


class StaleNotice(widgets.HBox):
    """The notice and its button (shown only when the picked run has stale records); ``factory``: the
    dashboard's, whose pipeline is the new code."""

    def __init__(self, factory):
        self.factory = factory
        self.text = widgets.HTML("")
        self.text.add_class("pipenb-stale-text")
        self.button = widgets.Button(
            description="Re-run from first changed stage",
            icon="refresh",
            layout=widgets.Layout(width="auto", display="none"),
        )
        self.button.add_class("pipenb-btn-rerun")
        self.first = None  # (run id, index, record) of the first stale record of the picked run, or None
        self._checked = None  # (run id, history length) last compared
        super().__init__(
            [self.text, self.button], layout=widgets.Layout(width="100%", flex_flow="row wrap", align_items="center")
        )
        self.add_class("pipenb-stale-box")
        self.add_class("pipenb-stale")

    @property
    def value(self) -> str:
        """The notice's HTML ("" when there is nothing to say)."""
        return self.text.value

    def refresh(self, ctx) -> None:
        """Compare ``ctx``'s records with the factory's code (not while it runs) and redraw."""
        if ctx is None:
            self.first = self._checked = None
        elif ctx.status != RUNNING:
            h = ctx.history
            key = (ctx.run_id, len(h))
            if key != self._checked or self.first is not None:  # a stale run: the code may be fixed back
                self._checked = key
                self.first = self._first_stale(ctx, h)
        self._draw(ctx)

    def _first_stale(self, ctx, h):
        try:
            stale = ran_older_code(h, self.factory.pipeline)
        except Exception:  # a definition it cannot compare with: no offer rather than a broken dashboard
            return None
        if not stale:
            return None
        seqs = [k.seq for k in h.raw()]
        record = stale[0]
        names = sorted({r.address for r in stale})
        return ctx.run_id, seqs.index(record.seq), record, names

    def _draw(self, ctx) -> None:
        parts = [_redefined_html(self.factory.pipeline)]
        first = self.first if ctx is not None and self.first is not None and self.first[0] == ctx.run_id else None
        if first is not None:
            _, _, record, names = first
            stages = ", ".join(f"<code>{html.escape(n)}</code>" for n in names)
            parts.append(
                f"⚠ run <code>{html.escape(short_id(ctx.run_id))}</code> ran older code in {stages}; "
                f"the first changed stage is #{record.seq} <code>{html.escape(record.address)}</code>."
            )
        text = " ".join(p for p in parts if p)
        if self.text.value != text:
            self.text.value = text
        display = None if first is not None else "none"
        if self.button.layout.display != display:
            self.button.layout.display = display
        self.button.disabled = first is None

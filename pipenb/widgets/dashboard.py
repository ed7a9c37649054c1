"""``RunDashboard``: graph, events, state and the buttons to drive runs of one factory.

The notebook's one place to watch and debug a pipeline's runs: it assembles
the parts (the stage graph and event table following the shown run, the
tabs State / History / Checkpoint / Error, the toolbar, the runs list) and
keeps them in step with the shown run: at most four redraws a second while
it goes, one when it stops, and a 1 Hz clock for what changes without an
event (time left in memory, the store's runs, a redefined pipeline). What the
buttons do to runs is ``RunControl`` (run_control.py).
"""

from __future__ import annotations

import asyncio
import html
import pathlib
import threading
import weakref

import ipywidgets as widgets

from pipenb.core.ids import short_id
from pipenb.core.lifecycle import RUNNING
from pipenb.core.registry import PipelineRegistry

from .event_table import EventTable
from .follower import RunFollower
from .history_view import HistoryView
from .run_errors import RunErrors
from .run_control import RunControl
from .runs_list import RunsList
from .snapshot import Snapshot, close_tree
from .stage_graph import StageGraph
from .state_editor import StateEditor
from .toolbar import Toolbar
from ..display import checkpoint_html, state_html, time_left

HERE = pathlib.Path(__file__).parent
TABS = ("State", "History", "Checkpoint", "Error")


def _style() -> widgets.HTML:
    """The dashboard's CSS (dashboard.css) as a ``<style>`` block inside the widget (no extension needed)."""
    css = (HERE / "dashboard.css").read_text()
    style = widgets.HTML(f"<style>{css}</style>", layout=widgets.Layout(display="none"))
    style.add_class("pipenb-style")
    return style


class RunDashboard(RunControl, Snapshot, RunFollower, widgets.VBox):
    """The runs of one factory's pipeline: pick one, see it (graph, events, state, history, checkpoint,
    error), drive it with the buttons. Its parts live in their own modules: ``Toolbar`` (which button
    applies when), ``RunsList`` (the runs table, registry and store), ``HistoryView``, ``StateEditor``
    and ``RunErrors``; the dashboard assembles them and does what they ask (on the kernel's loop)."""

    def __init__(self, factory, registry: PipelineRegistry | None = None, max_rows: int = 1000):
        self.factory = factory
        if registry is None:
            registry = factory.registry if factory.registry is not None else PipelineRegistry.default
        self.registry = registry
        self._follow_init(per_second=4)  # header and state while a run goes; graph and table tick on their own
        self._shown = None  # (store snapshot, position, status) last drawn
        self._history: dict[str, tuple] = {}  # run id -> (weakref to its context, its EventLogs)
        self._closed = False
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._thread = threading.get_ident()
        self.graph = StageGraph(factory.pipeline)
        self.table = EventTable(max_rows=max_rows)
        self.title = widgets.HTML(f"<b>{html.escape(factory.pipeline.id)}</b>")
        self.status = widgets.HTML("no run yet: press Run or Step")
        self.status.add_class("pipenb-status")
        self.stale = widgets.HTML("")
        self.stale.add_class("pipenb-stale")
        self.toolbar = Toolbar(self._clicked)
        self.buttons, self.message = self.toolbar.buttons, self.toolbar.message
        self.run_errors = RunErrors()
        self.error_banner, self.error_view = self.run_errors.banner, self.run_errors.view
        # State: the run's state now, and a small editor for a run that waits (paused, failed, ...).
        self.state_view = widgets.HTML(state_html({}))
        self.state_view.add_class("pipenb-state")
        self.editor = StateEditor(lambda: self.ctx, self._refresh_all, self._call)
        self.edit_key, self.edit_value = self.editor.key, self.editor.value
        self.edit_apply, self.edit_message = self.editor.apply_button, self.editor.message
        # History: one entry per record; picking one shows the state there and what it changed.
        self.history_view = HistoryView(self._call)
        self.history, self.record_view = self.history_view.entries, self.history_view.record_view
        self.fork_button = self.history_view.fork_button
        self.fork_button.on_click(lambda _b: self._call(self._fork_picked))
        self.checkpoint_view = widgets.HTML(checkpoint_html(None))
        self.checkpoint_view.add_class("pipenb-checkpoint")
        self.tabs = widgets.Tab(children=[
            widgets.VBox([self.state_view, self.editor]),
            self.history_view,
            widgets.VBox([self.checkpoint_view]),
            widgets.VBox([self.error_view]),
        ], layout=widgets.Layout(width="100%"))
        self.tabs.titles = TABS
        self.tabs.add_class("pipenb-tabs")
        # The runs of this pipeline, the registry's and the store's: a click on a row picks it.
        self.runs_list = RunsList(factory, registry, self._call, self.pick, self._run_action)
        self.runs = self.runs_list.table
        self._off_registry = self.registry.on_change(lambda run_id: self._call(self._registry_changed, run_id))
        header = widgets.HBox([self.title, self.status], layout=widgets.Layout(width="100%", flex_flow="row wrap"))
        header.add_class("pipenb-header")
        # The graph takes its drawing's width (at most half), the tabs the rest: nothing jumps as the state fills.
        graph_box = widgets.Box([self.graph], layout=widgets.Layout(flex="0 1 auto", min_width="200px",
                                                                    max_width="50%", overflow="auto"))
        graph_box.add_class("pipenb-graph-box")
        side = widgets.Box([self.tabs], layout=widgets.Layout(flex="1 1 400px", min_width="340px", max_width="100%"))
        side.add_class("pipenb-side")
        main = widgets.HBox([graph_box, side], layout=widgets.Layout(width="100%", flex_flow="row wrap"))
        main.add_class("pipenb-main")
        runs_title = widgets.HTML('<div class="pipenb-view-title"><b>runs</b> '
                                  '<span class="pipenb-hint">(click a row to show it)</span></div>')
        super().__init__([_style(), header, self.toolbar, self.stale, self.error_banner, main, self.table,
                          runs_title, self.runs], layout=widgets.Layout(width="100%", max_width="100%"))
        self.add_class("pipenb-dashboard")
        self._refresh_buttons()
        self._refresh_runs(read_store=True)
        self._clock = self._loop.create_task(self._tick()) if self._loop is not None else None

    def _let_go(self, run_id: str) -> None:
        """Show no run (the shown one, ``run_id``, was discarded)."""
        self.detach()
        self.graph.detach()
        self.graph.status, self.graph.progress, self.graph.caption = {}, {}, ""
        self.table.detach()
        self.table.clear()
        self.state_view.value = state_html({})
        self.checkpoint_view.value = checkpoint_html(None)
        self.run_errors.clear()
        self.history_view.follow(None)
        self.status.value = (f"run <code>{html.escape(short_id(run_id))}</code> discarded: press Run, "
                             f"or pick another run below")

    # -- the state editor and the history --------------------------------------------
    def edit_state(self, key: str, text: str) -> bool:
        """Set ``key`` to the Python literal ``text`` (``ast.literal_eval``, never eval) in the shown run.

        What the Apply button does; True when applied. A value that is not a
        literal, or a run that cannot be edited (running, finished), applies
        nothing and says why.
        """
        return self.editor.edit(key, text)

    def pick_record(self, seq: int | None) -> None:
        """Show history record ``seq`` (as a click on its entry does)."""
        self.history_view.pick(seq)

    # -- showing a run -----------------------------------------------------------
    def show(self, ctx) -> None:
        """Make ``ctx`` the dashboard's run: graph, events, state, history, checkpoint, error, buttons."""
        if self._closed:  # a run started or picked before close() comes back after it: stay let go
            return
        self.attach(ctx)

    def _attached(self, ctx) -> None:
        self.runs_list.discarded.discard(ctx.run_id)
        self.graph.attach(ctx)  # colours the stages the run already passed (its history, rebuilt from a store too)
        self.table.attach(ctx, history=self._history_for(ctx))  # one run's events; .dataframe is that run's
        self._shown = None
        self.history_view.follow(ctx)
        self.edit_message.value = ""
        self.message.value = ""  # what was said was about the run shown before

    def _changed(self) -> bool:
        ctx = self.ctx
        return ctx is not None and self._shown != (ctx.store.get(), ctx.position, ctx.status)

    def _redraw(self) -> None:
        self._refresh_all()

    def _run_started(self, event) -> None:
        self._refresh_all()

    def _run_stopped(self, event) -> None:
        if event.name == "pipeline:failure" and self.ctx is not None:
            self.run_errors.keep(self.ctx.run_id, event.error)

    def _history_for(self, ctx) -> list:
        """The EventLogs this dashboard keeps for ``ctx``'s run, the last one recording ``ctx``.

        Kept per run while the runs list shows it, so picking a run again shows
        the events seen so far, including those of an earlier context of the
        same run (before its expiry and rebuild).
        """
        known = self._history.get(ctx.run_id)
        if known is not None and known[0]() is ctx:
            return known[1]
        logs = known[1] if known is not None else []
        for log in logs:
            log.close()
        logs = logs + [ctx.record()]
        self._history[ctx.run_id] = (weakref.ref(ctx), logs)
        return logs

    def _forget_history(self, keep: set) -> None:
        for run_id in [r for r in self._history if r not in keep]:
            for log in self._history.pop(run_id)[1]:
                log.close()

    def _refresh_all(self, read_store: bool = False) -> None:
        ctx = self.ctx
        if ctx is not None:
            self._shown = (ctx.store.get(), ctx.position, ctx.status)
            rec = next((r for r in self.registry.runs() if r.run_id == ctx.run_id), None)
            left = time_left(rec.time_left) if rec is not None and rec.expires_at is not None else ""
            self.status.value = (
                f"run <code title='{html.escape(ctx.run_id)}'>{html.escape(short_id(ctx.run_id))}</code> "
                f"<b class='pipenb-run-status pipenb-run-{html.escape(ctx.status)}'>"
                f"{html.escape(ctx.status)}</b> at <code>{html.escape(ctx.position)}</code>"
                + (f" <span class='pipenb-hint'>· {html.escape(left)} in memory</span>" if left else "")
            )
            self.state_view.value = state_html(ctx.state)
            self.checkpoint_view.value = checkpoint_html(ctx.checkpoint)
            self.run_errors.refresh(ctx)
            self.history_view.refresh()
            self.editor.show_for(ctx.status)
            if ctx.status != RUNNING and self.message.value.startswith("pausing"):
                self.message.value = ""
        self._refresh_buttons()
        self._refresh_runs(read_store)

    def _registry_changed(self, run_id: str) -> None:
        # An expiry exports the shown run's artifacts into its checkpoint: show that too.
        if self.ctx is not None and run_id in (self.ctx.run_id, "*"):
            self._refresh_all(read_store=True)
        else:
            self._refresh_runs(read_store=True)

    def _refresh_buttons(self) -> None:
        self.toolbar.refresh(self.ctx.status if self.ctx is not None else None)
        self._refresh_stale()

    def _refresh_stale(self) -> None:
        """Say so when the pipeline was redefined in a later cell (a property: cheap on every tick)."""
        stale = ""
        if self.factory.pipeline.superseded:
            stale = (f"⚠ pipeline <code>{html.escape(self.factory.pipeline.id)}</code> was redefined in a later "
                     f"cell; this dashboard runs the definition it was built with. Build a new factory and "
                     f"dashboard to run the new code.")
        if self.stale.value != stale:
            self.stale.value = stale

    def _refresh_runs(self, read_store: bool = False) -> None:
        """Redraw the runs list (``read_store``: the store's runs too, when last read about a second ago)."""
        self._forget_history(self.runs_list.refresh(self.ctx, read_store))

    def run_row(self, run_id: str) -> str:
        """The runs list's row of ``run_id`` as one line of text ("" when it is not listed)."""
        return self.runs_list.row_text(run_id)

    async def _tick(self) -> None:
        """Once a second: the store's runs, the time left of held runs, the "redefined" notice."""
        while not self._closed:
            await asyncio.sleep(1.0)
            self._refresh_stale()
            waiting = self.ctx is not None and self.ctx.status != RUNNING
            if waiting and any(r.expires_at is not None for r in self.registry.runs()):
                self._refresh_all(read_store=True)
            else:
                self._refresh_runs(read_store=True)

    # -- the static snapshot (SPEC 12) ------------------------------------------
    def snapshot_text(self) -> str:
        ctx = self.ctx
        where = f": run {short_id(ctx.run_id)} {ctx.status} at {ctx.position}" if ctx is not None else ""
        return f"RunDashboard of pipeline {self.factory.pipeline.id!r}{where}"

    def snapshot_html(self) -> str:
        """Status line, graph, state, checkpoint and the last events, as the run is now."""
        ctx = self.ctx
        if ctx is None:
            status = html.escape("no run yet")
        else:
            status = (f"run <code>{html.escape(ctx.run_id)}</code> <b>{html.escape(ctx.status)}</b> at "
                      f"<code>{html.escape(ctx.position)}</code>")
        state = state_html(ctx.state if ctx is not None else {})
        cp = checkpoint_html(ctx.checkpoint if ctx is not None else None)
        return (f'<div class="pipenb-snapshot pipenb-snapshot-dashboard">'
                f"<div><b>{html.escape(self.factory.pipeline.id)}</b> {status}</div>"
                f'<div style="display:flex;gap:12px;align-items:flex-start"><div>{self.graph.snapshot_svg()}</div>'
                f"<div>{state}{cp}</div></div>{self.table.snapshot_html()}</div>")

    def close(self) -> None:
        """Let go of the run and the registry, and close every widget the dashboard made."""
        self._closed = True
        self._off_registry()
        if self._clock is not None:
            self._clock.cancel()
        self.detach()
        self.graph.detach()
        self.table.detach()
        self._forget_history(set())
        close_tree(self, super().close)

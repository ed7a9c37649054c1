"""``RunDashboard``: graph, events, state and the buttons to drive runs of one factory.

The notebook's one place to watch and debug a pipeline's runs. It is a
``VBox`` that owns its parts and wires them together; none of them is a base
class, so following ``show(ctx)`` means reading this file:

- ``control`` (``RunControl``, run_control.py): what the buttons and rows do
  to runs, and on which thread; it reaches the dashboard only through a
  ``Screen`` of callbacks;
- ``follower`` (``RunFollower``, follower.py): hears the shown run start and
  stop and redraws the header, state and lists at most four times a second
  while it goes, once when it stops (the graph and table follow on their own);
- the views: ``graph`` (``StageGraph``), ``table`` (``EventTable``),
  ``buttons`` (toolbar.py), ``history`` (``HistoryView``), ``editor``
  (``StateEditor``), ``runs`` (``RunsList``: finished runs stay until
  removed), ``timeline`` (``TimelineView``, folded), ``stale``
  (``StaleNotice``: re-run from the first changed stage), ``kernel_watch``
  (says so when the kernel is gone), and the error banner and tab (``RunErrors``);
- a 1 Hz clock for what changes without an event (time left in memory, the
  store's runs, a redefined pipeline).
"""

from __future__ import annotations

import asyncio
import html
import pathlib
import weakref

import ipywidgets as widgets

from pipenb.display import short_id
from pipenb.core.lifecycle import RUNNING, is_finished
from pipenb.core.registry import PipelineRegistry

from ..event_table import EventTable
from ..follower import RunFollower
from ..snapshot import Snapshot, close_tree
from ..stage_graph import StageGraph
from ..timeline_view import EMPTY as TIMELINE_EMPTY, TimelineView
from ...display import checkpoint_html, error_html, state_html, time_left
from .history_view import HistoryView, last_writers
from .replay_slot import ReplaySlot
from .kernel_watch import KernelWatch
from .run_control import LoopCall, RunControl, Screen
from .run_errors import EMPTY, RunErrors
from .runs_list import GONE, GONE_NOTE, RunsList, runs_title
from .stale_notice import StaleNotice
from .state_editor import StateEditor
from .toolbar import message_html, refresh_buttons, run_buttons

HERE = pathlib.Path(__file__).parent
TABS = ("State", "History", "Checkpoint", "Error")


def _style() -> widgets.HTML:
    """The dashboard's CSS (dashboard.css) as a ``<style>`` block inside the widget (no extension needed)."""
    css = (HERE / "dashboard.css").read_text()
    style = widgets.HTML(f"<style>{css}</style>", layout=widgets.Layout(display="none"))
    style.add_class("pipenb-style")
    return style


def _html(value: str, css_class: str) -> widgets.HTML:
    out = widgets.HTML(value)
    out.add_class(css_class)
    return out


def _box(children, css_class: str, cls=widgets.HBox, **layout) -> widgets.Box:
    box = cls(children, layout=widgets.Layout(**layout))
    box.add_class(css_class)
    return box


class RunDashboard(Snapshot, widgets.VBox):
    """The runs of one factory's pipeline: pick one, see it (graph, events, state, history, checkpoint,
    error), drive it with the buttons."""

    def __init__(self, factory, registry: PipelineRegistry | None = None, max_rows: int = 1000):
        self.factory = factory
        if registry is None:
            registry = factory.registry if factory.registry is not None else PipelineRegistry.default
        self.registry = registry
        self.ctx = None  # the shown run
        self._shown = None  # (store snapshot, position, status) last drawn
        self._logs: dict[str, tuple] = {}  # run id -> (weakref to its context, its EventLogs)
        self._kept: dict[str, object] = {}  # finished runs shown here: held so they can be opened again, until removed
        self._closed = False
        self._call = LoopCall()
        self.control = RunControl(factory, registry, self._call, Screen(
            shown=lambda: self.ctx, show=self.show, let_go=self._let_go, redraw=self.refresh, say=self._say,
            failed=self._failed, discarded=self._discarded, replay=lambda ctx, other=None: self.replay_slot.show(ctx, other)))
        # The header and state while a run goes; the graph and table tick on their own.
        self.follower = RunFollower(self.refresh, self._changed, per_second=4, started=lambda event: self.refresh(),
                                    stopped=self._run_stopped, settled=lambda event: self.refresh_snapshot())
        self._make_views(max_rows)
        super().__init__(self._layout(), layout=widgets.Layout(width="100%", max_width="100%"))
        self.add_class("pipenb-dashboard")
        self._off_registry = registry.on_change(lambda run_id: self._call(self._registry_changed, run_id))
        self._refresh_buttons()
        self._refresh_runs(read_store=True)
        loop = self._call.loop
        self._clock = loop.create_task(self._tick()) if loop is not None else None

    def _make_views(self, max_rows: int) -> None:
        self.graph = StageGraph(self.factory.pipeline)
        self.table = EventTable(max_rows=max_rows)
        self.title = widgets.HTML(f"<b>{html.escape(self.factory.pipeline.id)}</b>")
        self.status = _html("no run yet: press Run or Step", "pipenb-status")
        self.stale = StaleNotice(self.factory)  # code changed since: "re-run from the first changed stage"
        self.stale.button.on_click(lambda _b: self.rerun_stale())
        self.buttons = run_buttons(self.control.clicked)
        self.message = _html("", "pipenb-message")  # where the buttons answer
        self.run_errors = RunErrors()
        self.error_banner = _html("", "pipenb-error")
        self.error_view = _html(error_html(None), "pipenb-error-tab")
        self.state_view = _html(state_html({}), "pipenb-state")
        self.editor = StateEditor(lambda: self.ctx, self.refresh, self._call)
        self.history = HistoryView(self._call)  # one entry per record; picking one shows its state and diff
        self.history.fork_button.on_click(lambda _b: self.fork_here())
        self.checkpoint_view = _html(checkpoint_html(None), "pipenb-checkpoint")
        self.timeline = TimelineView()  # where the time goes, live: folded at first (folded, it draws nothing)
        self.timeline_section = self.timeline.folded("timeline: where the time goes")
        self.tabs = widgets.Tab(children=[
            widgets.VBox([self.state_view, self.editor]),
            self.history,
            widgets.VBox([self.checkpoint_view]),
            widgets.VBox([self.error_view]),
        ], layout=widgets.Layout(width="100%"))
        self.tabs.titles = TABS
        self.tabs.add_class("pipenb-tabs")
        # The runs of this pipeline, the registry's and the store's: a click on a row picks it.
        self.runs = RunsList(self.factory, self.registry, self._call, self.pick, self.control.row_action)
        self.replay_slot = ReplaySlot(lambda run_id: [e for log in self._logs.get(run_id, (None, []))[1] for e in log])

    def _layout(self) -> list:
        header = _box([self.title, self.status], "pipenb-header", width="100%", flex_flow="row wrap")
        toolbar = _box([*self.buttons.values(), self.message], "pipenb-toolbar", width="100%",
                       flex_flow="row wrap", align_items="center")
        # The graph takes its drawing's width (at most half), the tabs the rest: nothing jumps as the state fills.
        graph_box = _box([self.graph], "pipenb-graph-box", widgets.Box, flex="0 1 auto", min_width="200px",
                         max_width="50%", overflow="auto")
        side = _box([self.tabs], "pipenb-side", widgets.Box, flex="1 1 400px", min_width="340px", max_width="100%")
        main = _box([graph_box, side], "pipenb-main", width="100%", flex_flow="row wrap")
        self.runs_title = _html(runs_title(0), "pipenb-runs-title")
        self.kernel_watch = KernelWatch()  # in the browser: says so when the kernel is gone (restart, death)
        return [_style(), self.kernel_watch, header, toolbar, self.stale, self.error_banner, main, self.replay_slot,
                self.timeline_section, self.table, self.runs_title, self.runs]

    # -- what the control asks of the screen -------------------------------------
    def _say(self, text: str, cls: str = "pipenb-why") -> None:
        self.message.value = message_html(text, cls)

    def _failed(self, run_id: str, error: BaseException) -> None:
        self.run_errors.keep(run_id, error)

    def _discarded(self, run_id: str) -> None:
        self.runs.discarded.add(run_id)
        self._kept.pop(run_id, None)
        self.run_errors.forget(run_id)

    def _let_go(self, run_id: str) -> None:
        """Show no run (the shown one, ``run_id``, was discarded)."""
        self.detach()
        self.graph.status, self.graph.progress, self.graph.caption = {}, {}, ""
        self.table.clear()
        self.timeline.value = TIMELINE_EMPTY
        self.state_view.value = state_html({})
        self.checkpoint_view.value = checkpoint_html(None)
        self.error_banner.value, self.error_view.value = EMPTY
        self.history.follow(None)
        self.status.value = (f"run <code>{html.escape(short_id(run_id))}</code> discarded: press Run, "
                             f"or pick another run below")

    # -- what a person does (the buttons, rows and tabs do the same) -------------------------
    def press(self, name: str) -> None:
        """Press a button from code (what a click does)."""
        self.control.clicked(name)

    def edit_state(self, key: str, text: str) -> bool:
        """Set ``key`` to the Python literal ``text`` (``ast.literal_eval``, never eval) in the shown run.

        What the Apply button does; True when applied. A value that is not a
        literal, or a run that cannot be edited (running, finished), applies
        nothing and says why.
        """
        return self.editor.edit(key, text)

    def pick_record(self, seq: int | None) -> None:
        """Show history record ``seq`` (as a click on its entry does)."""
        self.history.pick(seq)

    def rerun_stale(self) -> None:
        """What "Re-run from first changed stage" does: fork the picked run at its first record whose code
        changed, and start the fork with this dashboard's code (it becomes the shown run)."""
        self._call(self._rerun)

    def _rerun(self) -> None:
        first = self.stale.first
        if first is None or self.ctx is None or first[0] != self.ctx.run_id:
            self._say("Re-run: no stage of the shown run ran other code than this dashboard's")
            return
        run_id, index, record, _names = first
        self.control.fork(run_id, index, record, start=True)

    def fork_here(self) -> None:
        """What the "Fork from here" button does: a new run from before the picked history entry."""
        self._call(self._fork_picked)

    def _fork_picked(self) -> None:
        h, i = self.history.picked()
        run_id = self.ctx.run_id if self.ctx is not None else None
        self.control.fork(run_id, i, h[i] if i is not None else None)

    def pick(self, run_id: str) -> None:
        """Show the run ``run_id`` (as a click on its row does): a stored run is resumed through the factory."""
        self.control.pick(run_id)

    def discard(self, run_id: str | None = None) -> None:
        """Discard ``run_id`` (default: the shown run), as the Discard button does."""
        self.control.discard(run_id if run_id is not None else (self.ctx.run_id if self.ctx is not None else None))

    def remove(self, run_id: str) -> None:
        """Take a finished run out of the list for good (its row's remove button): ``factory.remove`` (SPEC 14)."""
        self.control.row_action("remove", run_id)

    # -- showing a run -----------------------------------------------------------
    def show(self, ctx) -> None:
        """Make ``ctx`` the dashboard's run: graph, events, state, history, checkpoint, error, buttons."""
        if self._closed:  # a run started or picked before close() comes back after it: stay let go
            return
        if self.ctx is not None and is_finished(self.ctx.status):  # it stays in the list, to be opened again
            self._kept[self.ctx.run_id] = self.ctx
        self.detach()
        self.ctx = ctx
        self.follower.follow(ctx, setup=lambda: self._show_parts(ctx))

    def _show_parts(self, ctx) -> None:
        self.runs.discarded.discard(ctx.run_id)
        self.graph.attach(ctx)  # colours the stages the run already passed (its history, rebuilt from a store too)
        self.table.attach(ctx, history=self._logs_for(ctx))  # one run's events; .dataframe is that run's
        self.timeline.attach(ctx, logs=self._logs_for(ctx))
        self._shown = None
        self.history.follow(ctx)
        self.editor.clear()  # a key typed for the run shown before must not be applied to this one
        self.message.value = ""  # what was said was about the run shown before

    def detach(self) -> None:
        """Let go of the shown run (the graph and table too); what is drawn stays."""
        self.follower.stop()
        self.graph.detach()
        self.table.detach()
        self.timeline.detach()
        self.ctx = None

    def _changed(self) -> bool:
        ctx = self.ctx
        return ctx is not None and self._shown != (ctx.store.get(), ctx.position, ctx.status)

    def _run_stopped(self, event) -> None:
        if event.name == "pipeline:failure" and self.ctx is not None:
            self.run_errors.keep(self.ctx.run_id, event.error)

    def _logs_for(self, ctx) -> list:
        """The EventLogs this dashboard keeps for ``ctx``'s run, the last one recording ``ctx``.

        Kept per run while the runs list shows it, so picking a run again shows
        the events seen so far, including those of an earlier context of the
        same run (before its expiry and rebuild).
        """
        known = self._logs.get(ctx.run_id)
        if known is not None and known[0]() is ctx:
            return known[1]
        logs = known[1] if known is not None else []
        for log in logs:
            log.close()
        logs = logs + [ctx.record()]
        self._logs[ctx.run_id] = (weakref.ref(ctx), logs)
        return logs

    def _forget_logs(self, keep: set) -> None:
        for run_id in [r for r in self._kept if r not in keep]:
            del self._kept[run_id]
        for run_id in [r for r in self._logs if r not in keep]:
            for log in self._logs.pop(run_id)[1]:
                log.close()

    def refresh(self, read_store: bool = False) -> None:
        """Redraw the header, state, checkpoint, error, history, buttons and runs now (``read_store``: the
        store's runs too, when last read about a second ago)."""
        ctx = self.ctx
        if ctx is not None:
            self._shown = (ctx.store.get(), ctx.position, ctx.status)
            self.status.value = self._status_html(ctx)
            self.state_view.value = state_html(ctx.state, writers=last_writers(ctx))
            self.checkpoint_view.value = checkpoint_html(ctx.checkpoint)
            banner, detail = self.run_errors.html_for(ctx)
            if self.error_banner.value != banner:
                self.error_banner.value = banner
            if self.error_view.value != detail:
                self.error_view.value = detail
            self.history.refresh()
            self.editor.show_for(ctx.status)
            if ctx.status != RUNNING and "pausing at the next stage" in self.message.value:
                self.message.value = ""
        self._refresh_buttons()
        self._refresh_stale()
        self._refresh_runs(read_store)

    def _status_html(self, ctx) -> str:
        rec = next((r for r in self.registry.runs() if r.run_id == ctx.run_id), None)
        left = time_left(rec.time_left) if rec is not None and rec.expires_at is not None else ""
        return (f"run <code title='{html.escape(ctx.run_id)}'>{html.escape(short_id(ctx.run_id))}</code> "
                f"<b class='pipenb-run-status pipenb-run-{html.escape(ctx.status)}'>"
                f"{html.escape(ctx.status)}</b> at <code>{html.escape(ctx.position)}</code>"
                + (f" <span class='pipenb-hint'>· {html.escape(left)} in memory</span>" if left else "")
                + (f" <span class='pipenb-why'>· {GONE_NOTE}</span>" if self._status() == GONE else ""))

    def _registry_changed(self, run_id: str) -> None:
        # An expiry exports the shown run's artifacts into its checkpoint: show that too.
        if self.ctx is not None and run_id in (self.ctx.run_id, "*"):
            self.refresh(read_store=True)
        else:
            self._refresh_runs(read_store=True)

    def _refresh_buttons(self) -> None:
        refresh_buttons(self.buttons, self._status(), forked=self.control.forked(self.ctx))

    def _status(self) -> str | None:
        """The shown run's status for the buttons: ``gone`` when another kernel or registry finished it."""
        ctx = self.ctx
        if ctx is None:
            return None
        return GONE if ctx.run_id in self.runs.gone and ctx.status != RUNNING else ctx.status

    def _refresh_stale(self) -> None:
        """The "redefined" notice and the picked run's stale records (compared at most once a second)."""
        before = self.stale.first
        self.stale.refresh(self.ctx)
        if self.stale.first != before:  # the graph marks the same stale stages as the notice names
            self.graph.refresh()

    def _refresh_runs(self, read_store: bool = False) -> None:
        """Redraw the runs list (``read_store``: the store's runs too, when last read about a second ago)."""
        self._forget_logs(self.runs.refresh(self.ctx, read_store) | self.control.source_ids())
        ctx = self.ctx
        if ctx is not None and (self._status() == GONE) != ("elsewhere" in self.status.value):
            self.status.value = self._status_html(ctx)  # finished elsewhere (or back): say so, grey out Resume
            self._refresh_buttons()
        title = runs_title(self.runs.hidden)
        if self.runs_title.value != title:
            self.runs_title.value = title

    def run_row(self, run_id: str) -> str:
        """The runs list's row of ``run_id`` as one line of text ("" when it is not listed)."""
        return self.runs.row_text(run_id)

    async def _tick(self) -> None:
        """Once a second: the store's runs, the time left of held runs, the "redefined" notice."""
        while not self._closed:
            await asyncio.sleep(1.0)
            self._refresh_stale()
            waiting = self.ctx is not None and self.ctx.status != RUNNING
            if waiting and any(r.expires_at is not None for r in self.registry.runs()):
                self.refresh(read_store=True)
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
        state = state_html(ctx.state, writers=last_writers(ctx)) if ctx is not None else state_html({})
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
        self._forget_logs(set())
        close_tree(self, super().close)

"""``RunDashboard``: graph, events, state and the buttons to drive runs of one factory.

Runs execute as background tasks on the kernel's loop (``ctx.start()``), so
the cell returns and the buttons stay live, and their sync steps run on
pipenb's worker threads, so the loop stays free to redraw while a long step
runs. JupyterLab may deliver clicks on a subshell thread: Abort and Pause act
from the click's own thread (they only set the run's thread-safe flags, so
they land even while the loop is busy); every other button hands its work to
the kernel's loop (``call_soon_threadsafe``).
"""

from __future__ import annotations

import ast
import asyncio
import html
import pathlib
import threading
import traceback
import weakref

import ipywidgets as widgets

from pipenb.core.ids import short_id
from pipenb.core.lifecycle import ABORTED, FAILED, RUNNING, can_abort, can_edit, can_pause, can_run, is_finished
from pipenb.core.registry import PipelineRegistry

from .event_table import EventTable
from .follower import RunFollower
from .snapshot import Snapshot, close_tree
from .pick_table import PickTable
from .stage_graph import StageGraph
from ..display import checkpoint_html, clock, diff_html, duration_text, error_html, state_html, \
    time_left

HERE = pathlib.Path(__file__).parent
TABS = ("State", "History", "Checkpoint", "Error")
RUN_COLUMNS = ["run", "pipeline", "status", "stage", "time left", "actions"]
HISTORY_COLUMNS = ["#", "stage", "started", "took", "keys changed"]
MAX_HISTORY_ROWS = 500  # the newest records listed (a long run keeps every record; the list shows these)

# What each button needs (status None: no run picked yet), and what it says when it does not apply.
APPLIES = {
    "run": lambda status: status != RUNNING,       # on a finished run: a new run
    "pause": lambda status: status is not None and can_pause(status),
    "step": lambda status: status != RUNNING,      # on a finished run: a new run, one stage
    "resume": lambda status: status is not None and can_run(status),
    "abort": lambda status: status is not None and can_abort(status),
    "retry": lambda status: status in (FAILED, ABORTED),
    "discard": lambda status: status is not None,
}
WHY_NOT = {
    "run": "a run is going: pause or abort it first",
    "pause": "only a running run can be paused",
    "step": "stepping needs a run that is not running",
    "resume": "only a prepared, paused, failed or aborted run can be resumed",
    "abort": "only a running, paused or prepared run can be aborted",
    "retry": "only a failed or aborted run can be retried",
    "discard": "pick a run first",
}
ICONS = {"run": "play", "pause": "pause", "step": "step-forward", "resume": "forward", "abort": "stop",
         "retry": "redo", "discard": "trash"}


def _style() -> widgets.HTML:
    """The dashboard's CSS (dashboard.css) as a ``<style>`` block inside the widget (no extension needed)."""
    css = (HERE / "dashboard.css").read_text()
    style = widgets.HTML(f"<style>{css}</style>", layout=widgets.Layout(display="none"))
    style.add_class("pipenb-style")
    return style


class RunDashboard(Snapshot, RunFollower, widgets.VBox):
    def __init__(self, factory, registry: PipelineRegistry | None = None, max_rows: int = 1000):
        self.factory = factory
        if registry is None:
            registry = factory.registry if factory.registry is not None else PipelineRegistry.default
        self.registry = registry
        self._follow_init(per_second=4)  # header and state while a run goes; graph and table tick on their own
        self._shown = None  # (store snapshot, position, status) last drawn
        self.graph = StageGraph(factory.pipeline)
        self.table = EventTable(max_rows=max_rows)
        self.title = widgets.HTML(f"<b>{html.escape(factory.pipeline.id)}</b>")
        self.status = widgets.HTML("no run yet: press Run or Step")
        self.status.add_class("pipenb-status")
        self.stale = widgets.HTML("")
        self.stale.add_class("pipenb-stale")
        self.message = widgets.HTML("")
        self.message.add_class("pipenb-message")
        self.buttons = {}
        for name, icon in ICONS.items():
            b = widgets.Button(description=name.capitalize(), icon=icon,
                               layout=widgets.Layout(width="auto", min_width="76px"))
            b.add_class(f"pipenb-btn-{name}")
            b.on_click(lambda _b, name=name: self._clicked(name))
            self.buttons[name] = b
        self.error_banner = widgets.HTML("")
        self.error_banner.add_class("pipenb-error")
        # State: the run's state now, and a small editor for a run that waits (paused, failed, ...).
        self.state_view = widgets.HTML(state_html({}))
        self.state_view.add_class("pipenb-state")
        self.edit_key = widgets.Text(placeholder="key", layout=widgets.Layout(width="30%", min_width="80px"))
        self.edit_key.add_class("pipenb-edit-key")
        self.edit_value = widgets.Text(placeholder="value: 3, 'text', True, [1, 2]",
                                       layout=widgets.Layout(flex="1 1 auto", width="auto", min_width="100px"))
        self.edit_value.add_class("pipenb-edit-value")
        self.edit_apply = widgets.Button(description="Apply", icon="check", layout=widgets.Layout(width="80px"))
        self.edit_apply.add_class("pipenb-edit-apply")
        self.edit_apply.on_click(lambda _b: self._call(self._apply_edit))
        self.edit_message = widgets.HTML("")
        self.edit_message.add_class("pipenb-edit-message")
        self.editor = widgets.VBox([
            widgets.HTML('<div class="pipenb-view-title"><b>edit the state</b> '
                         '<span class="pipenb-hint">(a paused, failed or aborted run; the value is a Python '
                         'literal)</span></div>'),
            widgets.HBox([self.edit_key, self.edit_value, self.edit_apply],
                         layout=widgets.Layout(width="100%", flex_flow="row wrap")),
            self.edit_message,
        ], layout=widgets.Layout(width="100%"))
        self.editor.add_class("pipenb-editor")
        # History: one entry per record; picking one shows the state there and what it changed.
        self.history = PickTable(HISTORY_COLUMNS, empty="no stage committed yet")
        self.history.add_class("pipenb-history")
        self.history.observe(lambda change: self._call(self._show_record), names="value")
        self.record_view = widgets.HTML("")
        self.record_view.add_class("pipenb-record")
        self.fork_button = widgets.Button(description="Fork from here", icon="code-fork", disabled=True,
                                          layout=widgets.Layout(width="150px"))
        self.fork_button.add_class("pipenb-btn-fork")
        self.fork_button.on_click(lambda _b: self._call(self._fork_picked))
        self.checkpoint_view = widgets.HTML(checkpoint_html(None))
        self.checkpoint_view.add_class("pipenb-checkpoint")
        self.error_view = widgets.HTML(error_html(None))
        self.error_view.add_class("pipenb-error-tab")
        self.tabs = widgets.Tab(children=[
            widgets.VBox([self.state_view, self.editor]),
            widgets.VBox([self.history, widgets.HBox([self.fork_button]), self.record_view]),
            widgets.VBox([self.checkpoint_view]),
            widgets.VBox([self.error_view]),
        ], layout=widgets.Layout(width="100%"))
        self.tabs.titles = TABS
        self.tabs.add_class("pipenb-tabs")
        # The runs this factory's registry knows: a click on a row picks it.
        self.runs = PickTable(RUN_COLUMNS, empty="no runs yet")
        self.runs.add_class("pipenb-runs")
        self.runs.observe(self._picked, names="value")
        self.runs.on_action(lambda action, run_id: self._call(self._run_action, action, run_id))
        self._refreshing = False
        self._history: dict[str, tuple] = {}  # run id -> (weakref to its context, its EventLogs)
        self._errors: dict[str, BaseException] = {}  # run id -> the error it failed with (seen here)
        self._diff_keys: dict[tuple, str] = {}  # (run id, seq) -> "keys changed" of that record
        self._history_shown = None  # (run id, history length, last seq) last listed
        self._discarded: set[str] = set()
        self._closed = False
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._thread = threading.get_ident()
        self._off_registry = self.registry.on_change(lambda run_id: self._call(self._registry_changed, run_id))
        header = widgets.HBox([self.title, self.status], layout=widgets.Layout(width="100%", flex_flow="row wrap"))
        header.add_class("pipenb-header")
        toolbar = widgets.HBox(list(self.buttons.values()) + [self.message],
                               layout=widgets.Layout(width="100%", flex_flow="row wrap", align_items="center"))
        toolbar.add_class("pipenb-toolbar")
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
        super().__init__([
            _style(),
            header,
            toolbar,
            self.stale,
            self.error_banner,
            main,
            self.table,
            runs_title,
            self.runs,
        ], layout=widgets.Layout(width="100%", max_width="100%"))
        self.add_class("pipenb-dashboard")
        self._refresh_buttons()
        self._refresh_runs()
        self._clock = self._loop.create_task(self._tick()) if self._loop is not None else None

    # -- thread hand-off --------------------------------------------------------
    def _call(self, fn, *args) -> None:
        """Run ``fn`` on the kernel's loop thread (clicks may arrive on another one)."""
        loop = self._loop
        if loop is None or loop.is_closed() or threading.get_ident() == self._thread:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _clicked(self, name: str) -> None:
        if name in ("abort", "pause"):
            self._flag(name)
        else:
            self._call(self._do, name)

    def _flag(self, name: str) -> None:
        """Abort or Pause, from whatever thread the click came on: only the run's flags are set here."""
        ctx = self.ctx
        status = ctx.status if ctx is not None else None
        if not APPLIES[name](status):
            self._call(self._why_not, name)
            return
        if name == "abort":
            ctx.abort("dashboard")
        else:
            ctx.request_pause()
        self._call(self._flagged, name)

    def _flagged(self, name: str) -> None:
        self.message.value = "pausing at the next stage…" if name == "pause" else ""
        self._refresh_buttons()

    def _why_not(self, name: str) -> None:
        self.message.value = f'<span class="pipenb-why">{html.escape(name.capitalize())}: {WHY_NOT[name]}</span>'

    def press(self, name: str) -> None:
        """Press a button from code (what a click does)."""
        self._clicked(name)

    # -- actions (loop thread) ---------------------------------------------------
    def _do(self, name: str) -> None:
        if name in ("abort", "pause"):
            self._flag(name)
            return
        status = self.ctx.status if self.ctx is not None else None
        if not APPLIES[name](status):
            self._why_not(name)
            return
        self.message.value = ""
        ctx = self.ctx
        if name == "run":
            self._spawn(self._start_new(step=False))
        elif name == "step":
            if ctx is None or is_finished(status):
                self._spawn(self._start_new(step=True))
            else:
                self._spawn(self._continue(ctx.run_id, step=True))
        elif name in ("resume", "retry"):  # a retry continues a failed or aborted run at its stage
            self._spawn(self._continue(ctx.run_id, step=False))
        elif name == "discard":
            self._spawn(self._discard(ctx.run_id))
        self._refresh_buttons()

    def _say(self, text: str, cls: str = "pipenb-why") -> None:
        self.message.value = f'<span class="{cls}">{html.escape(text)}</span>'

    async def _continue(self, run_id: str, step: bool) -> None:
        """Resume, step or retry through this dashboard's factory: its pipeline is the code that runs (SPEC 9)."""
        res = await self.factory.resume(run_id)
        if res.is_err:
            self._say(str(res.error))
            return
        ctx = res.value
        if ctx is not self.ctx:
            self.show(ctx)
        if self._loop is None:
            await self._started(ctx, step)
            return
        self._go(ctx, step)

    def _spawn(self, coro) -> None:
        loop = self._loop
        if loop is None:
            from pipenb import run_sync

            run_sync(coro)
            self._refresh_all()
        else:
            task = loop.create_task(coro)
            task.add_done_callback(lambda t: self._refresh_all())

    def _go(self, ctx, step: bool) -> None:
        """Run or step ``ctx`` with ``ctx.start()``: sync steps on worker threads, the loop stays free."""
        if self._loop is None:  # no kernel loop (a script): wait for the background run in a loop of our own
            from pipenb import run_sync

            self._ended(ctx.run_id, run_sync(self._started(ctx, step)))
            self._refresh_all()
            return
        task = ctx.start(step=step)
        task.add_done_callback(lambda t, run_id=ctx.run_id: self._ended(run_id, t))
        self._refresh_all()  # show "running" now; the run's own edges follow

    def _ended(self, run_id: str, outcome) -> None:
        """A run's ``start()`` task (or result) is done: keep its error, then redraw."""
        try:
            result = outcome.result() if isinstance(outcome, asyncio.Future) else outcome
        except BaseException as exc:  # cancelled, or the run raised
            if not isinstance(exc, asyncio.CancelledError):
                self._errors[run_id] = exc
        else:
            if getattr(result, "is_err", False):
                self._errors[run_id] = result.error
        self._refresh_all()

    @staticmethod
    async def _started(ctx, step: bool):
        return await ctx.start(step=step)

    async def _start_new(self, step: bool) -> None:
        """Prepare a new run, show it, then start it in the background."""
        ctx = (await self.factory.prepare()).unwrap()
        self.show(ctx)
        if self._loop is None:
            return self._ended(ctx.run_id, await self._started(ctx, step))
        self._go(ctx, step)

    async def _discard(self, run_id: str) -> None:
        """Abort the run if it can be, forget it in the registry (its checkpoint goes too), drop it from the list."""
        ctx = self.ctx if self.ctx is not None and self.ctx.run_id == run_id else \
            self.registry.get_live_context(run_id)
        if ctx is not None and can_abort(ctx.status):
            ctx.abort("discarded from the dashboard")
            for _ in range(300):  # the abort lands within 100 ms; its checkpoint must be written before we clear it
                if ctx.status != RUNNING:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)
        self.registry.discard(run_id)
        self._discarded.add(run_id)
        self._errors.pop(run_id, None)
        if self.ctx is not None and self.ctx.run_id == run_id:
            self._let_go()
            self.status.value = (f"run <code>{html.escape(short_id(run_id))}</code> discarded: press Run, "
                                 f"or pick another run below")
        self._say(f"discarded run {short_id(run_id)}", "pipenb-done")
        self._refresh_all()

    def discard(self, run_id: str | None = None) -> None:
        """Discard ``run_id`` (default: the shown run), as the Discard button does."""
        run_id = run_id if run_id is not None else (self.ctx.run_id if self.ctx is not None else None)
        if run_id is None:
            self._call(self._why_not, "discard")
            return
        self._call(lambda: self._spawn(self._discard(run_id)))

    def _let_go(self) -> None:
        """Show no run (the shown one was discarded)."""
        self.detach()
        self.graph.detach()
        self.graph.status, self.graph.progress, self.graph.caption = {}, {}, ""
        self.table.detach()
        self.table.clear()
        self.state_view.value = state_html({})
        self.checkpoint_view.value = checkpoint_html(None)
        self.error_view.value = error_html(None)
        self.error_banner.value = ""
        self.history.rows, self.history.value = [], None
        self.record_view.value = ""
        self._history_shown = None

    # -- the state editor ----------------------------------------------------------
    def edit_state(self, key: str, text: str) -> bool:
        """Set ``key`` to the Python literal ``text`` (``ast.literal_eval``, never eval) in the shown run.

        What the Apply button does; True when applied. A value that is not a
        literal, or a run that cannot be edited (running, finished), applies
        nothing and says why.
        """
        self.edit_key.value, self.edit_value.value = key, text
        return self._apply_edit()

    def _edit_says(self, text: str, ok: bool) -> None:
        cls = "pipenb-done" if ok else "pipenb-why"
        self.edit_message.value = f'<span class="{cls}">{html.escape(text)}</span>'

    def _apply_edit(self) -> bool:
        ctx, key, text = self.ctx, self.edit_key.value.strip(), self.edit_value.value
        if ctx is None:
            self._edit_says("pick a run first", False)
            return False
        if not key:
            self._edit_says("name the key to set", False)
            return False
        if not can_edit(ctx.status):
            self._edit_says(f"run {short_id(ctx.run_id)} is {ctx.status}: the state can be edited on a prepared, "
                            f"paused, failed or aborted run (pause it first); nothing applied", False)
            return False
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
            why = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
            self._edit_says(f"the value {text!r} for {key!r} is not a Python literal (a number, a quoted string, "
                            f"True, False, None, or a list, tuple, dict or set of those): {why}; nothing applied",
                            False)
            return False
        try:
            ctx.update_state({key: value})
        except Exception as exc:
            self._edit_says(f"{type(exc).__name__}: {exc}; nothing applied", False)
            return False
        self._edit_says(f"set {key} = {value!r}", True)
        self._refresh_all()
        return True

    # -- history and forks -------------------------------------------------------
    def _refresh_history(self) -> None:
        ctx = self.ctx
        if ctx is None:
            return
        h = ctx.history
        key = (ctx.run_id, len(h), h[-1].seq if len(h) else None)
        if key == self._history_shown:
            return
        self._history_shown = key
        n = len(h)
        rows = []
        for i in range(max(0, n - MAX_HISTORY_ROWS), n):
            r = h[i]
            changed = self._diff_keys.get((ctx.run_id, r.seq))
            if changed is None:
                changed = self._diff_keys[(ctx.run_id, r.seq)] = ", ".join(map(str, h.diff(i).keys)) or "—"
            rows.append({"id": str(r.seq), "cells": [str(r.seq), r.address, clock(r.started),
                                                     duration_text(r.duration) if not r.is_edit else "edit",
                                                     changed],
                         "cls": "pipenb-pick-edit" if r.is_edit else ""})
        self.history.rows = rows
        if self.history.value is not None and self.history.row(self.history.value) is None:
            self.history.value = None
        self._show_record()

    def _record_index(self):
        """(history, index) of the picked history entry, or (history, None)."""
        ctx = self.ctx
        if ctx is None or self.history.value is None:
            return None, None
        h = ctx.history
        for i in range(len(h) - 1, -1, -1):
            if str(h[i].seq) == self.history.value:
                return h, i
        return h, None

    def _show_record(self) -> None:
        h, i = self._record_index()
        if i is None:
            self.record_view.value = ('<div class="pipenb-hint">pick an entry to see the state after it and what it '
                                      'changed</div>') if self.ctx is not None else ""
            self.fork_button.disabled = True
            return
        r = h[i]
        d = h.diff(i)
        title = f"state after #{r.seq} {r.address}"
        self.record_view.value = (
            f'<div class="pipenb-view-title"><b>changes of #{r.seq}</b> <code>{html.escape(r.address)}</code></div>'
            f"{diff_html(d)}{state_html(r.state, title=title, marked=set(d.keys))}")
        self.fork_button.disabled = False

    def pick_record(self, seq: int | None) -> None:
        """Show history record ``seq`` (as a click on its entry does)."""
        self.history.value = None if seq is None else str(seq)

    def _fork_picked(self) -> None:
        ctx = self.ctx
        h, i = self._record_index()
        if ctx is None or i is None:
            self._say("Fork from here: pick a history entry first")
            return
        self._spawn(self._fork(ctx.run_id, i, h[i]))

    def fork_here(self) -> None:
        """What the "Fork from here" button does."""
        self._call(self._fork_picked)

    async def _fork(self, run_id: str, index: int, record) -> None:
        res = await self.factory.fork(run_id, at=index)
        if res.is_err:
            self._say(f"{type(res.error).__name__}: {res.error}")
            return
        new = res.value
        self.show(new)
        self._say(f"run {short_id(new.run_id)} forked from run {short_id(run_id)} before #{record.seq} "
                  f"{record.address}: press Resume to run it", "pipenb-done")
        self._refresh_all()

    # -- showing a run -----------------------------------------------------------
    def show(self, ctx) -> None:
        """Make ``ctx`` the dashboard's run: graph, events, state, history, checkpoint, error, buttons."""
        if self._closed:  # a run started or picked before close() comes back after it: stay let go
            return
        self.attach(ctx)

    def _attached(self, ctx) -> None:
        self._discarded.discard(ctx.run_id)
        self.graph.attach(ctx)
        self.table.attach(ctx, history=self._history_for(ctx))  # one run's events; .dataframe is that run's
        self._shown = None
        self._history_shown = None
        self.history.value = None
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
            self._errors[self.ctx.run_id] = event.error

    def _history_for(self, ctx) -> list:
        """The EventLogs this dashboard keeps for ``ctx``'s run, the last one recording ``ctx``.

        Kept per run while the registry knows it, so picking a run again shows
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

    def _picked(self, change) -> None:
        # A click in the runs list may arrive on a comm thread: open the run on the kernel's loop.
        run_id = change["new"]
        if self._refreshing or not run_id:
            return
        self._call(self.pick, run_id)

    def pick(self, run_id: str) -> None:
        """Show the run ``run_id`` (as a click on its row does)."""
        if self.ctx is not None and self.ctx.run_id == run_id:
            return
        self._spawn(self._open(run_id))

    async def _open(self, run_id: str):
        res = await self.factory.resume(run_id)
        if res.is_err:
            self._say(str(res.error))
            return
        self.show(res.value)

    def _run_action(self, action: str, run_id: str) -> None:
        if action == "discard":
            self._spawn(self._discard(run_id))
        elif action == "resume":
            self._spawn(self._continue(run_id, step=False))
        elif action == "show":
            self.pick(run_id)

    def _error_of(self, ctx):
        error = self._errors.get(ctx.run_id)
        if error is None and ctx.status in (FAILED, ABORTED):
            return None, (f"run {short_id(ctx.run_id)} {ctx.status} at {ctx.position}; its error was raised "
                          f"before this dashboard showed it (the checkpoint keeps where, not why)")
        return error, ""

    def _refresh_error(self, ctx) -> None:
        error, note = self._error_of(ctx)
        if error is None:
            banner = (f'<div class="pipenb-error-note">{html.escape(note)}</div>' if note else "")
            detail = error_html(None) if not note else f'<div class="pipenb-error-view">{html.escape(note)}</div>'
        else:
            where = html.escape(ctx.position)
            banner = (f'<div class="pipenb-error-box"><div class="pipenb-error-where">run '
                      f"{html.escape(short_id(ctx.run_id))} {html.escape(ctx.status)} at <code>{where}</code>"
                      f"</div>{error_html(error)}</div>")
            tb = "".join(traceback.format_exception(error))
            detail = (f"{error_html(error)}<details><summary>traceback</summary>"
                      f'<pre class="pipenb-traceback">{html.escape(tb)}</pre></details>')
        if ctx.status not in (FAILED, ABORTED):
            banner = ""
        if self.error_banner.value != banner:
            self.error_banner.value = banner
        if self.error_view.value != detail:
            self.error_view.value = detail

    def _refresh_all(self) -> None:
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
            self._refresh_error(ctx)
            self._refresh_history()
            self.editor.layout.display = None if can_edit(ctx.status) else "none"
            if ctx.status != RUNNING and self.message.value.startswith("pausing"):
                self.message.value = ""
        self._refresh_buttons()
        self._refresh_runs()

    def _registry_changed(self, run_id: str) -> None:
        # An expiry exports the shown run's artifacts into its checkpoint: show that too.
        if self.ctx is not None and run_id in (self.ctx.run_id, "*"):
            self._refresh_all()
        else:
            self._refresh_runs()

    def _refresh_buttons(self) -> None:
        status = self.ctx.status if self.ctx is not None else None
        for name, button in self.buttons.items():
            button.disabled = not APPLIES[name](status)
        self.buttons["retry"].layout.display = None if APPLIES["retry"](status) else "none"
        stale = ""
        if self.factory.pipeline.superseded:
            stale = (f"⚠ pipeline <code>{html.escape(self.factory.pipeline.id)}</code> was redefined in a later "
                     f"cell; this dashboard runs the definition it was built with. Build a new factory and "
                     f"dashboard to run the new code.")
        if self.stale.value != stale:
            self.stale.value = stale

    def _records(self) -> list:
        """The runs to list: ``factory.runs()`` where the factory has it (store runs too), else the registry's."""
        runs = getattr(self.factory, "runs", None)
        records = runs() if callable(runs) else self.registry.runs()
        pid = self.factory.pipeline.id
        return [r for r in records if r.pipeline_id == pid and r.run_id not in self._discarded]

    def _refresh_runs(self) -> None:
        rows, seen = [], set()
        shown = self.ctx
        for rec in self._records():
            seen.add(rec.run_id)
            status, at = rec.status, rec.paused_at or ""
            if shown is not None and shown.run_id == rec.run_id:
                status, at = shown.status, shown.position
            if rec.expires_at is not None:
                left = time_left(rec.time_left)
            elif not rec.live:
                left = "in the store"
            else:
                left = ""
            actions = (["resume"] if can_run(status) else []) + ["discard"]
            rows.append({"id": rec.run_id, "cells": [short_id(rec.run_id), rec.pipeline_id, status, at, left],
                         "cls": f"pipenb-pick-status-{status}", "actions": actions})
        if shown is not None and shown.run_id not in seen:
            rows.insert(0, {"id": shown.run_id, "cells": [short_id(shown.run_id), shown.pipeline_id, shown.status,
                                                          shown.position, ""],
                            "cls": f"pipenb-pick-status-{shown.status}",
                            "actions": (["resume"] if can_run(shown.status) else []) + ["discard"]})
        self._forget_history(seen | ({shown.run_id} if shown is not None else set()))
        self._refreshing = True
        try:
            if rows != self.runs.rows:
                self.runs.rows = rows
            self.runs.value = shown.run_id if shown is not None else None
        finally:
            self._refreshing = False

    def run_row(self, run_id: str) -> str:
        """The runs list's row of ``run_id`` as one line of text ("" when it is not listed)."""
        row = self.runs.row(run_id)
        return "  ".join(c for c in row["cells"] if c) if row is not None else ""

    async def _tick(self) -> None:
        while not self._closed:
            await asyncio.sleep(1.0)
            if any(r.expires_at is not None for r in self.registry.runs()):
                self._refresh_runs()
                if self.ctx is not None and self.ctx.status != RUNNING:
                    self._refresh_all()

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

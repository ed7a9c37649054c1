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

import asyncio
import html
import threading
import time
import weakref

import ipywidgets as widgets

from pipenb.core.ids import short_id
from pipenb.core.lifecycle import RUNNING, can_abort, can_pause, can_run, is_finished
from pipenb.core.registry import PipelineRegistry

from .event_table import EventTable
from .follower import RunFollower
from .snapshot import Snapshot, close_tree
from .stage_graph import StageGraph
from ..display import checkpoint_html, state_html

# What each button needs (status None: no run picked yet), and what it says when it does not apply.
APPLIES = {
    "run": lambda status: status != RUNNING,       # on a finished run: a new run
    "pause": lambda status: status is not None and can_pause(status),
    "step": lambda status: status != RUNNING,      # on a finished run: a new run, one stage
    "resume": lambda status: status is not None and can_run(status),
    "abort": lambda status: status is not None and can_abort(status),
}
WHY_NOT = {
    "run": "a run is going: pause or abort it first",
    "pause": "only a running run can be paused",
    "step": "stepping needs a run that is not running",
    "resume": "only a prepared, paused, failed or aborted run can be resumed",
    "abort": "only a running, paused or prepared run can be aborted",
}


def _fmt_left(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


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
        for name, icon in (("run", "play"), ("pause", "pause"), ("step", "step-forward"),
                           ("resume", "forward"), ("abort", "stop")):
            b = widgets.Button(description=name.capitalize(), icon=icon, layout=widgets.Layout(width="92px"))
            b.add_class(f"pipenb-btn-{name}")
            b.on_click(lambda _b, name=name: self._clicked(name))
            self.buttons[name] = b
        self.state_view = widgets.HTML(state_html({}))
        self.state_view.add_class("pipenb-state")
        self.checkpoint_view = widgets.HTML(checkpoint_html(None))
        self.runs = widgets.Select(options=[], rows=5, description="runs", layout=widgets.Layout(width="100%"))
        self.runs.add_class("pipenb-runs")
        self.runs.observe(self._picked, names="value")
        self._refreshing = False
        self._history: dict[str, tuple] = {}  # run id -> (weakref to its context, its EventLogs)
        self._closed = False
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._thread = threading.get_ident()
        self._off_registry = self.registry.on_change(lambda run_id: self._call(self._registry_changed, run_id))
        super().__init__([
            widgets.HBox([self.title, self.status]),
            widgets.HBox(list(self.buttons.values()) + [self.message, self.stale]),
            widgets.HBox([self.graph, widgets.VBox([self.state_view, self.checkpoint_view],
                                                   layout=widgets.Layout(min_width="280px"))]),
            self.table,
            self.runs,
        ])
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
        elif name == "resume":
            self._spawn(self._continue(ctx.run_id, step=False))
        self._refresh_buttons()

    async def _continue(self, run_id: str, step: bool) -> None:
        """Resume, step or retry through this dashboard's factory: its pipeline is the code that runs (SPEC 9)."""
        res = await self.factory.resume(run_id)
        if res.is_err:
            self.message.value = f'<span class="pipenb-why">{html.escape(str(res.error))}</span>'
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

            run_sync(self._started(ctx, step))
            self._refresh_all()
            return
        task = ctx.start(step=step)
        task.add_done_callback(lambda t: self._refresh_all())
        self._refresh_all()  # show "running" now; the run's own edges follow

    @staticmethod
    async def _started(ctx, step: bool):
        return await ctx.start(step=step)

    async def _start_new(self, step: bool) -> None:
        """Prepare a new run, show it, then start it in the background."""
        ctx = (await self.factory.prepare()).unwrap()
        self.show(ctx)
        if self._loop is None:
            return await self._started(ctx, step)
        self._go(ctx, step)

    # -- showing a run -----------------------------------------------------------
    def show(self, ctx) -> None:
        """Make ``ctx`` the dashboard's run: graph, events, state, checkpoint, buttons."""
        if self._closed:  # a run started or picked before close() comes back after it: stay let go
            return
        self.attach(ctx)

    def _attached(self, ctx) -> None:
        self.graph.attach(ctx)
        self.table.attach(ctx, history=self._history_for(ctx))  # one run's events; .dataframe is that run's
        self._shown = None

    def _changed(self) -> bool:
        ctx = self.ctx
        return ctx is not None and self._shown != (ctx.store.get(), ctx.position, ctx.status)

    def _redraw(self) -> None:
        self._refresh_all()

    def _run_started(self, event) -> None:
        self._refresh_all()

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
        run_id = change["new"]
        if self._refreshing or not run_id or (self.ctx is not None and self.ctx.run_id == run_id):
            return
        self._spawn(self._open(run_id))

    async def _open(self, run_id: str):
        res = await self.factory.resume(run_id)
        if res.is_err:
            self.message.value = f'<span class="pipenb-why">{html.escape(str(res.error))}</span>'
            return
        self.show(res.value)

    def _refresh_all(self) -> None:
        ctx = self.ctx
        if ctx is not None:
            self._shown = (ctx.store.get(), ctx.position, ctx.status)
            self.status.value = (
                f"run <code title='{html.escape(ctx.run_id)}'>{html.escape(short_id(ctx.run_id))}</code> "
                f"<b class='pipenb-run-status'>"
                f"{html.escape(ctx.status)}</b> at <code>{html.escape(ctx.position)}</code>"
            )
            self.state_view.value = state_html(ctx.state)
            self.checkpoint_view.value = checkpoint_html(ctx.checkpoint)
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
        stale = ""
        if self.factory.pipeline.superseded:
            stale = (f"⚠ pipeline <code>{html.escape(self.factory.pipeline.id)}</code> was redefined in a later "
                     f"cell; this dashboard runs the definition it was built with. Build a new factory and "
                     f"dashboard to run the new code.")
        if self.stale.value != stale:
            self.stale.value = stale

    def _refresh_runs(self) -> None:
        pid = self.factory.pipeline.id
        now = time.time()
        options, seen = [], set()
        for rec in self.registry.runs():
            if rec.pipeline_id != pid:
                continue
            seen.add(rec.run_id)
            label = f"{short_id(rec.run_id)}  {rec.status}"
            if rec.paused_at:
                label += f" at {rec.paused_at}"
            if rec.expires_at is not None:
                label += f"  · {_fmt_left(max(0.0, rec.expires_at - now))} left in memory"
            elif not rec.live:
                label += "  (in the store)"
            options.append((label, rec.run_id))
        if self.ctx is not None and self.ctx.run_id not in seen:
            options.insert(0, (f"{short_id(self.ctx.run_id)}  {self.ctx.status}", self.ctx.run_id))
        self._forget_history(seen | ({self.ctx.run_id} if self.ctx is not None else set()))
        self._refreshing = True
        try:
            if options != list(self.runs.options):
                self.runs.options = options
            self.runs.value = self.ctx.run_id if self.ctx is not None else None
        finally:
            self._refreshing = False

    async def _tick(self) -> None:
        while not self._closed:
            await asyncio.sleep(1.0)
            if any(r.expires_at is not None for r in self.registry.runs()):
                self._refresh_runs()

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

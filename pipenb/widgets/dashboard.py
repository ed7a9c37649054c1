"""``RunDashboard``: graph, events, state and the buttons to drive runs of one factory.

Runs execute as background tasks on the kernel's loop (``ctx.start()``), so
the cell returns and the buttons stay live. JupyterLab may deliver clicks on
a subshell thread: every click handler only hands its work to the kernel's
loop (``call_soon_threadsafe``), where all run control happens.
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
import weakref

import ipywidgets as widgets

from pipenb.core.registry import PipelineRegistry

from .event_table import EventTable
from .stage_graph import StageGraph
from ..display import checkpoint_html, state_html

# Which buttons apply in which status (None: no run picked yet).
APPLIES = {
    "run": {None, "completed", "terminated", "failed", "aborted", "paused", "prepared"},
    "pause": {"running"},
    "step": {None, "prepared", "paused", "failed", "aborted", "completed", "terminated"},
    "resume": {"prepared", "paused", "failed", "aborted"},
    "abort": {"running", "paused", "prepared"},
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


class RunDashboard(widgets.VBox):
    def __init__(self, factory, registry: PipelineRegistry | None = None, max_rows: int = 1000):
        self.factory = factory
        if registry is None:
            registry = factory.registry if factory.registry is not None else PipelineRegistry.default
        self.registry = registry
        self.ctx = None
        self.graph = StageGraph(factory.pipeline)
        self.table = EventTable(max_rows=max_rows)
        self.title = widgets.HTML(f"<b>{html.escape(factory.pipeline.id)}</b>")
        self.status = widgets.HTML("no run yet: press Run or Step")
        self.status.add_class("pipenb-status")
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
        self.checkpoint_view = widgets.HTML(checkpoint_html(None))
        self.runs = widgets.Select(options=[], rows=5, description="runs", layout=widgets.Layout(width="100%"))
        self.runs.add_class("pipenb-runs")
        self.runs.observe(self._picked, names="value")
        self._refreshing = False
        self._history: dict[str, tuple] = {}  # run id -> (weakref to its context, its EventLogs)
        self._unsubscribe: list = []
        self._closed = False
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._thread = threading.get_ident()
        self._off_registry = self.registry.on_change(lambda run_id: self._call(self._registry_changed, run_id))
        super().__init__([
            widgets.HBox([self.title, self.status]),
            widgets.HBox(list(self.buttons.values()) + [self.message]),
            widgets.HBox([self.graph, widgets.VBox([self.state_view, self.checkpoint_view],
                                                   layout=widgets.Layout(min_width="280px"))]),
            self.table,
            self.runs,
        ])
        self.add_class("pipenb-dashboard")
        self._refresh_buttons()
        self._refresh_runs()
        self._ticker = self._loop.create_task(self._tick()) if self._loop is not None else None

    # -- thread hand-off --------------------------------------------------------
    def _call(self, fn, *args) -> None:
        """Run ``fn`` on the kernel's loop thread (clicks may arrive on another one)."""
        loop = self._loop
        if loop is None or loop.is_closed() or threading.get_ident() == self._thread:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _clicked(self, name: str) -> None:
        self._call(self._do, name)

    def press(self, name: str) -> None:
        """Press a button from code (what a click does)."""
        self._clicked(name)

    # -- actions (loop thread) ---------------------------------------------------
    def _do(self, name: str) -> None:
        status = self.ctx.status if self.ctx is not None else None
        if status not in APPLIES[name]:
            self.message.value = f'<span class="pipenb-why">{html.escape(name.capitalize())}: {WHY_NOT[name]}</span>'
            return
        self.message.value = ""
        ctx = self.ctx
        if name == "run":
            self._spawn(self._start_new(step=False))
        elif name == "step":
            if ctx is None or status in ("completed", "terminated"):
                self._spawn(self._start_new(step=True))
            else:
                self._spawn(ctx.step())
        elif name == "pause":
            ctx.request_pause()
            self.message.value = "pausing at the next stage…"
        elif name == "resume":
            self._spawn(ctx.run())
        elif name == "abort":
            ctx.abort("dashboard")
        self._refresh_buttons()

    def _spawn(self, coro) -> None:
        loop = self._loop
        if loop is None:
            from pipenb import run_sync

            run_sync(coro)
            self._refresh_all()
        else:
            task = loop.create_task(coro)
            task.add_done_callback(lambda t: self._refresh_all())

    async def _start_new(self, step: bool):
        ctx = (await self.factory.prepare()).unwrap()
        self.show(ctx)
        if step:
            return await ctx.step()
        return await ctx.run()

    # -- showing a run -----------------------------------------------------------
    def show(self, ctx) -> None:
        """Make ``ctx`` the dashboard's run: graph, events, state, checkpoint, buttons."""
        for off in self._unsubscribe:
            off()
        self.ctx = ctx
        self.graph.attach(ctx)
        self.table.attach(ctx, history=self._history_for(ctx))  # one run's events; .dataframe is that run's
        refresh = lambda event: self._refresh_all() if len(event.path) == 1 else None  # noqa: E731
        self._unsubscribe = [ctx.on(name, refresh) for name in
                             ("pipeline:start", "pipeline:paused", "pipeline:success", "pipeline:failure")]
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
            self.status.value = (
                f"run <code>{html.escape(ctx.run_id[:8])}</code> <b class='pipenb-run-status'>"
                f"{html.escape(ctx.status)}</b> at <code>{html.escape(ctx.position)}</code>"
            )
            self.state_view.value = state_html(ctx.state)
            self.checkpoint_view.value = checkpoint_html(ctx.checkpoint)
            if ctx.status != "running" and self.message.value.startswith("pausing"):
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
            button.disabled = status not in APPLIES[name]

    def _refresh_runs(self) -> None:
        pid = self.factory.pipeline.id
        now = time.time()
        options, seen = [], set()
        for rec in self.registry.runs():
            if rec.pipeline_id != pid:
                continue
            seen.add(rec.run_id)
            label = f"{rec.run_id[:8]}  {rec.status}"
            if rec.paused_at:
                label += f" at {rec.paused_at}"
            if rec.expires_at is not None:
                label += f"  · {_fmt_left(max(0.0, rec.expires_at - now))} left in memory"
            elif not rec.live:
                label += "  (in the store)"
            options.append((label, rec.run_id))
        if self.ctx is not None and self.ctx.run_id not in seen:
            options.insert(0, (f"{self.ctx.run_id[:8]}  {self.ctx.status}", self.ctx.run_id))
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

    def close(self) -> None:
        self._closed = True
        self._off_registry()
        if self._ticker is not None:
            self._ticker.cancel()
        self.graph.detach()
        self.table.detach()
        self._forget_history(set())
        super().close()

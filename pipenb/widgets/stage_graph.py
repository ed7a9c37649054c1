"""``StageGraph``: the pipeline's stage graph, coloured live as a run goes.

The SVG is laid out once (Graphviz ``dot`` when installed, else pipenb's own
layout); live updates only send a small ``{address: status}`` map that the
browser applies to the drawn nodes. Clicking a stage toggles a breakpoint.
"""

from __future__ import annotations

import pathlib

import anywidget
import traitlets

from ..graph import to_svg
from .throttle import Throttle

HERE = pathlib.Path(__file__).parent
STATUSES = ("pending", "running", "success", "paused", "failed")


def _dot_available() -> bool:
    import shutil

    return shutil.which("dot") is not None


class StageGraph(anywidget.AnyWidget):
    _esm = HERE / "stage_graph.js"
    _css = HERE / "stage_graph.css"

    svg = traitlets.Unicode("").tag(sync=True)
    layout = traitlets.Unicode("").tag(sync=True)          # "graphviz" or "builtin"
    status = traitlets.Dict({}).tag(sync=True)             # address -> one of STATUSES
    durations = traitlets.Dict({}).tag(sync=True)          # address -> last duration, ms
    breakpoints = traitlets.List(traitlets.Unicode()).tag(sync=True)
    leaves = traitlets.List(traitlets.Unicode()).tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)

    def __init__(self, pipeline, ctx=None, **kwargs):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.add_class("pipenb-stage-graph")
        self.layout = "graphviz" if _dot_available() else "builtin"
        self.svg = to_svg(pipeline)  # falls back to the built-in layout without `dot`
        self.leaves = [a for a in ("/".join(x) for x in pipeline.addresses())
                       if pipeline.resolve(tuple(a.split("/")))[-1].pipeline is None]
        self._status: dict[str, str] = {}
        self._durations: dict[str, float] = {}
        self._throttle = Throttle(self._push)
        self._unsubscribe: list = []
        self.ctx = None
        self.observe(self._on_breakpoints, names="breakpoints")
        if ctx is not None:
            self.attach(ctx)

    # -- following a run ----------------------------------------------------
    def attach(self, ctx) -> StageGraph:
        """Follow ``ctx``: colour stages by status; breakpoints apply to it."""
        self.detach()
        self.ctx = ctx
        self._status = _status_of_finished(ctx)
        self._durations = {}
        handlers = {
            "stage:start": self._on_stage, "stage:success": self._on_stage, "stage:paused": self._on_stage,
            "stage:failure": self._on_stage, "pipeline:paused": self._on_pipeline,
            "pipeline:failure": self._on_pipeline, "pipeline:success": self._on_pipeline,
        }
        self._unsubscribe = [ctx.on(name, fn) for name, fn in handlers.items()]
        ctx.breakpoints.clear()
        ctx.breakpoints.update(self.breakpoints)
        self.caption = f"{ctx.pipeline_id} · run {ctx.run_id[:8]} · {ctx.status}"
        self._throttle.poke()
        self._throttle.flush_now()
        return self

    def detach(self) -> None:
        for off in self._unsubscribe:
            off()
        self._unsubscribe = []
        self.ctx = None

    _CLOSING = {"stage:success": "success", "stage:paused": "paused", "stage:failure": "failed"}

    def _on_stage(self, event) -> None:
        addr = event.stage_address
        if event.name == "stage:start":
            self._status[addr] = "running"
        else:
            self._status[addr] = self._CLOSING[event.name]
            self._durations[addr] = round(event.duration * 1000, 2)
        self._throttle.poke()

    def _on_pipeline(self, event) -> None:
        if len(event.path) != 1:
            return
        if event.name == "pipeline:paused":
            at = "/".join(event.checkpoint.resume_at)
            if self._status.get(at) != "paused":
                self._status[at] = "paused"
        ctx = self.ctx
        self.caption = f"{ctx.pipeline_id} · run {ctx.run_id[:8]} · {event.name.split(':')[1]}"
        self._throttle.poke()
        self._throttle.flush_now()

    def _push(self) -> None:
        self.status = dict(self._status)
        self.durations = dict(self._durations)

    @property
    def redraws(self) -> int:
        return self._throttle.count

    # -- breakpoints ---------------------------------------------------------
    def _on_breakpoints(self, change) -> None:
        # May run on a comm thread: only plain set operations on the context.
        ctx = self.ctx
        if ctx is not None:
            wanted = set(change["new"])
            ctx.breakpoints.difference_update(ctx.breakpoints - wanted)
            ctx.breakpoints.update(wanted)

    def toggle_breakpoint(self, address: str) -> None:
        """What a click on a stage does."""
        bps = list(self.breakpoints)
        self.breakpoints = [b for b in bps if b != address] if address in bps else bps + [address]


def _status_of_finished(ctx) -> dict:
    """Statuses a newly attached graph can tell from the run as it stands."""
    status: dict[str, str] = {}
    leaves = {"/".join(a) for a in ctx.pipeline.addresses()}
    for key in ctx.artifacts.keys():  # committed step outputs are recorded as "stage/.../step"
        addr = key.rsplit("/", 1)[0]
        if addr in leaves:
            status[addr] = "success"
    if ctx.status in ("paused", "failed", "aborted"):
        status[ctx.position] = "paused" if ctx.status == "paused" else "failed"
    return status

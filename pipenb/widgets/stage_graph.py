"""``StageGraph``: the pipeline's stage graph, coloured live as a run goes.

The SVG is laid out once (Graphviz ``dot`` when installed, else pipenb's own
layout); live updates only send a small ``{address: status}`` map that the
browser applies to the drawn nodes. The run is followed through an
``EventLog``: at most ten times a second the graph asks it, in one bulk pass,
for each stage's last event, instead of hearing every event.
Clicking a stage toggles a breakpoint.
"""

from __future__ import annotations

import pathlib
import threading

import anywidget
import traitlets

from pipenb.core.events import PathNode

from ..graph import PALETTE, to_svg
from .throttle import Ticker

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
    palette = traitlets.Dict(PALETTE).tag(sync=True)

    def __init__(self, pipeline, ctx=None, **kwargs):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.add_class("pipenb-stage-graph")
        self.layout = "graphviz" if _dot_available() else "builtin"
        self.svg = to_svg(pipeline)  # falls back to the built-in layout without `dot`
        self.leaves = [a for a in ("/".join(x) for x in pipeline.addresses())
                       if pipeline.resolve(tuple(a.split("/")))[-1].pipeline is None]
        self._addresses = _stage_paths(pipeline)  # event path -> stage address, for every stage
        self._status: dict[str, str] = {}
        self._durations: dict[str, float] = {}
        self._log = None              # the attached run's EventLog
        self._folded = 0              # events of the log already folded into _status
        self._dirty = False
        self._ticker = Ticker(self._push, self._changed)
        self._lock = threading.Lock()
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
        with self._lock:
            self._status = _status_of_finished(ctx)
            self._durations = {}
            self._log, self._folded = ctx.record(), 0
        self._unsubscribe = [ctx.on(name, self._on_pipeline) for name in
                             ("pipeline:start", "pipeline:paused", "pipeline:failure", "pipeline:success")]
        ctx.breakpoints.clear()
        ctx.breakpoints.update(self.breakpoints)
        self.caption = f"{ctx.pipeline_id} · run {ctx.run_id[:8]} · {ctx.status}"
        self._dirty = True
        self._ticker.flush_now()
        if ctx.status == "running":
            self._ticker.start()
        return self

    def detach(self) -> None:
        for off in self._unsubscribe:
            off()
        self._unsubscribe = []
        self._ticker.stop()
        if self._log is not None:
            self._log.close()
        self.ctx = None

    _STATUS_OF = {"stage:start": "running", "stage:success": "success", "stage:paused": "paused",
                  "stage:failure": "failed"}
    _ENDS = ("stage:success", "stage:paused", "stage:failure")

    def _changed(self) -> bool:
        return self._dirty or (self._log is not None and len(self._log) != self._folded)

    def _fold(self) -> None:
        """Bring statuses and durations up to the log's end: one bulk pass, then a few events."""
        log = self._log
        if log is None:
            return
        start, stop = self._folded, len(log)
        if start == stop:
            return
        status, durations, addresses = self._status, self._durations, self._addresses
        for path, i in log.last_by_path(self._STATUS_OF, start, stop, addresses).items():
            status[addresses[path]] = self._STATUS_OF[log.names(i, i + 1)[0]]
        for path, i in log.last_by_path(self._ENDS, start, stop, addresses).items():
            durations[addresses[path]] = round(log[i].duration * 1000, 4)
        self._folded = stop

    def _on_pipeline(self, event) -> None:
        if len(event.path) != 1:
            return
        if event.name == "pipeline:start":
            self._ticker.start()
            return
        self._ticker.stop()
        with self._lock:
            self._fold()
            if event.name == "pipeline:paused":
                self._status["/".join(event.checkpoint.resume_at)] = "paused"
        ctx = self.ctx
        self.caption = f"{ctx.pipeline_id} · run {ctx.run_id[:8]} · {event.name.split(':')[1]}"
        self._dirty = True
        self._ticker.flush_now()

    def _push(self) -> None:
        with self._lock:
            self._fold()
            self._dirty = False
            status, durations = dict(self._status), dict(self._durations)
        self.status = status
        self.durations = durations

    @property
    def redraws(self) -> int:
        return self._ticker.count

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


def _stage_paths(pipeline, parent: tuple = (), prefix: str = "") -> dict:
    """Every stage's event path (what its events carry), mapped to its address."""
    out = {}
    for stage in pipeline.stages:
        path = parent + (PathNode(pipeline.id, stage.id),)
        out[path] = prefix + stage.id
        if stage.pipeline is not None:
            out.update(_stage_paths(stage.pipeline, path, prefix + stage.id + "/"))
    return out


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

"""``StageGraph``: the pipeline's stage graph, coloured live as a run goes.

The SVG is laid out once (Graphviz ``dot`` when installed, else pipenb's own
layout); live updates only send a small ``{address: status}`` map that the
browser applies to the drawn nodes. The run is followed through an
``EventLog``: at most ten times a second the graph asks it, in one bulk pass,
for each stage's last event, instead of hearing every event.
A running stage whose step reports ``ctx.progress(...)`` carries a bar and
the step's message (``progress``: the last report of each running stage,
dropped when a new step starts or the stage ends).
What the run did is drawn on the graph (SPEC 14): stages visited more than
once with their count, every edge taken with its count, a move no edge
declares as an extra "undeclared" edge, stale stages (code changed since
they ran) outlined, conditional breakpoints dashed with a "?"; those are read
from the run's history when it commits a stage and laid out again off the
run's loop (graph_render.py), at most a few times a second.
Clicking a stage toggles a breakpoint. The graph follows its run through
an owned ``RunFollower`` (follower.py); its JS and CSS are the files beside
this module, given to anywidget as paths (hot reload with ``ANYWIDGET_HMR=1``).
"""

from __future__ import annotations

import html
import math
import pathlib
import threading

import anywidget
import traitlets

from pipenb.core.errors import AbortedError
from pipenb.core.events import stage_paths
from pipenb.core.lifecycle import ABORTED, PAUSED, is_resumable
from pipenb.display import short_id

from ..graph import PALETTE, to_svg
from .follower import RunFollower
from .graph_render import BackgroundRender, RunMarksReader
from .snapshot import Snapshot, close_tree, inline_svg

HERE = pathlib.Path(__file__).parent


def _dot_available() -> bool:
    import shutil

    return shutil.which("dot") is not None


def _number(value):
    """A progress count as JSON can carry it (numpy numbers, Decimals, ...), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _report(event) -> dict:
    """A ``step:progress`` event as the browser draws it (the message stays plain text)."""
    message = event.message
    return {
        "step": str(event.step_id),
        "done": _number(event.done),
        "total": _number(event.total),
        "message": None if message is None else str(message)[:300],
    }


class StageGraph(Snapshot, anywidget.AnyWidget):
    """A pipeline's stage graph, coloured live by a run: statuses, durations, progress bars, breakpoints.

    Graphviz lays it out when the ``dot`` program is there (sub-pipelines as clusters, router
    jumps dashed), else a built-in layered layout. Click a stage to set or clear a
    breakpoint there. A run's marks are drawn on it: stages visited more than once with their
    count, edges taken with theirs, undeclared jumps, stale stages, conditional breakpoints.
    It fits the output's width; zoom buttons, ctrl+wheel and dragging zoom and pan.
    Its saved output keeps the last drawn SVG as a static snapshot::

        graph = StageGraph(pipeline, ctx)       # or StageGraph(pipeline).attach(ctx)
        graph.set_breakpoints(["train"])        # on the graph and on ctx.breakpoints
        graph.status                            # {"load": "success", "train": "running", ...}
    """

    _esm = HERE / "stage_graph.js"
    _css = HERE / "stage_graph.css"

    svg = traitlets.Unicode("").tag(sync=True)
    # "graphviz" or "builtin". Not ``layout``: that is every DOM widget's Layout widget, and a
    # string there makes the browser's widget manager fail to build a view (TypeError in create_view).
    layout_engine = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Dict({}).tag(sync=True)  # address -> one of STATUSES
    durations = traitlets.Dict({}).tag(sync=True)  # address -> last duration, ms
    # address of a running stage -> its step's last report {"step", "done", "total", "message"}
    progress = traitlets.Dict({}).tag(sync=True)
    breakpoints = traitlets.List(traitlets.Unicode()).tag(sync=True)
    leaves = traitlets.List(traitlets.Unicode()).tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    palette = traitlets.Dict(PALETTE).tag(sync=True)

    def __init__(self, pipeline, ctx=None, **kwargs):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.add_class("pipenb-stage-graph")
        self.layout_engine = "graphviz" if _dot_available() else "builtin"
        self.svg = to_svg(pipeline)  # falls back to the built-in layout without `dot`
        self.leaves = pipeline.leaves()
        self._addresses = stage_paths(pipeline)  # event path -> stage address, for every stage
        self.addresses = sorted(set(self._addresses.values()))  # every stage address a breakpoint may name
        self._status: dict[str, str] = {}
        self._durations: dict[str, float] = {}
        self._progress: dict[str, dict] = {}
        self._log = None  # the attached run's EventLog
        self._folded = 0  # events of the log already folded into _status
        self._dirty = False
        self._lock = threading.Lock()
        self.ctx = None  # the run followed
        # What the run did (visits, edges taken, undeclared moves, stale stages) is drawn into the SVG.
        self._marks = RunMarksReader(pipeline)  # stale: what ran other code than the pipeline drawn
        self._render = BackgroundRender(lambda marks: to_svg(pipeline, **marks), self._set_svg)
        self.follower = RunFollower(
            self.redraw,
            self._changed,
            started=self._run_started,
            stopped=self._run_stopped,
            settled=lambda event: self.refresh_snapshot(),
        )
        self.observe(self._on_breakpoints, names="breakpoints")
        if ctx is not None:
            self.attach(ctx)

    # -- following a run ----------------------------------------------------
    def attach(self, ctx) -> StageGraph:
        """Follow ``ctx`` (after letting go of any run followed before): colour what it has done so far;
        breakpoints set in code and here both apply."""
        self.detach()
        self.ctx = ctx
        with self._lock:
            self._status = {address: "success" for address in ctx.committed_stages()}
            if is_resumable(ctx.status):
                self._status[ctx.position] = {PAUSED: "paused", ABORTED: "aborted"}.get(ctx.status, "failed")
            self._durations = {}
            self._progress = {}
            self._log, self._folded = self.follower.open_log(ctx), 0
        wanted = set(ctx.breakpoints) | set(self.breakpoints)
        ctx.breakpoints.update(wanted)
        # Addresses set on the context by code that this graph has no stage for are not drawn.
        self.breakpoints = sorted(wanted & set(self.addresses))
        self.caption = f"{ctx.pipeline_id} · run {short_id(ctx.run_id)} · {ctx.status}"
        self._dirty = True
        self._marks.forget()
        self.follower.follow(ctx)
        return self

    def refresh(self) -> None:
        """Read the followed run's marks again and redraw them: after ``factory.resume`` rebound it to a new
        definition (stale stages), or breakpoint conditions were set in code (``ctx.breakpoints.add``)."""
        ctx = self.ctx
        if ctx is not None:
            self._render.submit(self._marks.read(ctx, force=True))

    def _set_svg(self, svg: str) -> None:
        if self.ctx is not None:  # drawn for a run let go of since: not shown
            self.svg = svg

    def detach(self) -> None:
        """Let go of the run: its listeners and the log opened for it (what is drawn stays)."""
        self.follower.stop()
        self._marks.forget()
        self._log = None
        self.ctx = None

    _STATUS_OF = {
        "stage:start": "running",
        "stage:success": "success",
        "stage:paused": "paused",
        "stage:failure": "failed",
    }
    _ENDS = ("stage:success", "stage:paused", "stage:failure")
    # A stage's progress is its step's last report while no later one of these came.
    _PROGRESS_SEEN = (*_STATUS_OF, "step:start", "step:progress")

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
            name = log.names(i, i + 1)[0]
            aborted = name == "stage:failure" and isinstance(log[i].error, AbortedError)
            status[addresses[path]] = "aborted" if aborted else self._STATUS_OF[name]
        for path, i in log.last_by_path(self._ENDS, start, stop, addresses).items():
            durations[addresses[path]] = round(log[i].duration * 1000, 4)
        progress = self._progress
        for path, i in log.last_by_path(self._PROGRESS_SEEN, start, stop, addresses).items():
            address = addresses[path]
            if log.names(i, i + 1)[0] == "step:progress" and status.get(address) == "running":
                progress[address] = _report(log[i])
            else:
                progress.pop(address, None)
        for address in [a for a in progress if status.get(a) != "running"]:
            del progress[address]
        self._folded = stop

    def _run_started(self, event) -> None:
        # The run continues: a stage shown paused either committed before its router paused (success now)
        # or is where a breakpoint or request stopped (about to run).
        committed = self.ctx.committed_stages()
        with self._lock:
            for address, status in list(self._status.items()):
                if status == "paused":
                    self._status[address] = "success" if address in committed else "pending"
            self._dirty = True
        self.caption = f"{self.ctx.pipeline_id} · run {short_id(self.ctx.run_id)} · running"

    def _run_stopped(self, event) -> None:
        with self._lock:
            self._fold()
            if event.name == "pipeline:paused":
                self._status["/".join(event.checkpoint.resume_at)] = "paused"
            elif event.name == "pipeline:failure" and isinstance(event.error, AbortedError):
                self._status[self.ctx.position] = "aborted"  # also when aborted before its stage started
            self._progress = {}  # the run stopped: no step is going
        aborted = event.name == "pipeline:failure" and isinstance(event.error, AbortedError)
        how = "aborted" if aborted else event.name.split(":")[1]
        self.caption = f"{self.ctx.pipeline_id} · run {short_id(self.ctx.run_id)} · {how}"
        self._dirty = True

    def redraw(self) -> None:
        """Send the statuses, durations and progress as the log has them now."""
        with self._lock:
            self._fold()
            self._dirty = False
            status, durations, progress = dict(self._status), dict(self._durations), dict(self._progress)
        self.status = status
        self.durations = durations
        self.progress = progress
        self._run_marks()

    def _run_marks(self) -> dict:
        """The followed run's marks (``to_svg`` keyword arguments); a change is sent to be drawn."""
        ctx = self.ctx
        if ctx is None:
            return {}
        marks = self._marks.read(ctx)
        if marks is not None:
            self._render.submit(marks)
        elif self._marks.deferred:
            self._dirty = True  # read on a later tick, also when no new event comes (a long step)
        return self._marks.marks

    def close(self) -> None:
        """Let go of the run (listeners, own logs) and close this widget and its layout."""
        self.detach()
        self._render.close()
        close_tree(self, super().close)

    # -- the static snapshot (SPEC 12) ----------------------------------------
    def snapshot_status(self) -> dict:
        """Each stage's status as the followed run left it (folded from the log now)."""
        with self._lock:
            self._fold()
            return dict(self._status)

    def snapshot_svg(self) -> str:
        """The graph as inline SVG, stages filled by status, breakpoints outlined, the run's marks drawn."""
        marks = self._run_marks()
        return inline_svg(to_svg(self.pipeline, self.snapshot_status(), list(self.breakpoints), **marks))

    def snapshot_text(self) -> str:
        return f"StageGraph of pipeline {self.pipeline.id!r}" + (f" ({self.caption})" if self.caption else "")

    def snapshot_html(self) -> str:
        caption = f"<div>{html.escape(self.caption)}</div>" if self.caption else ""
        return f'<div class="pipenb-snapshot pipenb-snapshot-graph">{self.snapshot_svg()}{caption}</div>'

    # -- breakpoints ---------------------------------------------------------
    def _check_addresses(self, addresses) -> list[str]:
        if isinstance(addresses, str):
            addresses = [addresses]
        wanted = list(dict.fromkeys(addresses))
        known = set(getattr(self, "addresses", ()))  # not set yet while traitlets builds the widget
        unknown = [a for a in wanted if a not in known] if known else []
        if unknown:
            raise ValueError(
                f"no stage {', '.join(map(repr, unknown))} in pipeline {self.pipeline.id!r}: breakpoints must "
                f"name stage addresses, one of: {', '.join(self.addresses)}"
            )
        return wanted

    @traitlets.validate("breakpoints")
    def _valid_breakpoints(self, proposal):
        # A misspelled breakpoint is refused (never kept, never silently ignored by the run).
        return self._check_addresses(proposal["value"])

    def set_breakpoints(self, addresses) -> None:
        """Set the breakpoints to ``addresses`` (stage addresses); ValueError naming the stages that exist."""
        self.breakpoints = self._check_addresses(list(addresses) if not isinstance(addresses, str) else [addresses])

    def _on_breakpoints(self, change) -> None:
        # May run on a comm thread: only plain set operations on the context.
        ctx = self.ctx
        if ctx is not None:
            wanted = set(change["new"])
            ctx.breakpoints.difference_update(ctx.breakpoints - wanted)
            ctx.breakpoints.update(wanted)
            # A conditional breakpoint clicked away: drawn plain again (the history is not read here).
            marks = self._marks.without_conditions_gone(ctx.breakpoints.conditional)
            if marks is not None:
                self._render.submit(marks)

    def toggle_breakpoint(self, address: str) -> None:
        """What a click on a stage does; ValueError for an address the pipeline does not have."""
        self._check_addresses([address])
        bps = list(self.breakpoints)
        self.breakpoints = [b for b in bps if b != address] if address in bps else bps + [address]

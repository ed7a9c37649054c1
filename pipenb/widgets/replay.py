"""``RunReplay``: scrub through a finished (or paused) run on its graph; nothing runs again (SPEC 14).

Teaching and debugging a looping pipeline means asking "what had happened
when it got here?": at position ``i`` the replay shows the graph with the
stages run so far, the stage of record ``i`` highlighted, visit counts and
the moves taken so far, the state after record ``i`` with the keys it
changed marked, and that stage's events when they were recorded. A second
run (``compare=``) is shown beside it, aligned record by record, with the
divergence marked.

The graph is laid out once (Graphviz when installed); a position is a small
dict (replay_frames.py) the browser applies to the drawn nodes and edges, so
scrubbing a 10,000-record run stays responsive. Play, pause, speed and the
scrubber live in the browser (replay.js): it only moves ``position``, at most
ten times a second; the kernel answers with the frame, computed on the loop
the replay was made on (JupyterLab may deliver the move on a subshell
thread; ``position`` set from code on the loop is drawn at once). The source
is read, never resumed or run.
"""

from __future__ import annotations

import html
import pathlib

import anywidget
import traitlets

from pipenb.display import short_id

from ..display import state_html
from ..graph import to_svg
from .replay_frames import Frames, addresses_svg, edge_ids
from .snapshot import Snapshot, close_tree, inline_svg
from .throttle import Debounce, LoopCall


HERE = pathlib.Path(__file__).parent
SETTLE = 0.5  # seconds without a move before the static snapshot is redrawn
SNAPSHOT_TIMELINE = 2000  # records up to which the static snapshot carries the timeline (it grows with them)


def _is_context(source) -> bool:
    return hasattr(source, "history") and hasattr(source, "run_id") and hasattr(source, "pipeline")


def resolve(source) -> tuple:
    """(history, pipeline or None, run id or None) of a replay's source: a ``RunContext``, a ``History`` or
    ``(factory, run_id)`` (read from the factory's registry or store, not resumed)."""
    from pipenb.core.history import History

    if isinstance(source, History):
        return source, source.definition, None
    if _is_context(source):
        return source.history, source.pipeline, source.run_id
    if isinstance(source, tuple) and len(source) == 2 and hasattr(source[0], "pipeline"):
        factory, run_id = source
        from pipenb import run_sync
        from pipenb.core.errors import PipelineError

        try:
            history = run_sync(factory.run_history(run_id))
        except PipelineError as exc:
            raise ValueError(f"RunReplay of pipeline {factory.pipeline.id!r}: {exc}") from None
        return history, factory.pipeline, run_id
    raise TypeError(
        f"RunReplay: the source must be a RunContext, a History or (factory, run_id), "
        f"got {type(source).__name__}: {source!r:.200}"
    )


def _graph(history, pipeline) -> tuple[str, dict]:
    """The drawing every position restyles (the pipeline's graph, or the stages reached when it is unknown),
    and the element id of the edge each move of the run went along."""
    if pipeline is None:
        return addresses_svg(history.address_list()), {}
    # Drawn with every move of the whole run, so each has its edge from the start (graph.py draws the
    # undeclared ones over the layout, never moving a stage); the browser shows each once it is taken.
    moves = history.transitions()
    return to_svg(pipeline, transitions=moves), edge_ids(pipeline, moves)


def _timeline(history, events) -> str:
    from ..timeline import timeline_svg

    return inline_svg(timeline_svg(history, events))


class RunReplay(Snapshot, anywidget.AnyWidget):
    """A scrubber over a run's records (SPEC 14). ``len(replay)`` records; ``position`` (read and set,
    clamped), ``record`` (the ``StageRecord`` there), ``state`` (the state after it). Nothing runs again.

    ``events``: the run's recorded events (an ``EventLog`` from ``ctx.record()``, or events), to show each
    stage's; ``compare_events`` the same for ``compare``.
    """

    _esm = HERE / "replay.js"
    _css = HERE / "replay.css"

    svg = traitlets.Unicode("").tag(sync=True)
    svg_b = traitlets.Unicode("").tag(sync=True)
    edges = traitlets.Dict({}).tag(sync=True)  # "from\0to" -> the id of the drawn edge that move went along
    edges_b = traitlets.Dict({}).tag(sync=True)
    timeline = traitlets.Unicode("").tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    caption_b = traitlets.Unicode("").tag(sync=True)
    count = traitlets.Int(0).tag(sync=True)
    position = traitlets.Int(0).tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    speed = traitlets.Float(5.0).tag(sync=True)  # records a second while playing
    frame = traitlets.Dict({}).tag(sync=True)
    frame_b = traitlets.Dict({}).tag(sync=True)
    diverged_at = traitlets.Int(-1).tag(sync=True)  # -1: the two runs never part (or no comparison)
    compare_html = traitlets.Unicode("").tag(sync=True)
    _settle = None  # the snapshot's debounce (none yet when a bad source stopped the building)

    def __init__(self, source, *, compare=None, events=None, compare_events=None, **kwargs):
        history, pipeline, run_id = resolve(source)
        super().__init__(**kwargs)
        self.add_class("pipenb-replay")
        self.history, self.pipeline, self.run_id = history, pipeline, run_id
        events = list(events) if events is not None else None  # an EventLog builds its events on each read
        self.frames = Frames(history, events)
        self.count = len(self.frames)
        self.caption = self._caption(history, run_id)
        self.svg, self.edges = _graph(history, pipeline)
        self.timeline = _timeline(history, events)
        self.other = None
        if compare is not None:
            self._set_compare(compare, compare_events)
        self._settle = Debounce(self.refresh_snapshot, SETTLE)
        self._call = LoopCall()  # the loop (and thread) the replay was made on: moves are drawn there
        self.observe(self._moved, names="position")
        self._show(self.position)

    def _set_compare(self, compare, events) -> None:
        other, pipeline, run_id = resolve(compare)
        events = list(events) if events is not None else None
        self.other = other
        self.frames_b = Frames(other, events)
        self.comparison = self.history.compare(other)
        self.diverged_at = -1 if self.comparison.diverged_at is None else self.comparison.diverged_at
        self.caption_b = self._caption(other, run_id)
        self.svg_b, self.edges_b = _graph(other, pipeline if pipeline is not None else self.pipeline)

    @staticmethod
    def _caption(history, run_id) -> str:
        who = f"run {short_id(run_id)}" if run_id else "history"
        return f"{who} · {len(history)} records"

    # -- from code ------------------------------------------------------------
    def __len__(self) -> int:
        return self.count

    @traitlets.validate("position")
    def _clamp(self, proposal) -> int:
        return max(0, min(int(proposal["value"]), max(self.count - 1, 0)))

    @property
    def record(self):
        """The ``StageRecord`` at the position (None for a run with no record)."""
        return self.history[self.position] if self.count else None

    @property
    def state(self):
        """The state after the record at the position (the run's initial state when it has none)."""
        return self.history[self.position].state if self.count else self.history.initial

    def changed_keys(self) -> list:
        """The top-level keys the record at the position changed."""
        return list(self.history.diff(self.position).keys) if self.count else []

    # -- drawing a position -------------------------------------------------------
    def _moved(self, change) -> None:
        # May come on a comm thread: the drawing is handed to the replay's loop (done now when this is that
        # thread, or there is none, so ``record``, ``state`` and ``frame`` agree as soon as code sets it).
        self._call(self._draw)

    def _draw(self) -> None:
        """Show the position as it is now (moves that came faster than the loop drew them are drawn once); the
        snapshot follows once it settles, and at the end of the cell that moved it (a notebook run by nbconvert
        keeps the last position)."""
        i = self.position
        if self.frame.get("i") != i:
            self._show(i)
        self._settle()
        self.refresh_snapshot_later()

    def _show(self, i: int) -> None:
        """Send position ``i``'s frame (and the compared run's at the same index)."""
        self.frame = self.frames.frame(i)
        if self.other is not None:
            self.frame_b = self.frames_b.frame(min(i, len(self.frames_b) - 1)) if len(self.frames_b) else {}
            self.compare_html = self._comparison_html(i)

    def _comparison_html(self, i: int) -> str:
        at = self.comparison.diverged_at
        if at is None:
            return '<div class="pipenb-replay-same">the runs do not part</div>'
        where = f"the runs part at record #{at}"
        if i < at:
            return f'<div class="pipenb-replay-same">same so far · {html.escape(where)}</div>'
        if i >= len(self.comparison):
            return f'<div class="pipenb-replay-diverged">{html.escape(where)} · one run has ended</div>'
        from ..display import diff_html

        return (
            f'<div class="pipenb-replay-diverged">{html.escape(where)}: the second run\'s state compared with '
            f"the first's here</div>{diff_html(self.comparison.diff(i))}"
        )

    # -- the static snapshot (SPEC 12) ------------------------------------------
    def snapshot_svg(self) -> str:
        """The graph at the position: what had run, visit counts, moves taken, the record's stage marked."""
        if self.pipeline is None or not self.count:
            return inline_svg(self.svg)
        frame = self.frames.frame(self.position)
        status = {address: "success" for address in frame["visits"]}
        moves = {(a, b): n for a, b, n in frame["edges"]}
        return inline_svg(
            to_svg(self.pipeline, status, visits=frame["visits"], transitions=moves, current=frame["current"])
        )

    def snapshot_text(self) -> str:
        return f"RunReplay ({self.caption}) at record {self.position}"

    def snapshot_html(self) -> str:
        frame = self.frame if self.frame.get("i") == self.position else self.frames.frame(self.position)
        head = (
            f"<div><b>replay</b> {html.escape(self.caption)} · record {self.position + 1} of {self.count}"
            + (f" · #{frame['seq']} <code>{html.escape(frame['address'])}</code>" if self.count else "")
            + "</div>"
        )
        state = frame.get("state_html") or state_html(self.state)
        timeline = self.timeline if self.count <= SNAPSHOT_TIMELINE else ""
        compared = ""  # the second run, as the widget shows it beside the first: where they part, and how
        if self.other is not None:
            compared = (f"<div><b>compared with</b> {html.escape(self.caption_b)}</div>"
                        f"{self._comparison_html(self.position)}")
        return (
            f'<div class="pipenb-snapshot pipenb-snapshot-replay">{head}'
            f'<div style="display:flex;gap:12px;align-items:flex-start"><div>{self.snapshot_svg()}</div>'
            f"<div>{state}{frame.get('diff_html', '')}{compared}</div></div>{timeline}</div>"
        )

    def close(self) -> None:
        """Close this widget and its layout (the source run is untouched)."""
        if self._settle is not None:
            self._settle.cancel()
        close_tree(self, super().close)

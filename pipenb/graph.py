"""Pipeline → networkx graph, Graphviz DOT, and SVG, with a run drawn on it.

networkx is the data view (for analysis and tests), Graphviz the picture.
Nodes are stage addresses (``"train/fit"``); a sub-pipeline stage is drawn as
a cluster around its stages. When the ``dot`` program is missing or fails (a
bare ``pip install``, a label ``dot`` refuses...), ``to_svg`` falls back to a
simple layered drawing of our own (graph_builtin.py) so a notebook always
shows something. Both draw a run's marks with the same keyword arguments
(visit counts, edges taken, undeclared moves, stale stages, conditional
breakpoints, the current stage: graph_marks.py), so the StageGraph widget,
RunReplay and the HTML report share one picture of a run.

Every SVG made here is well-formed XML whatever the labels and ids hold:
user text is cleaned (graph_style.py), HTML-escaped, and shown cut to
``LABEL_CHARS`` characters with the full text (capped at ``TOOLTIP_CHARS``)
in the node's tooltip.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import TYPE_CHECKING, Mapping, NamedTuple

from .graph_builtin import fallback_svg
from .graph_labels import Move, add_badges, add_edge_counts, add_undeclared, fit_counts, node_boxes
from .graph_marks import RunMarks
from .graph_style import (
    BREAKPOINT_COLOUR,
    CLUSTER_COLOUR,
    CURRENT_COLOUR,
    EDGE_COLOUR,
    LABEL_CHARS,
    PALETTE,
    ROUTE_COLOUR,
    STALE_COLOUR,
    STATUS_COLOURS,
    STATUSES,
    TAKEN_COLOUR,
    TOOLTIP_CHARS,
    UNDECLARED_COLOUR,
    clean_text,
    node_id,
    shown_text,
    tooltip_text,
)

if TYPE_CHECKING:
    from .core.definitions import Pipeline

__all__ = [
    "BREAKPOINT_COLOUR",
    "CLUSTER_COLOUR",
    "CURRENT_COLOUR",
    "EDGE_COLOUR",
    "LABEL_CHARS",
    "PALETTE",
    "ROUTE_COLOUR",
    "STALE_COLOUR",
    "STATUSES",
    "STATUS_COLOURS",
    "TAKEN_COLOUR",
    "TOOLTIP_CHARS",
    "UNDECLARED_COLOUR",
    "RunMarks",
    "clean_text",
    "fallback_svg",
    "node_id",
    "to_graphviz",
    "to_networkx",
    "to_svg",
]


def to_networkx(pipeline: Pipeline):
    """``Pipeline.to_networkx()``: the stages as nodes by address (label, kind, order, parent), run-order and route edges."""
    import networkx as nx

    g = nx.DiGraph(pipeline_id=pipeline.id)
    for info in pipeline.walk():
        stage, pipe = info.stage, info.pipeline
        g.add_node(
            info.key,
            label=stage.label,
            order=pipe.position[stage.id],
            kind=stage.kind,
            stage_id=stage.id,
            pipeline_id=pipe.id,
            parent="/".join(info.address[:-1]) or None,
            depth=len(info.address) - 1,
        )
    for tail, head, kind in pipeline.edges():
        g.add_edge(tail.key, head.key, kind=kind)
    return g


def _first_leaf(stage, addr: tuple) -> tuple:
    while stage.pipeline is not None:
        stage = stage.pipeline.ordered[0]
        addr = addr + (stage.id,)
    return addr


def _last_leaf(stage, addr: tuple) -> tuple:
    while stage.pipeline is not None:
        stage = stage.pipeline.ordered[-1]
        addr = addr + (stage.id,)
    return addr


def _dot_text(text: str) -> str:
    """Cleaned text as a DOT string: backslashes and ``<...>`` kept literal, and
    ``&`` escaped, since dot copies entity references (``&#1;``) into its SVG."""
    import graphviz

    return graphviz.escape(text.replace("&", "&amp;"))


def _node_attrs(key: str, status: Mapping[str, str], breakpoints, marks: RunMarks) -> dict:
    """A leaf stage's Graphviz attributes: fill by status; border by breakpoint, conditional breakpoint (dashed,
    a "?" before the label), stale code (a second outline) and the current position (thick)."""
    colours = PALETTE.get(status.get(key, "pending"), PALETTE["pending"])
    attrs = {"fillcolor": colours["fill"], "fontcolor": colours["text"], "color": colours["stroke"]}
    classes, style = [], "rounded,filled"
    if key in marks.conditional:
        attrs.update(penwidth="2.5", color=BREAKPOINT_COLOUR)
        classes.append("conditional")
        style += ",dashed"
    elif key in breakpoints:
        attrs.update(penwidth="2.5", color=BREAKPOINT_COLOUR)
        classes.append("breakpoint")
    if key in marks.stale:
        attrs.update(peripheries="2", color=STALE_COLOUR if "penwidth" not in attrs else attrs["color"])
        classes.append("stale")
    if key == marks.current:
        attrs.update(penwidth="4", color=CURRENT_COLOUR)
        classes.append("current")
    if marks.visit_badge(key):
        classes.append("revisited")  # the "×n" badge is added to the laid-out SVG (graph_labels.py)
    attrs["style"] = style
    if classes:
        attrs["class"] = " ".join(classes)
    return attrs


def _edge_attrs(kind: str, count: int) -> dict:
    """A declared edge's attributes: dashed purple for a route, thick once the run took it (its count is
    written on the laid-out SVG: graph_labels.py)."""
    attrs = {"class": kind}
    if kind == "route":
        attrs.update(style="dashed", color=ROUTE_COLOUR)
    if count:
        tip = f"taken {count} time{'s' if count != 1 else ''}"
        attrs.update({"class": f"{kind} taken", "color": TAKEN_COLOUR, "penwidth": "2.5", "tooltip": tip})
    return attrs


def to_graphviz(
    pipeline: Pipeline,
    status: Mapping[str, str] | None = None,
    breakpoints=(),
    *,
    visits=None,
    transitions=None,
    current=None,
    stale=(),
    conditional=(),
):
    """The stage graph as a ``graphviz.Digraph``, top to bottom (a pipeline is a chain: drawn downwards it stays as
    wide as its widest stage however many stages it has, and the widget zooms it to the output's width).
    The keyword arguments draw a run on it (see ``to_svg``); here the undeclared moves are edges ``dot``
    lays out, where ``to_svg`` draws them over the finished layout."""
    marks = RunMarks.of(pipeline, visits, transitions, current, stale, conditional)
    return _digraph(pipeline, status, breakpoints, marks, with_undeclared=True)


def _digraph(pipeline: Pipeline, status, breakpoints, marks: RunMarks, *, with_undeclared: bool):
    import graphviz

    infos = list(pipeline.walk())
    graph_attr = {"rankdir": "TB", "compound": "true", "fontname": "Helvetica", "nodesep": "0.3", "ranksep": "0.35"}
    dot = graphviz.Digraph(_dot_text(clean_text(pipeline.id, LABEL_CHARS)), graph_attr=graph_attr)
    node_style = {"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "11"}
    dot.attr("node", fontcolor=PALETTE["pending"]["text"], **node_style)
    dot.attr("edge", fontname="Helvetica", fontsize="10", color=EDGE_COLOUR)
    # DOT names are generated ("n0", "n1", ...): user ids may hold ':' (a port in
    # DOT edges), quotes or backslashes. The address lives in the escaped `id`.
    dot_name = {info.key: f"n{i}" for i, info in enumerate(infos)}
    children = defaultdict(list)  # parent address -> its stages, in run order
    for info in infos:
        children[info.address[:-1]].append(info)
    _add_stages(dot, (), _Stages(children, dot_name, status or {}, set(breakpoints), marks))
    _add_edges(dot, pipeline, dot_name, marks, with_undeclared)
    return dot


class _Stages(NamedTuple):
    """What drawing the stages needs: the stages by parent, their DOT names, and what to mark them with."""

    children: dict
    dot_name: dict
    status: Mapping[str, str]
    breakpoints: set
    marks: RunMarks


def _add_stages(container, prefix: tuple, stages: _Stages) -> None:
    """The stages under ``prefix``: a leaf as a node, a sub-pipeline as a cluster holding its own stages."""
    marks = stages.marks
    for info in stages.children[prefix]:
        stage, key = info.stage, info.key
        text = _dot_text(("? " if key in marks.conditional else "") + shown_text(stage, "\n"))
        tip = _dot_text(_node_tip(info, stages.breakpoints, marks))
        name = stages.dot_name[key]
        if stage.pipeline is None:
            attrs = _node_attrs(key, stages.status, stages.breakpoints, marks)
            container.node(name, label=text, id=_dot_text(node_id(key)), tooltip=tip, **attrs)
            continue
        with container.subgraph(name="cluster_" + name) as sub:
            cluster = {"style": "rounded,dashed", "color": CLUSTER_COLOUR, "fontname": "Helvetica", "fontsize": "11"}
            sub.attr(label=text, tooltip=tip, id=_dot_text("cluster-" + node_id(key)), **cluster)
            _add_stages(sub, info.address, stages)


def _add_edges(dot, pipeline: Pipeline, dot_name: dict, marks: RunMarks, with_undeclared: bool) -> None:
    """The declared edges (``pipenb-edge-<i>``, counted when taken), then the run's undeclared moves
    (``pipenb-edge-u<j>``), which do not constrain the layout."""
    for i, (tail_info, head_info, kind) in enumerate(pipeline.edges()):
        tail = _last_leaf(tail_info.stage, tail_info.address)
        head = _first_leaf(head_info.stage, head_info.address)
        attrs = _edge_attrs(kind, marks.edge_counts.get(i, 0))
        if tail_info.stage.pipeline is not None:
            attrs["ltail"] = "cluster_" + dot_name[tail_info.key]
        if head_info.stage.pipeline is not None:
            attrs["lhead"] = "cluster_" + dot_name[head_info.key]
        if kind == "route" and tail == head:
            attrs.pop("ltail", None)
            attrs.pop("lhead", None)
        dot.edge(dot_name["/".join(tail)], dot_name["/".join(head)], id=f"pipenb-edge-{i}", **attrs)
    for j, (tail, head, n) in enumerate(_undeclared_ends(pipeline, marks) if with_undeclared else ()):
        a, b = marks.undeclared[j][:2]
        text = f"undeclared move {a} → {b}: {n} time{'s' if n != 1 else ''} (not in the router's routes)"
        style = {"style": "dashed", "color": UNDECLARED_COLOUR, "penwidth": "2", "constraint": "false"}
        dot.edge(
            dot_name[tail],
            dot_name[head],
            id=f"pipenb-edge-u{j}",
            tooltip=_dot_text(clean_text(text, TOOLTIP_CHARS)),
            **{"class": "undeclared"},
            **style,
        )


def _undeclared_ends(pipeline: Pipeline, marks: RunMarks) -> list[tuple[str, str, int]]:
    """The stages each undeclared move is drawn between (a sub-pipeline's last or first stage) and its count."""
    infos = {info.key: info for info in pipeline.walk()}
    return [
        (
            "/".join(_last_leaf(infos[a].stage, infos[a].address)),
            "/".join(_first_leaf(infos[b].stage, infos[b].address)),
            n,
        )
        for a, b, n in marks.undeclared
    ]


def _counts_on_edges(pipeline: Pipeline, marks: RunMarks) -> dict:
    """``{edge id: (text, colour, tail node id, head node id)}`` for every declared edge the run took."""
    counts = {}
    for i, (tail_info, head_info, _kind) in enumerate(pipeline.edges()):
        n = marks.edge_counts.get(i)
        if n:
            tail = "/".join(_last_leaf(tail_info.stage, tail_info.address))
            head = "/".join(_first_leaf(head_info.stage, head_info.address))
            counts[f"pipenb-edge-{i}"] = (f"×{n}", TAKEN_COLOUR, node_id(tail), node_id(head))
    return counts


def _undeclared_moves(pipeline: Pipeline, marks: RunMarks) -> list[Move]:
    """The run's undeclared moves as graph_labels draws them over the layout."""
    moves = []
    for j, (tail, head, n) in enumerate(_undeclared_ends(pipeline, marks)):
        a, b = marks.undeclared[j][:2]
        tip = clean_text(f"undeclared move {a} → {b}: {n} time{'s' if n != 1 else ''} (not in the router's routes)")
        moves.append(Move(f"pipenb-edge-u{j}", node_id(tail), node_id(head), f"undeclared ×{n}", tip))
    return moves


def _node_tip(info, breakpoints, marks: RunMarks) -> str:
    """A stage's tooltip: its address and full label, then what the run says about it."""
    note = marks.node_note(info.key, info.key in breakpoints) if info.stage.pipeline is None else ""
    tip = tooltip_text(info.stage, info.key)
    return tip + "\n" + note if note else tip


# dot names its node and cluster <title>s after our generated names: give them the tooltip text instead.
_DOT_TITLE = re.compile(r'(class="(?:node|cluster)[^"]*">\s*)<title>((?:cluster_)?n\d+)</title>')


def _render_dot(pipeline: Pipeline, status: Mapping[str, str] | None, breakpoints, marks: dict) -> str:
    """Graphviz's SVG of the graph; raises whatever graphviz or ``dot`` raises."""
    checked, bps = RunMarks.of(pipeline, **marks), set(breakpoints)
    # Laid out without the undeclared moves: what the run did never moves a stage (they are drawn over it).
    dot = _digraph(pipeline, status, breakpoints, checked, with_undeclared=False)
    svg = dot.pipe(format="svg", quiet=True).decode("utf-8")
    titles = {}
    for i, info in enumerate(pipeline.walk()):
        tip = html.escape(_node_tip(info, bps, checked))
        titles[f"n{i}"] = titles[f"cluster_n{i}"] = f"<title>{tip}</title>"
    names = {f"n{i}": info.key for i, info in enumerate(pipeline.walk())}
    svg = _DOT_EDGE_TITLE.sub(
        lambda m: (
            f"<title>{html.escape(clean_text(names.get(m.group(1), '') + ' → ' + names.get(m.group(2), ''), TOOLTIP_CHARS))}</title>"
        ),
        svg,
    )
    svg = _DOT_TITLE.sub(lambda m: m.group(1) + titles.get(m.group(2), m.group(0)[len(m.group(1)) :]), svg)
    boxes = node_boxes(svg)
    svg = add_undeclared(
        add_edge_counts(svg, _counts_on_edges(pipeline, checked), boxes), _undeclared_moves(pipeline, checked), boxes
    )
    svg = add_badges(svg, {node_id(key): badge for key in checked.visits if (badge := checked.visit_badge(key))})
    return fit_counts(svg)


# dot names an edge's <title> after our generated node names ("n0->n1"): the stages' addresses read better.
_DOT_EDGE_TITLE = re.compile(r"<title>(n\d+)&#45;&gt;(n\d+)</title>")


def to_svg(
    pipeline: Pipeline,
    status: Mapping[str, str] | None = None,
    breakpoints=(),
    *,
    visits=None,
    transitions=None,
    current=None,
    stale=(),
    conditional=(),
) -> str:
    """SVG of the stage graph: Graphviz ``dot`` when it works, else the built-in layout.

    ``status`` maps stage addresses to one of ``STATUSES``; ``breakpoints`` are addresses. A run is drawn
    with the keyword arguments: ``visits`` ``{address: count}`` (a stage visited more than once is labelled
    "×count"), ``transitions`` ``{(from_address, to_address): count}`` (each edge taken is highlighted with
    its count; a move no edge declares is drawn as an extra dashed edge labelled "undeclared"), ``current``
    (the address highlighted as the stage at the position shown), ``stale`` (addresses whose code changed
    since their records ran: a second outline), ``conditional`` (addresses whose breakpoint has a condition:
    dashed, "?" before the label; a mapping names each condition in the tooltip). Bad arguments raise a
    TypeError naming them; otherwise never raises for a valid pipeline: whatever goes wrong with ``dot``
    (not installed, a crash, a string it refuses, output that is not well-formed XML), the built-in
    layout is drawn instead.
    """
    marks = {
        "visits": visits,
        "transitions": transitions,
        "current": current,
        "stale": stale if isinstance(stale, str) else tuple(stale),
        "conditional": conditional if isinstance(conditional, (Mapping, str)) else tuple(conditional),
    }
    RunMarks.of(pipeline, **marks)  # bad arguments are the caller's error, not a reason to fall back
    try:
        svg = _render_dot(pipeline, status, breakpoints, marks)
        ET.fromstring(svg)  # only well-formed SVG leaves here
        return svg
    except Exception:  # ExecutableNotFound, CalledProcessError, BrokenPipeError, OSError, ParseError, ...
        return fallback_svg(pipeline, status, breakpoints, **marks)

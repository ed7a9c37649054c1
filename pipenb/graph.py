"""Pipeline → networkx graph, Graphviz DOT, and SVG.

networkx is the data view (for analysis and tests), Graphviz the picture.
Nodes are stage addresses (``"train/fit"``); a sub-pipeline stage is drawn as
a cluster around its stages. When the ``dot`` program is missing or fails (a
bare ``pip install``, a label ``dot`` refuses...), ``to_svg`` falls back to a
simple layered drawing of our own so a notebook always shows something.

Every SVG made here is well-formed XML whatever the labels and ids hold:
user text is stripped of ANSI escapes and of the characters XML 1.0 forbids,
HTML-escaped, and shown cut to ``LABEL_CHARS`` characters with the full text
(capped at ``TOOLTIP_CHARS``) in the node's tooltip.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from .core.definitions import Pipeline

# The one palette of stage statuses: the static SVGs, and the StageGraph widget
# (synced as its ``palette`` trait, applied as CSS custom properties) read it.
# Fills are light pastels, so the text on them stays dark in every theme.
PALETTE: dict[str, dict[str, str]] = {
    "pending": {"fill": "#f4f4f5", "stroke": "#334155", "text": "#1f2937"},
    "running": {"fill": "#fde68a", "stroke": "#b45309", "text": "#1f2937"},
    "success": {"fill": "#bbf7d0", "stroke": "#15803d", "text": "#1f2937"},
    "paused": {"fill": "#bfdbfe", "stroke": "#1d4ed8", "text": "#1f2937"},
    "failed": {"fill": "#fecaca", "stroke": "#b91c1c", "text": "#1f2937"},
}
STATUSES = tuple(PALETTE)
STATUS_COLOURS = {status: colours["fill"] for status, colours in PALETTE.items()}  # older name: fills only
BREAKPOINT_COLOUR = "#dc2626"
ROUTE_COLOUR = "#8b5cf6"  # reads on light and dark backgrounds (contrast >= 3:1 on both)
CLUSTER_COLOUR = "#64748b"
EDGE_COLOUR = "#475569"

LABEL_CHARS = 60          # characters of a label shown in a node
TOOLTIP_CHARS = 4000      # characters of the full text kept in a tooltip
LR_AFTER = 12             # more leaf stages than this: Graphviz lays the graph out left to right

# ANSI escape sequences (CSI "\x1b[31m", OSC "\x1b]...\x07", two-character ones): dropped whole.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
# What XML 1.0 forbids even as a character reference, plus C1 controls and DEL.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NONCHAR = re.compile("[\ud800-\udfff\ufffe\uffff]")  # lone surrogates and U+FFFE/U+FFFF
_ID_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: str, limit: int | None = None) -> str:
    """``text`` fit for XML: ANSI escapes and control characters dropped, lone
    surrogates replaced by U+FFFD, line ends made ``\\n``, tabs spaces; cut to
    ``limit`` characters (the last one an ellipsis "…") when longer."""
    text = _ANSI.sub("", str(text)).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _NONCHAR.sub("\ufffd", _CONTROL.sub("", text))
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


def node_id(address: str) -> str:
    """The SVG element id of a stage (stable, so widgets can recolour it).

    Characters XML cannot hold (controls, tabs and line ends, lone surrogates)
    become U+FFFD, one for one; stage_graph.js's ``nodeId`` does the same.
    """
    return "pipenb-stage-" + _ID_BAD.sub("\ufffd", address).replace("/", "--")


def _shown(stage, sep: str) -> str:
    """A node's text: its label, and its id when that differs, each cut short."""
    label = clean_text(stage.label, LABEL_CHARS)
    return label if stage.label == stage.id else f"{label}{sep}({clean_text(stage.id, LABEL_CHARS)})"


def _tooltip(stage, key: str) -> str:
    """A node's tooltip: its address, then its full label when that differs from its id."""
    tip = clean_text(key, TOOLTIP_CHARS // 4)
    return tip if stage.label == stage.id else tip + "\n" + clean_text(stage.label, TOOLTIP_CHARS)


def to_networkx(pipeline: Pipeline):
    """``Pipeline.to_networkx()``: the stages as nodes by address (label, kind, order, parent), run-order and route edges."""
    import networkx as nx

    g = nx.DiGraph(pipeline_id=pipeline.id)
    for info in pipeline.walk():
        stage, pipe = info.stage, info.pipeline
        g.add_node(
            info.key, label=stage.label, order=pipe.position[stage.id], kind=stage.kind,
            stage_id=stage.id, pipeline_id=pipe.id, parent="/".join(info.address[:-1]) or None,
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


def to_graphviz(pipeline: Pipeline, status: Mapping[str, str] | None = None, breakpoints=()):
    """``Pipeline.to_graphviz()``: a ``graphviz.Digraph``; ``status`` colours stages by address, ``breakpoints`` marks them."""
    import graphviz

    status = status or {}
    infos = list(pipeline.walk())
    leaves = sum(1 for info in infos if info.stage.pipeline is None)
    dot = graphviz.Digraph(
        _dot_text(clean_text(pipeline.id, LABEL_CHARS)),
        graph_attr={"rankdir": "LR" if leaves > LR_AFTER else "TB", "compound": "true", "fontname": "Helvetica",
                    "nodesep": "0.3", "ranksep": "0.35"},
    )
    dot.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11",
             fontcolor=PALETTE["pending"]["text"])
    dot.attr("edge", fontname="Helvetica", fontsize="9", color=EDGE_COLOUR)

    # DOT names are generated ("n0", "n1", ...): user ids may hold ':' (a port in
    # DOT edges), quotes or backslashes. The address lives in the escaped `id`.
    dot_name = {info.key: f"n{i}" for i, info in enumerate(infos)}
    children = defaultdict(list)  # parent address -> its stages, in run order
    for info in infos:
        children[info.address[:-1]].append(info)

    def add(container, prefix: tuple) -> None:
        for info in children[prefix]:
            stage, key = info.stage, info.key
            text, tip = _dot_text(_shown(stage, "\n")), _dot_text(_tooltip(stage, key))
            if stage.pipeline is not None:
                with container.subgraph(name="cluster_" + dot_name[key]) as sub:
                    sub.attr(label=text, tooltip=tip, style="rounded,dashed", color=CLUSTER_COLOUR,
                             id=_dot_text("cluster-" + node_id(key)), fontname="Helvetica", fontsize="11")
                    add(sub, info.address)
            else:
                colours = PALETTE.get(status.get(key, "pending"), PALETTE["pending"])
                border = ({"penwidth": "2.5", "color": BREAKPOINT_COLOUR} if key in breakpoints
                          else {"color": colours["stroke"]})
                container.node(dot_name[key], label=text, id=_dot_text(node_id(key)), tooltip=tip,
                               fillcolor=colours["fill"], fontcolor=colours["text"], **border)

    add(dot, ())
    for tail_info, head_info, kind in pipeline.edges():
        tail = _last_leaf(tail_info.stage, tail_info.address)
        head = _first_leaf(head_info.stage, head_info.address)
        attrs = {"class": kind}
        if kind == "route":
            attrs.update(style="dashed", color=ROUTE_COLOUR)
        if tail_info.stage.pipeline is not None:
            attrs["ltail"] = "cluster_" + dot_name[tail_info.key]
        if head_info.stage.pipeline is not None:
            attrs["lhead"] = "cluster_" + dot_name[head_info.key]
        if kind == "route" and tail == head:
            attrs.pop("ltail", None)
            attrs.pop("lhead", None)
        dot.edge(dot_name["/".join(tail)], dot_name["/".join(head)], **attrs)
    return dot


# dot names its node and cluster <title>s after our generated names: give them the tooltip text instead.
_DOT_TITLE = re.compile(r'(class="(?:node|cluster)">\s*)<title>((?:cluster_)?n\d+)</title>')


def _render_dot(pipeline: Pipeline, status: Mapping[str, str] | None, breakpoints) -> str:
    """Graphviz's SVG of the graph; raises whatever graphviz or ``dot`` raises."""
    dot = to_graphviz(pipeline, status, breakpoints)
    svg = dot.pipe(format="svg", quiet=True).decode("utf-8")
    titles = {}
    for i, info in enumerate(pipeline.walk()):
        tip = html.escape(_tooltip(info.stage, info.key))
        titles[f"n{i}"] = titles[f"cluster_n{i}"] = f"<title>{tip}</title>"
    return _DOT_TITLE.sub(lambda m: m.group(1) + titles.get(m.group(2), m.group(0)[len(m.group(1)):]), svg)


def to_svg(pipeline: Pipeline, status: Mapping[str, str] | None = None, breakpoints=()) -> str:
    """SVG of the stage graph: Graphviz ``dot`` when it works, else the built-in layout.

    Never raises for a valid pipeline: whatever goes wrong with ``dot`` (not
    installed, a crash, a broken pipe, a string it refuses, output that is not
    well-formed XML), the built-in layout is drawn instead.
    """
    try:
        svg = _render_dot(pipeline, status, breakpoints)
        ET.fromstring(svg)  # only well-formed SVG leaves here
        return svg
    except Exception:  # ExecutableNotFound, CalledProcessError, BrokenPipeError, OSError, ParseError, ...
        return fallback_svg(pipeline, status, breakpoints)


def fallback_svg(pipeline: Pipeline, status: Mapping[str, str] | None = None, breakpoints=()) -> str:
    """A top-to-bottom drawing needing nothing but Python: one row a stage, nested by depth."""
    status = status or {}
    rows = list(pipeline.walk())
    texts = {info.key: " ".join(_shown(info.stage, " ").split()) for info in rows}
    row_h, indent = 44, 24
    box_w = min(max(220, 7 * max(len(t) for t in texts.values()) + 24), 560)
    width = box_w + indent * max(len(info.address) for info in rows) + 140
    height = row_h * len(rows) + 20
    y_of = {info.key: 10 + i * row_h for i, info in enumerate(rows)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica, sans-serif" font-size="12">',
           f'<rect class="background" width="{width}" height="{height}" fill="white"/>',
           '<defs><marker id="pipenb-arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
           f'<path d="M0,0 L8,4 L0,8 z" fill="{EDGE_COLOUR}"/></marker></defs>']
    for info in rows:
        addr, stage, key = info.address, info.stage, info.key
        x, y = 10 + indent * (len(addr) - 1), y_of[key]
        esc, title = html.escape(texts[key]), html.escape(_tooltip(stage, key))
        if stage.pipeline is not None:
            out.append(f'<g id="cluster-{html.escape(node_id(key))}" class="cluster"><title>{title}</title>'
                       f'<text x="{x}" y="{y + 20}" font-weight="bold">▾ {esc}</text></g>')
            continue
        colours = PALETTE.get(status.get(key, "pending"), PALETTE["pending"])
        stroke = (f' stroke="{BREAKPOINT_COLOUR}" stroke-width="2.5"' if key in breakpoints
                  else f' stroke="{colours["stroke"]}"')
        out.append(f'<g id="{html.escape(node_id(key))}" class="node"><title>{title}</title>'
                   f'<rect x="{x}" y="{y}" width="{box_w}" height="30" rx="6" fill="{colours["fill"]}"{stroke}/>'
                   f'<text x="{x + 10}" y="{y + 19}" fill="{colours["text"]}">{esc}</text></g>')
    # Run order: a short arrow from each row to the next (sub-pipeline stages follow their header).
    for r1, r2 in zip(rows, rows[1:], strict=False):
        x1, x2 = 30 + indent * (len(r1.address) - 1), 30 + indent * (len(r2.address) - 1)
        y1 = y_of[r1.key] + (24 if r1.stage.pipeline is not None else 30)
        out.append(f'<path class="edge next" d="M{x1},{y1} L{x2},{y_of[r2.key] - 1}" stroke="{EDGE_COLOUR}" '
                   f'fill="none" marker-end="url(#pipenb-arrow)"/>')
    for tail, head, kind in pipeline.edges():
        if kind != "route":
            continue
        y1, y2 = y_of[tail.key] + 15, y_of[head.key] + 15
        x1 = 10 + indent * (len(tail.address) - 1) + box_w
        bend = x1 + 30 + abs(y2 - y1) // 8
        out.append(f'<path class="edge route" d="M{x1},{y1} C{bend},{y1} {bend},{y2} {x1 + 2},{y2}" fill="none" '
                   f'stroke="{ROUTE_COLOUR}" stroke-dasharray="5,4" marker-end="url(#pipenb-arrow)"/>')
    out.append("</svg>")
    return "".join(out)

"""Pipeline → networkx graph, Graphviz DOT, and SVG.

networkx is the data view (for analysis and tests), Graphviz the picture.
Nodes are stage addresses (``"train/fit"``); a sub-pipeline stage is drawn as
a cluster around its stages. When the ``dot`` program is missing (a bare
``pip install``), ``to_svg`` falls back to a simple layered drawing of our own
so a notebook always shows something.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from .core.definitions import Pipeline

STATUS_COLOURS = {
    "pending": "#f4f4f5",
    "running": "#fde68a",
    "success": "#bbf7d0",
    "paused": "#bfdbfe",
    "failed": "#fecaca",
}


def _walk(pipeline: Pipeline, prefix: tuple = (), parent: str | None = None):
    """Yield (address, stage, parent_address, pipeline) for every stage, in run order."""
    for stage in pipeline.ordered:
        addr = prefix + (stage.id,)
        yield addr, stage, parent, pipeline
        if stage.pipeline is not None:
            yield from _walk(stage.pipeline, addr, "/".join(addr))


def to_networkx(pipeline: Pipeline):
    import networkx as nx

    g = nx.DiGraph(pipeline_id=pipeline.id)
    for addr, stage, parent, pipe in _walk(pipeline):
        g.add_node(
            "/".join(addr), label=stage.label, order=pipe.position[stage.id], kind=stage.kind,
            stage_id=stage.id, pipeline_id=pipe.id, parent=parent, depth=len(addr) - 1,
        )
    for addr, stage, _parent, pipe in _walk(pipeline):
        here = "/".join(addr)
        prefix = addr[:-1]
        i = pipe.position[stage.id]
        if i + 1 < len(pipe.ordered):
            g.add_edge(here, "/".join(prefix + (pipe.ordered[i + 1].id,)), kind="next")
        for target in stage.routes:
            g.add_edge(here, "/".join(prefix + (target,)), kind="route")
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


def node_id(address: str) -> str:
    """The SVG element id of a stage (stable, so widgets can recolour it)."""
    return "pipenb-stage-" + address.replace("/", "--")


def to_graphviz(pipeline: Pipeline, status: Mapping[str, str] | None = None, breakpoints=()):
    import graphviz

    status = status or {}
    dot = graphviz.Digraph(pipeline.id, graph_attr={"rankdir": "TB", "compound": "true", "fontname": "Helvetica",
                                                    "nodesep": "0.3", "ranksep": "0.35"})
    dot.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11")
    dot.attr("edge", fontname="Helvetica", fontsize="9")

    # DOT names are generated ("n0", "n1", ...): user ids may hold ':' (a port in
    # DOT edges), quotes or backslashes. The address lives in the escaped `id`.
    dot_name = {"/".join(a): f"n{i}" for i, (a, *_rest) in enumerate(_walk(pipeline))}
    esc = graphviz.escape

    def add(container, pipe, prefix):
        for stage in pipe.ordered:
            addr = prefix + (stage.id,)
            key = "/".join(addr)
            text = stage.label if stage.label == stage.id else f"{stage.label}\n({stage.id})"
            if stage.pipeline is not None:
                with container.subgraph(name="cluster_" + dot_name[key]) as sub:
                    sub.attr(label=esc(text), style="rounded,dashed", color="#64748b",
                             id=esc("cluster-" + node_id(key)), fontname="Helvetica", fontsize="11")
                    add(sub, stage.pipeline, addr)
            else:
                fill = STATUS_COLOURS.get(status.get(key, "pending"), STATUS_COLOURS["pending"])
                extra = {"penwidth": "2.5", "color": "#dc2626"} if key in breakpoints else {}
                container.node(dot_name[key], label=esc(text), id=esc(node_id(key)), fillcolor=fill,
                               tooltip=esc(key), **extra)

    add(dot, pipeline, ())
    for addr, stage, _parent, pipe in _walk(pipeline):
        prefix = addr[:-1]
        i = pipe.position[stage.id]
        targets = []
        if i + 1 < len(pipe.ordered):
            targets.append((pipe.ordered[i + 1], "next"))
        targets += [(pipe.stage(t), "route") for t in stage.routes]
        for target, kind in targets:
            t_addr = prefix + (target.id,)
            tail, head = _last_leaf(stage, addr), _first_leaf(target, t_addr)
            attrs = {"style": "dashed", "color": "#7c3aed"} if kind == "route" else {}
            if stage.pipeline is not None:
                attrs["ltail"] = "cluster_" + dot_name["/".join(addr)]
            if target.pipeline is not None:
                attrs["lhead"] = "cluster_" + dot_name["/".join(t_addr)]
            if kind == "route" and tail == head:
                attrs.pop("ltail", None)
                attrs.pop("lhead", None)
            dot.edge(dot_name["/".join(tail)], dot_name["/".join(head)], **attrs)
    return dot


def to_svg(pipeline: Pipeline, status: Mapping[str, str] | None = None, breakpoints=()) -> str:
    """SVG of the stage graph: Graphviz ``dot`` when installed, else the built-in layout."""
    try:
        return to_graphviz(pipeline, status, breakpoints).pipe(format="svg").decode("utf-8")
    except Exception as exc:  # ExecutableNotFound, or graphviz itself missing
        if type(exc).__name__ not in ("ExecutableNotFound", "ModuleNotFoundError", "CalledProcessError"):
            raise
        return fallback_svg(pipeline, status, breakpoints)


def fallback_svg(pipeline: Pipeline, status: Mapping[str, str] | None = None, breakpoints=()) -> str:
    """A top-to-bottom drawing needing nothing but Python: one row a stage, nested by depth."""
    status = status or {}
    rows = list(_walk(pipeline))
    row_h, box_w, indent = 44, 220, 24
    width = box_w + indent * max(len(a) for a, *_ in rows) + 140
    height = row_h * len(rows) + 20
    y_of = {"/".join(a): 10 + i * row_h for i, (a, *_rest) in enumerate(rows)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica, sans-serif" font-size="12">',
           '<defs><marker id="pipenb-arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
           '<path d="M0,0 L8,4 L0,8 z" fill="#475569"/></marker></defs>']
    for addr, stage, _parent, _pipe in rows:
        key = "/".join(addr)
        x, y = 10 + indent * (len(addr) - 1), y_of[key]
        text = stage.label if stage.label == stage.id else f"{stage.label} ({stage.id})"
        esc = html.escape(text)
        if stage.pipeline is not None:
            out.append(f'<g id="cluster-{html.escape(node_id(key))}" class="cluster"><title>{html.escape(key)}</title>'
                       f'<text x="{x}" y="{y + 20}" font-weight="bold">▾ {esc}</text></g>')
            continue
        fill = STATUS_COLOURS.get(status.get(key, "pending"), STATUS_COLOURS["pending"])
        stroke = ' stroke="#dc2626" stroke-width="2.5"' if key in breakpoints else ' stroke="#334155"'
        out.append(f'<g id="{html.escape(node_id(key))}" class="node"><title>{html.escape(key)}</title>'
                   f'<rect x="{x}" y="{y}" width="{box_w}" height="30" rx="6" fill="{fill}"{stroke}/>'
                   f'<text x="{x + 10}" y="{y + 19}">{esc}</text></g>')
    # Run order: a short arrow from each row to the next (sub-pipeline stages follow their header).
    for (a1, s1, *_), (a2, *_) in zip(rows, rows[1:], strict=False):
        x1, x2 = 30 + indent * (len(a1) - 1), 30 + indent * (len(a2) - 1)
        y1 = y_of["/".join(a1)] + (24 if s1.pipeline is not None else 30)
        out.append(f'<path class="edge next" d="M{x1},{y1} L{x2},{y_of["/".join(a2)] - 1}" stroke="#475569" '
                   f'fill="none" marker-end="url(#pipenb-arrow)"/>')
    for addr, stage, _parent, _pipe in rows:
        prefix, here = addr[:-1], "/".join(addr)
        for t in stage.routes:
            there = "/".join(prefix + (t,))
            y1, y2 = y_of[here] + 15, y_of[there] + 15
            x1 = 10 + indent * (len(addr) - 1) + box_w
            bend = x1 + 30 + abs(y2 - y1) // 8
            out.append(f'<path class="edge route" d="M{x1},{y1} C{bend},{y1} {bend},{y2} {x1 + 2},{y2}" fill="none" '
                       f'stroke="#7c3aed" stroke-dasharray="5,4" marker-end="url(#pipenb-arrow)"/>')
    out.append("</svg>")
    return "".join(out)

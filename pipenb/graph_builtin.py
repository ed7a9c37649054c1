"""The stage graph drawn by pipenb itself, for when Graphviz's ``dot`` is missing or fails.

One row a stage, nested by depth, in run order; router edges curve on the right.
It needs nothing but Python, so a notebook always shows a graph, and it draws a
run's marks (graph_marks.RunMarks) as ``to_svg`` does: visit counts, edges taken
with their counts, undeclared moves, stale stages, conditional breakpoints and
the current position.
"""

from __future__ import annotations

import html
from typing import Mapping

from .graph_marks import RunMarks
from .graph_style import (
    BREAKPOINT_COLOUR,
    CURRENT_COLOUR,
    EDGE_COLOUR,
    PALETTE,
    ROUTE_COLOUR,
    STALE_COLOUR,
    TAKEN_COLOUR,
    TOOLTIP_CHARS,
    UNDECLARED_COLOUR,
    clean_text,
    node_id,
    shown_text,
    tooltip_text,
)

ROW_H, INDENT, BOX_H = 44, 24, 30


class _Layout:
    """Where each row goes: one row a stage, indented by depth."""

    def __init__(self, pipeline, marks: RunMarks):
        self.rows = list(pipeline.walk())
        self.texts = {
            info.key: ("? " if info.key in marks.conditional else "") + " ".join(shown_text(info.stage, " ").split())
            for info in self.rows
        }
        self.box_w = min(max(220, 7 * max(len(t) for t in self.texts.values()) + 24), 560)
        room = 150 if marks.undeclared else 0  # the undeclared moves' curves and labels, right of the routes
        self.width = self.box_w + INDENT * max(len(info.address) for info in self.rows) + 190 + room
        self.height = ROW_H * len(self.rows) + 20
        self.y = {info.key: 10 + i * ROW_H for i, info in enumerate(self.rows)}

    def x(self, info) -> int:
        return 10 + INDENT * (len(info.address) - 1)


def _node(info, layout: _Layout, status, breakpoints, marks: RunMarks) -> str:
    key, stage = info.key, info.stage
    x, y = layout.x(info), layout.y[key]
    esc = html.escape(layout.texts[key])
    note = marks.node_note(key, key in breakpoints)
    title = html.escape(tooltip_text(stage, key) + ("\n" + note if note else ""))
    if stage.pipeline is not None:
        return (
            f'<g id="cluster-{html.escape(node_id(key))}" class="cluster"><title>{title}</title>'
            f'<text x="{x}" y="{y + 20}" font-weight="bold">▾ {esc}</text></g>'
        )
    colours = PALETTE.get(status.get(key, "pending"), PALETTE["pending"])
    classes, stroke, extra, visits = ["node"], f' stroke="{colours["stroke"]}"', "", ""
    if key in marks.conditional:
        classes.append("conditional")
        stroke = f' stroke="{BREAKPOINT_COLOUR}" stroke-width="2.5" stroke-dasharray="5,3"'
    elif key in breakpoints:
        classes.append("breakpoint")
        stroke = f' stroke="{BREAKPOINT_COLOUR}" stroke-width="2.5"'
    if key == marks.current:
        classes.append("current")
        stroke = f' stroke="{CURRENT_COLOUR}" stroke-width="4"'
    if key in marks.stale:
        classes.append("stale")
        extra += (
            f'<rect class="stale-outline" x="{x - 3}" y="{y - 3}" width="{layout.box_w + 6}" '
            f'height="{BOX_H + 6}" rx="8" fill="none" stroke="{STALE_COLOUR}" stroke-width="1.5"/>'
        )
    badge = marks.visit_badge(key)
    if badge:
        classes.append("revisited")
        visits = (
            f'<text class="visits" x="{x + layout.box_w - 8}" y="{y + 19}" text-anchor="end" font-weight="bold" '
            f'fill="{colours["text"]}">{badge}</text>'
        )
    return (
        f'<g id="{html.escape(node_id(key))}" class="{" ".join(classes)}"><title>{title}</title>{extra}'
        f'<rect x="{x}" y="{y}" width="{layout.box_w}" height="{BOX_H}" rx="6" fill="{colours["fill"]}"{stroke}/>'
        f'<text x="{x + 10}" y="{y + 19}" fill="{colours["text"]}">{esc}</text>{visits}</g>'
    )


def _arrows(pipeline, layout: _Layout, marks: RunMarks) -> list[str]:
    """Run order: a short arrow from each row to the next, counted when a declared "next" edge into that row
    was taken (sub-pipeline stages follow their header)."""
    taken, edge_of = {}, {}  # by the row an arrow goes into: its count, and the declared edge it draws
    for i, (_tail, head, kind) in enumerate(pipeline.edges()):
        if kind == "next":
            edge_of.setdefault(head.key, i)
            if marks.edge_counts.get(i):
                taken[head.key] = taken.get(head.key, 0) + marks.edge_counts[i]
    out = []
    for r1, r2 in zip(layout.rows, layout.rows[1:], strict=False):
        x1, x2 = 20 + layout.x(r1), 20 + layout.x(r2)
        y1, y2 = layout.y[r1.key] + (24 if r1.stage.pipeline is not None else BOX_H), layout.y[r2.key] - 1
        n = taken.get(r2.key, 0)
        look = f'stroke="{TAKEN_COLOUR}" stroke-width="2.5"' if n else f'stroke="{EDGE_COLOUR}"'
        title, count = (
            (
                f"<title>taken {n} time{'s' if n != 1 else ''}</title>",
                f'<text class="edge-count" x="{x2 + 6}" y="{(y1 + y2) // 2 + 4}" font-size="10" '
                f'fill="{TAKEN_COLOUR}">×{n}</text>',
            )
            if n
            else ("", "")
        )
        ident = f' id="pipenb-edge-{edge_of[r2.key]}"' if r2.key in edge_of else ""
        out.append(
            f'<g{ident} class="edge next{" taken" if n else ""}">{title}<path {look} d="M{x1},{y1} L{x2},{y2}" '
            f'fill="none" marker-end="url(#pipenb-arrow)"/>{count}</g>'
        )
    return out


def _curve(layout: _Layout, tail, head, look: tuple, label: str, out_by: int) -> str:
    """One curved edge on the right of the rows: ``look`` is (element id, classes, colour, stroke attributes,
    tooltip); ids as graph.py gives them (``pipenb-edge-<i>``, ``pipenb-edge-u<j>``)."""
    ident, classes, colour, stroke, tip = look
    y1, y2 = layout.y[tail.key] + 15, layout.y[head.key] + 15
    x1 = layout.x(tail) + layout.box_w + out_by
    bend = x1 + 30 + abs(y2 - y1) // 8
    text = (
        f'<text class="edge-count" x="{bend - 4}" y="{(y1 + y2) // 2 + 4}" font-size="10" '
        f'fill="{colour}">{html.escape(label)}</text>'
        if label
        else ""
    )
    title = f"<title>{html.escape(tip)}</title>" if tip else ""
    return (
        f'<g id="{ident}" class="{classes}">{title}<path stroke="{colour}" {stroke} d="M{x1},{y1} C{bend},{y1} {bend},{y2} '
        f'{x1 + 2},{y2}" fill="none" marker-end="url(#pipenb-arrow)"/>{text}</g>'
    )


def _curves(pipeline, layout: _Layout, marks: RunMarks) -> list[str]:
    """The routes a router may jump along (taken ones counted), then the moves no edge declares."""
    out = []
    for i, (tail, head, kind) in enumerate(pipeline.edges()):
        if kind != "route":
            continue
        n = marks.edge_counts.get(i, 0)
        look = (
            (
                f"pipenb-edge-{i}",
                "edge route taken",
                TAKEN_COLOUR,
                'stroke-dasharray="5,4" stroke-width="2.5"',
                f"taken {n} time{'s' if n != 1 else ''}",
            )
            if n
            else (f"pipenb-edge-{i}", "edge route", ROUTE_COLOUR, 'stroke-dasharray="5,4"', "")
        )
        out.append(_curve(layout, tail, head, look, f"×{n}" if n else "", 0))
    infos = {info.key: info for info in layout.rows}
    for j, (a, b, n) in enumerate(marks.undeclared):
        tip = clean_text(
            f"undeclared move {a} → {b}: {n} time{'s' if n != 1 else ''} (not in the router's routes)", TOOLTIP_CHARS
        )
        look = (
            f"pipenb-edge-u{j}",
            "edge undeclared",
            UNDECLARED_COLOUR,
            'stroke-dasharray="2,3" stroke-width="2"',
            tip,
        )
        out.append(_curve(layout, infos[a], infos[b], look, f"undeclared ×{n}", 40))
    return out


def fallback_svg(
    pipeline,
    status: Mapping[str, str] | None = None,
    breakpoints=(),
    *,
    visits=None,
    transitions=None,
    current=None,
    stale=(),
    conditional=(),
) -> str:
    """A top-to-bottom drawing needing nothing but Python: one row a stage, nested by depth; the keyword
    arguments draw a run on it as ``to_svg``'s do."""
    marks = RunMarks.of(pipeline, visits, transitions, current, stale, conditional)
    status, breakpoints = status or {}, set(breakpoints)
    layout = _Layout(pipeline, marks)
    width, height = layout.width, layout.height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, sans-serif" font-size="12">',
        f'<rect class="background" width="{width}" height="{height}" fill="white"/>',
        '<defs><marker id="pipenb-arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto" '
        'markerUnits="userSpaceOnUse">'
        f'<path d="M0,0 L8,4 L0,8 z" fill="{EDGE_COLOUR}"/></marker></defs>',
    ]
    out += [_node(info, layout, status, breakpoints, marks) for info in layout.rows]
    out += _arrows(pipeline, layout, marks)
    out += _curves(pipeline, layout, marks)
    out.append("</svg>")
    return "".join(out)

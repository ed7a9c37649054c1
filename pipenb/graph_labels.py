"""A run's counts written onto Graphviz's laid-out SVG, so that counting never moves a stage.

Given to ``dot`` (as labels or ``xlabel``s), a visit count or an edge's count
takes room in the layout: a live graph would jump each time a looping run
commits a stage, and ``dot`` puts an edge's ``xlabel`` wherever it finds room,
often on a neighbour's. These helpers read where ``dot`` drew each stage and
edge and add the counts there: a pill beside a stage, and a count beside the
middle of an edge, on the side away from the stages it joins. A move no edge
declares is drawn the same way, as a dashed curve on the right of the stages it
joins: given to ``dot``, it would move stages too.
"""

from __future__ import annotations

import html
import re
from typing import NamedTuple

from .graph_style import TAKEN_COLOUR, UNDECLARED_COLOUR

# A node's group up to the end of its first shape, whose coordinates say where the node was drawn.
_NODE_SHAPE = re.compile(
    r'<g id="([^"]*)" class="node[^"]*">.*?<(?:path|polygon)[^>]*?(?:d|points)="([^"]*)"[^>]*/>', re.S
)
# An edge's group (ids given by graph.to_graphviz) up to the end of its path.
_EDGE_PATH = re.compile(r'<g id="([^"]*)" class="edge[^"]*">.*?<path[^>]*? d="([^"]*)"[^>]*/>', re.S)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_FONT = 'font-family="Helvetica,sans-Serif" font-weight="bold"'
# Around a count's letters, the background: it stays readable where it crosses a line (the widget's CSS
# gives the halo the theme's background).
_HALO = 'stroke="white" stroke-width="3" stroke-linejoin="round" paint-order="stroke"'


def _points(text: str) -> list[tuple[float, float]]:
    numbers = [float(n) for n in _NUMBER.findall(text)]
    return list(zip(numbers[0::2], numbers[1::2], strict=False))


def node_boxes(svg: str) -> dict[str, tuple[float, float, float, float]]:
    """``{node id: (left, top, right, bottom)}`` of each stage ``dot`` drew."""
    boxes = {}
    for m in _NODE_SHAPE.finditer(svg):
        points = _points(m.group(2))
        if points:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            boxes[html.unescape(m.group(1))] = (min(xs), min(ys), max(xs), max(ys))
    return boxes


def _cubic_samples(points: list[tuple[float, float]], per_segment: int = 8) -> list[tuple[float, float]]:
    """Points along a path ``M p0 C p1 p2 p3 [p4 p5 p6 ...]`` (its ends and ``per_segment`` steps a segment)."""
    out = list(points[:1])
    for s in range(0, len(points) - 3, 3):
        p0, p1, p2, p3 = points[s : s + 4]
        for k in range(1, per_segment + 1):
            t = k / per_segment
            a, b, c, d = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t**3
            out.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    return out


_EDGE_GROUP = re.compile(r'<g id="[^"]*" class="edge[^"]*">(.*?)</g>', re.S)
_SHAPE_POINTS = re.compile(r'<(path|polygon)[^>]*? (?:d|points)="([^"]*)"')


def taken_room(svg: str) -> tuple[list[tuple[float, float, float, float]], list[tuple[float, float]]]:
    """What a pill must keep clear of: the boxes of the counts already written (edge counts, undeclared
    labels) and points along every edge line and arrowhead (a self-loop's curve runs where a pill would go)."""
    boxes = []
    for m in _COUNT_TEXT.finditer(svg):
        x, y, anchor = float(m.group(1)), float(m.group(2)), m.group(3)
        width = 6.2 * len(html.unescape(m.group(4))) + 2
        start = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
        boxes.append((start, y - 10, start + width, y + 3))
    points = []
    for group in _EDGE_GROUP.finditer(svg):
        for kind, coords in _SHAPE_POINTS.findall(group.group(1)):
            shape = _points(coords)
            points += _cubic_samples(shape) if kind == "path" else shape
    return boxes, points


def _pill_spots(box: tuple, width: float) -> list[tuple[float, float]]:
    """Where a pill of ``width`` may go beside a stage, best first: right then left of it halfway up (edges
    meet a stage at its top and bottom), then on its corners (a self-loop and its count take its right)."""
    left, top, right, bottom = box
    middle = (top + bottom) / 2 - 6
    return [
        (right + 3, middle),
        (left - 3 - width, middle),
        (right - width / 2, top - 10),
        (left - width / 2, top - 10),
        (right - width / 2, bottom - 2),
        (left - width / 2, bottom - 2),
    ]


def _clashes(spot: tuple, width: float, room: tuple, nodes: list) -> int:
    """How many written counts, edge points and other stages a pill at ``spot`` would cover (2 units margin)."""
    x0, y0, x1, y1 = spot[0] - 2, spot[1] - 2, spot[0] + width + 2, spot[1] + 14
    boxes, points = room
    hits = sum(1 for b in boxes + nodes if b[0] < x1 and b[2] > x0 and b[1] < y1 and b[3] > y0)
    return 3 * hits + sum(1 for x, y in points if x0 <= x <= x1 and y0 <= y <= y1)


def add_badges(svg: str, badges: dict[str, str]) -> str:
    """Each ``{node id: text}`` as a pill beside that stage, at the first of ``_pill_spots`` clear of the
    counts already written, the edges' lines and the other stages (the least covered one when none is)."""
    if not badges:
        return svg
    room = taken_room(svg)
    boxes = node_boxes(svg)

    def badge(m: re.Match) -> str:
        key = html.unescape(m.group(1))
        text = badges.get(key)
        if text is None or key not in boxes:
            return m.group(0)
        width = 5.5 * len(text) + 7
        others = [b for k, b in boxes.items() if k != key]
        spots = _pill_spots(boxes[key], width)
        x, y = min(spots, key=lambda spot: (_clashes(spot, width, room, others), spots.index(spot)))
        room[0].append((x, y, x + width, y + 12))  # the next pill keeps clear of this one
        return (
            m.group(0) + f'<rect class="visits-pill" x="{x:.1f}" y="{y:.1f}" '
            f'width="{width:.1f}" height="12" rx="6" fill="{TAKEN_COLOUR}" stroke="none"/>'
            f'<text class="visits" x="{x + width / 2:.1f}" y="{y + 9.2:.1f}" text-anchor="middle" '
            f'{_FONT} font-size="9" fill="white">{html.escape(text)}</text>'
        )

    return _NODE_SHAPE.sub(badge, svg)


def _middle(d: str) -> tuple[float, float] | None:
    """The point halfway along the middle cubic segment of a path ``M p0 C p1 p2 p3 [p4 p5 p6 ...]``."""
    points = _points(d)
    if len(points) < 4:
        return None
    s = 3 * ((len(points) - 1) // 3 // 2)
    p0, p1, p2, p3 = points[s : s + 4]
    return ((p0[0] + 3 * p1[0] + 3 * p2[0] + p3[0]) / 8, (p0[1] + 3 * p1[1] + 3 * p2[1] + p3[1]) / 8)


def _clear_of_ends(x: float, y: float, width: float, left: bool, ends: list) -> float:
    """A count's baseline moved off the stages its edge joins: the middle of a short edge (a stage right above
    a sub-pipeline's frame) is so close to them that the count would sit on a stage's border."""
    x0, x1 = (x - width, x) if left else (x, x + width)
    for b in ends:
        if b[0] < x1 and x0 < b[2] and b[1] < y + 2 and y - 9 < b[3]:
            y = b[3] + 9.5 if (b[1] + b[3]) / 2 < y - 4 else b[1] - 2.5
    return y


def add_edge_counts(svg: str, counts: dict[str, tuple[str, str, str, str]], boxes: dict) -> str:
    """Each ``{edge id: (text, colour, tail node id, head node id)}`` beside its edge's middle: on the left when
    the edge runs left of the stages it joins, else on the right (two edges between the same stages, one down
    and one back up, get one count each side)."""

    def count(m: re.Match) -> str:
        found = counts.get(html.unescape(m.group(1)))
        middle = _middle(m.group(2))
        if found is None or middle is None:
            return m.group(0)
        text, colour, tail, head = found
        ends = [boxes[n] for n in (tail, head) if n in boxes]
        centre = sum((b[0] + b[2]) / 2 for b in ends) / len(ends) if ends else middle[0]
        left = middle[0] < centre - 1
        x = middle[0] - 5 if left else middle[0] + 5
        y = _clear_of_ends(x, middle[1] + 3.5, 6.2 * len(text), left, ends)
        return (
            m.group(0) + f'<text class="edge-count" x="{x:.1f}" y="{y:.1f}" '
            f'text-anchor="{"end" if left else "start"}" {_FONT} font-size="10" fill="{colour}" {_HALO}>'
            f"{html.escape(text)}</text>"
        )

    return _EDGE_PATH.sub(count, svg) if counts else svg


_COUNT_TEXT = re.compile(
    r'<text class="(?:edge-count|visits)" x="(-?[\d.]+)" y="(-?[\d.]+)" text-anchor="(start|end|middle)"[^>]*>([^<]*)<'
)
_CURVE = re.compile(r'<path class="undeclared-curve"[^>]* d="([^"]*)"')
_SVG_SIZE = re.compile(
    r'<svg width="([\d.]+)pt" height="([\d.]+)pt"\s+viewBox="(-?[\d.]+) (-?[\d.]+) ([\d.]+) ([\d.]+)"'
)
_GRAPH_SHIFT = re.compile(r'class="graph" transform="scale\(1 1\) rotate\(0\) translate\((-?[\d.]+) (-?[\d.]+)\)"')


class Move(NamedTuple):
    """An undeclared move as drawn: its element id, the node ids it joins, its label and its tooltip."""

    id: str
    tail: str
    head: str
    label: str
    tip: str


def add_undeclared(svg: str, moves: list[Move], boxes: dict) -> str:
    """Each move as a dashed curve from the right of its tail stage to the right of its head stage, its label
    at the curve's outermost point; drawn last in the graph's group, so over the stages and edges."""
    out = []
    for move in moves:
        if move.tail not in boxes or move.head not in boxes:
            continue
        (_, t_top, t_right, t_bottom), (_, h_top, h_right, h_bottom) = boxes[move.tail], boxes[move.head]
        y1, y2 = (t_top + t_bottom) / 2, (h_top + h_bottom) / 2
        if move.tail == move.head:  # a stage jumping to itself: a loop on its right
            y1, y2 = y1 - 6, y2 + 6
        x1, x2 = t_right, h_right + 9  # the arrowhead fills the last 9 units
        bend = max(x1, x2) + 24 + abs(y2 - y1) / 8
        mid_x, mid_y = (x1 + x2) / 8 + 0.75 * bend, (y1 + y2) / 2
        out.append(
            f'<g id="{html.escape(move.id)}" class="edge undeclared"><title>{html.escape(move.tip)}</title>'
            f'<path class="undeclared-curve" fill="none" stroke="{UNDECLARED_COLOUR}" stroke-width="2" '
            f'stroke-dasharray="5,2" d="M{x1:.1f},{y1:.1f} C{bend:.1f},{y1:.1f} {bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"/>'
            f'<polygon fill="{UNDECLARED_COLOUR}" stroke="{UNDECLARED_COLOUR}" points="{x2 - 9:.1f},{y2:.1f} '
            f'{x2:.1f},{y2 - 4:.1f} {x2:.1f},{y2 + 4:.1f}"/>'
            f'<text class="edge-count" x="{mid_x + 4:.1f}" y="{mid_y + 3.5:.1f}" text-anchor="start" {_FONT} '
            f'font-size="10" fill="{UNDECLARED_COLOUR}" {_HALO}>{html.escape(move.label)}</text></g>'
        )
    if not out:
        return svg
    end = svg.rfind("</g>")  # the graph's group: its transform places these as it places the stages
    return svg[:end] + "".join(out) + svg[end:] if end >= 0 else svg


def fit_counts(svg: str) -> str:
    """The drawing widened (or heightened) to hold the counts written beside its edges and stages: ``dot``
    sized it for what it laid out, and a count past its edge would be cut off."""
    size, shift = _SVG_SIZE.search(svg), _GRAPH_SHIFT.search(svg)
    if size is None or shift is None:
        return svg
    dx, dy = float(shift.group(1)), float(shift.group(2))
    x0, y0, w, h = (float(size.group(i)) for i in range(3, 7))
    left, right, top = x0, x0 + w, y0
    for m in _CURVE.finditer(svg):
        for x, y in _points(m.group(1)):
            left, right, top = min(left, x + dx - 2), max(right, x + dx + 2), min(top, y + dy - 2)
    for m in _COUNT_TEXT.finditer(svg):
        x, y, anchor = float(m.group(1)) + dx, float(m.group(2)) + dy, m.group(3)
        width = 6.2 * len(html.unescape(m.group(4))) + 8
        start = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
        left, right, top = min(left, start - 2), max(right, start + width + 2), min(top, y - 12)
    if (left, right, top) == (x0, x0 + w, y0):
        return svg
    w2, h2 = right - left, h + (y0 - top)
    fitted = f'<svg width="{w2:.0f}pt" height="{h2:.0f}pt"\n viewBox="{left:.2f} {top:.2f} {w2:.2f} {h2:.2f}"'
    return svg[: size.start()] + fitted + svg[size.end() :]

"""Visit-count pills and edge counts never cover each other (notebook 04: the "×9" pill sat on the
self-loop of "improve" and under its "×8"). Drawn by Graphviz and by the built-in layout, after real runs;
the SVG is read back as XML and the boxes of what it writes are compared."""

import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from pipenb import Pipeline, PipelineFactory, Stage, Step
from pipenb.graph import to_svg
from pipenb.graph_builtin import fallback_svg

NS = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")


def samples(d: str) -> list[tuple[float, float]]:
    """Points along a path ``M p0 C p1 p2 p3 ...`` (or the corners of a polyline): 10 steps a segment."""
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", d)]
    pts = list(zip(numbers[0::2], numbers[1::2], strict=False))
    if "C" not in d:
        return pts
    out = pts[:1]
    for s in range(0, len(pts) - 3, 3):
        p0, p1, p2, p3 = pts[s : s + 4]
        for k in range(1, 11):
            t = k / 10
            w = ((1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t**3)
            out.append(tuple(sum(wi * p[i] for wi, p in zip(w, (p0, p1, p2, p3), strict=True)) for i in (0, 1)))
    return out


def newton() -> Pipeline:
    """Notebook 04's pipeline (without its sleep): improve loops on itself, then a sub-pipeline checks."""

    def improve(state):
        x, g = state["x"], state["guess"]
        return {"guess": (g + x / g) / 2, "iterations": state.get("iterations", 0) + 1}

    def close_enough(state, results):
        return None if abs(state["guess"] ** 2 - state["x"]) < 1e-9 else "improve"

    check = Pipeline(
        "check",
        steps=[
            Step("square", lambda s: {"squared": s["guess"] ** 2}),
            Step("error", lambda s: {"error": abs(s["squared"] - s["x"])}),
        ],
    )
    return Pipeline(
        "newton",
        stages=[
            Stage("start", steps=[Step("first_guess", lambda s: {"guess": s["x"] / 2})], label="First guess"),
            Stage(
                "improve",
                steps=[Step("newton_step", improve)],
                router=close_enough,
                routes=["improve"],
                label="Improve guess",
            ),
            Stage("check", pipeline=check, label="Check the answer"),
        ],
    )


def counter_loop(n: int) -> Pipeline:
    """load -> check, check loops on itself n times then back to load once, then ends: 3-digit counts."""

    def count(state):
        return {"i": state.get("i", 0) + 1}

    def route(state, results):
        if state["i"] % (n + 1):
            return "check"
        return "load" if state["i"] < 2 * (n + 1) else None

    return Pipeline(
        "loop",
        stages=[
            Stage("load", steps=[Step("r", lambda s: {"loaded": True})]),
            Stage("check", steps=[Step("c", count)], router=route, routes=["load", "check"]),
        ],
    )


def ran(pipeline: Pipeline, registry, **initial):
    ctx = PipelineFactory(pipeline, registry=registry).prepare_sync(initial_state=initial or None).unwrap()
    assert ctx.run_sync().is_ok
    h = ctx.history
    return {"visits": h.visits(), "transitions": h.transitions()}


def text_box(t) -> tuple[float, float, float, float]:
    """A text element's box: bold 9-10 px Helvetica is at most 0.62 em a character; digits and "×" rise
    0.75 em above the baseline and have no descender."""
    size = float(t.get("font-size", "12"))
    width = 0.62 * size * len(t.text)
    x, y = float(t.get("x")), float(t.get("y"))
    anchor = t.get("text-anchor", "start")
    left = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
    return (left, y - 0.75 * size, left + width, y + 0.05 * size)


def rect_box(r) -> tuple[float, float, float, float]:
    x, y = float(r.get("x")), float(r.get("y"))
    return (x, y, x + float(r.get("width")), y + float(r.get("height")))


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def drawn(svg: str):
    """(pill boxes, edge-count boxes by text, points along the edges) of a drawn graph."""
    root = ET.fromstring(svg)
    pills = [rect_box(r) for r in root.iter(NS + "rect") if r.get("class") == "visits-pill"]
    # The built-in layout writes the count in the stage's box, with no pill around it.
    pills = pills or [text_box(t) for t in root.iter(NS + "text") if t.get("class") == "visits"]
    counts = [(t.text, text_box(t)) for t in root.iter(NS + "text") if t.get("class") == "edge-count"]
    points = []
    for g in root.iter(NS + "g"):
        if "edge" in (g.get("class") or "").split():
            for p in g.iter(NS + "path"):
                points += samples(p.get("d"))
    return pills, counts, points


def assert_clear(svg: str, expect_counts: set[str]) -> None:
    pills, counts, points = drawn(svg)
    assert pills, "no visit-count pill drawn"
    assert expect_counts <= {text for text, _ in counts}, [text for text, _ in counts]
    for pill in pills:
        for text, box in counts:
            assert not overlap(pill, box), f"pill {pill} covers the count {text!r} at {box}"
        inside = [(round(x), round(y)) for x, y in points if pill[0] < x < pill[2] and pill[1] < y < pill[3]]
        assert not inside, f"pill {pill} sits on an edge line at {inside[:3]}"
    for a in range(len(pills)):
        for b in range(a + 1, len(pills)):
            assert not overlap(pills[a], pills[b]), (pills[a], pills[b])


def is_graphviz(svg: str) -> bool:
    return "Generated by graphviz" in svg


@needs_dot
def test_notebook_04_graph_keeps_the_self_loops_count_and_the_pill_apart(registry):
    marks = ran(newton(), registry, x=1000.0)
    assert marks["visits"]["improve"] == 8 and marks["transitions"][("improve", "improve")] == 7
    svg = to_svg(newton(), visits=marks["visits"], transitions=marks["transitions"])
    assert is_graphviz(svg)
    assert_clear(svg, {"×7", "×1"})
    # The count of the short edge from "improve" into the sub-pipeline's frame is not on a stage's border.
    root = ET.fromstring(svg)
    stages = []
    for g in root.iter(NS + "g"):
        if "node" in (g.get("class") or "").split():
            pts = samples(next(g.iter(NS + "path")).get("d"))
            stages.append(
                (min(x for x, _ in pts), min(y for _, y in pts), max(x for x, _ in pts), max(y for _, y in pts))
            )
    assert len(stages) == 4
    for text, box in drawn(svg)[1]:
        assert not any(overlap(box, stage) for stage in stages), (text, box)
    assert re.search(r'class="visits"[^>]*>×8<', svg)


@needs_dot
def test_three_digit_counts_on_a_self_loop_and_a_back_edge_stay_apart(registry):
    marks = ran(counter_loop(111), registry)
    assert marks["transitions"][("check", "check")] == 222 and marks["visits"]["check"] == 224
    svg = to_svg(counter_loop(111), visits=marks["visits"], transitions=marks["transitions"])
    assert is_graphviz(svg)
    assert_clear(svg, {"×222", "×1", "×2"})
    # Every pill and count is inside the drawing (the view box was widened for a pill moved to the left).
    view = [float(v) for v in ET.fromstring(svg).get("viewBox").split()]
    translate = re.search(r'class="graph" transform="[^"]*translate\((-?[\d.]+) (-?[\d.]+)\)', svg)
    dx = float(translate.group(1))
    pills, counts, _ = drawn(svg)
    for box in pills + [b for _, b in counts]:
        assert view[0] - 1 <= box[0] + dx and box[2] + dx <= view[0] + view[2] + 1, box


def test_the_built_in_layout_keeps_them_apart_too(registry):
    for pipeline, initial in ((newton(), {"x": 1000.0}), (counter_loop(111), {})):
        marks = ran(pipeline, registry, **initial)
        assert_clear(fallback_svg(pipeline, **marks), set())

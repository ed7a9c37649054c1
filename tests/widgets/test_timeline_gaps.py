"""A run that paused between stages: the timeline cuts the pause from its axis and says so, so the work
is drawn wide enough to read instead of as slivers at both ends (newcomer finding, polish pass)."""

import asyncio
import xml.etree.ElementTree as ET
from typing import NamedTuple

from pipenb import Pause, Pipeline, PipelineFactory, Stage, StageRecord, Step
from pipenb.timeline import tick_text, timeline_svg
from pipenb.timeline_gaps import Scale, find_cuts

from ..conftest import arun

NS = "{http://www.w3.org/2000/svg}"
WIDTH = 900


def rec(seq, address, start, duration, decision=None):
    return StageRecord(seq, address, address, address, {}, decision, 1000.0 + start, duration, {})


PAUSED_3_MIN = [
    rec(0, "load", 0, 0.8),
    rec(1, "check", 0.81, 0.3, Pause("train")),
    rec(2, "train", 192.4, 1.5),
    rec(3, "report", 193.95, 0.2),
]


def bar_rects(root) -> dict[str, list[float]]:
    """Each stage's bar widths (px), by the address its tooltip starts with."""
    out: dict[str, list[float]] = {}
    for g in root.iter(NS + "g"):
        if g.get("class", "").startswith("bar "):
            address = g.find(NS + "title").text.split("\n")[0].split(" ", 1)[1]
            out.setdefault(address, []).append(float(g.find(NS + "rect").get("width")))
    return out


def cut_bands(root) -> list[tuple[float, float, str]]:
    """(left, right, label under it) of each cut band."""
    bands = []
    for g in root.iter(NS + "g"):
        if g.get("class", "").startswith("cut "):
            r = g.find(NS + "rect")
            x, w = float(r.get("x")), float(r.get("width"))
            bands.append((x, x + w, g.find(NS + "text").text or ""))
    return bands


def tick_labels(root) -> list[tuple[float, str]]:
    """(x, text) of the axis tick labels: texts on the axis row that are not a band's label."""
    band_texts = {id(t) for g in root.iter(NS + "g") if g.get("class", "").startswith("cut ") for t in g}
    axis_y = max(float(t.get("y")) for t in root.iter(NS + "text") if t.get("class") != "cuts-note")
    return [
        (float(t.get("x")), t.text)
        for t in root.iter(NS + "text")
        if id(t) not in band_texts and t.get("y") == str(axis_y).rstrip("0").rstrip(".") and t.text
    ]


def test_a_three_minute_pause_is_cut_and_labelled_and_the_work_is_drawn_wide():
    root = ET.fromstring(timeline_svg(PAUSED_3_MIN, width=WIDTH))
    [(left, right, label)] = cut_bands(root)
    assert label == "paused 3 min"
    assert right - left < 0.15 * WIDTH  # the 3 minutes take a narrow band...
    widths = bar_rects(root)
    assert widths["train"][0] > 0.25 * WIDTH  # ...and 1.5 s of training a quarter of the picture (was 2 px)
    assert widths["load"][0] > 0.1 * WIDTH
    note = next(t.text for t in root.iter(NS + "text") if t.get("class") == "cuts-note")
    assert "cut" in note and "3 min" in note and "not drawn to scale" in note  # the axis owns up to the cut


def test_the_ticks_keep_counting_real_time_across_the_cut_and_never_cover_its_label():
    root = ET.fromstring(timeline_svg(PAUSED_3_MIN, width=WIDTH))
    [(left, right, _)] = cut_bands(root)
    ticks = tick_labels(root)
    before = [text for x, text in ticks if x < left]
    after = [text for x, text in ticks if x > right]
    assert before[0] == "0" and "1.0 s" in before
    assert after and all(text.startswith("3:1") for text in after)  # 3:13.0 min: real time since the start
    for x, text in ticks:
        half = len(text) * 6.6 / 2
        assert x + half <= left or x - half >= right, (text, x, left, right)


def test_short_gaps_are_not_cut_and_an_unexplained_long_one_is_called_idle():
    quick = [rec(0, "a", 0, 0.2), rec(1, "b", 0.3, 0.3), rec(2, "c", 0.9, 0.4)]  # 0.1 s and 0.3 s between
    assert cut_bands(ET.fromstring(timeline_svg(quick))) == []
    long_work = [rec(0, "a", 0, 60.0), rec(1, "b", 63.0, 30.0)]  # 3 s between 90 s of work: no sliver to fix
    assert cut_bands(ET.fromstring(timeline_svg(long_work))) == []
    idle = [rec(0, "a", 0, 0.5), rec(1, "b", 40.0, 0.5)]  # nothing says the run paused: "idle", not "paused"
    [(_, _, label)] = cut_bands(ET.fromstring(timeline_svg(idle)))
    assert label == "idle 40 s"


def test_many_pauses_share_a_bounded_part_of_the_width():
    recs, t = [], 0.0
    for i in range(12):
        recs.append(rec(i, "fit", t, 0.5, Pause("fit")))
        t += 0.5 + 300
    root = ET.fromstring(timeline_svg(recs, width=WIDTH))
    bands = cut_bands(root)
    assert len(bands) == 11
    assert sum(b - a for a, b, _ in bands) <= 0.35 * WIDTH + 1
    assert all(w > 20 for w in bar_rects(root)["fit"])  # half a second still reads as a bar
    xs = [a for a, _, _ in bands]
    assert xs == sorted(xs) and all(b1 <= a2 for (_, b1, _), (a2, _, _) in zip(bands, bands[1:], strict=False))


def test_hostile_labels_with_a_cut_stay_escaped_and_well_formed():
    hostile = [rec(0, "<script>x</script>", 0, 0.5, Pause("b")), rec(1, "a & b ]]>", 100.0, 0.5)]
    svg = timeline_svg(hostile)
    root = ET.fromstring(svg)
    assert cut_bands(root) and "<script>" not in svg and "&lt;script&gt;" in svg


def test_the_replay_marker_map_puts_each_record_where_its_bar_starts():
    root = ET.fromstring(timeline_svg(PAUSED_3_MIN, width=WIDTH))
    points = [tuple(map(float, p.split(":"))) for p in root.get("data-map").split()]
    assert [t for t, _ in points] == sorted(t for t, _ in points)
    scale_x = {
        g.find(NS + "title").text.split("\n")[0].split(" ", 1)[1]: float(g.find(NS + "rect").get("x"))
        for g in root.iter(NS + "g")
        if g.get("class", "").startswith("bar ")
    }

    def mapped(t):  # what replay.js does with data-map
        for (ta, xa), (tb, xb) in zip(points, points[1:], strict=False):
            if t <= tb:
                return xa + (max(t, ta) - ta) / (tb - ta) * (xb - xa)
        return points[-1][1]

    for r in PAUSED_3_MIN:
        assert abs(mapped(r.started) - scale_x[r.address]) < 0.2, r.address


def test_find_cuts_and_scale_directly():
    cuts = find_cuts([(0, 1), (0.5, 2), (100, 101)], pauses=[2.0])
    assert [(c.start, c.end, c.paused) for c in cuts] == [(2, 100, True)]
    scale = Scale(0, 101, cuts, 10, 500)
    assert scale.x(0) == 10 and abs(scale.x(101) - 510) < 1e-9
    assert abs(scale.x(100) - scale.x(2) - scale.band) < 1e-9
    assert tick_text(193.5, 0.5) == "3:13.5 min"


def test_a_real_run_resumed_after_a_wait_shows_the_wait_as_a_pause(registry):
    p = Pipeline(
        "gap",
        stages=[
            Stage("a", steps=[Step("x", lambda s: {"n": 1})], router=lambda s: Pause("b"), routes=["b"]),
            Stage("b", steps=[Step("y", lambda s: {"m": 2})]),
        ],
    )

    async def scenario():
        ctx = (await PipelineFactory(p, registry=registry).prepare()).unwrap()
        log = ctx.record()
        await ctx.start()
        assert ctx.status == "paused"
        await asyncio.sleep(0.3)  # the person reading the pause before pressing Resume
        await ctx.start()  # Resume
        assert ctx.status == "completed"
        return timeline_svg(ctx.history, log, min_gap=0.2)

    [(_, _, label)] = cut_bands(ET.fromstring(arun(scenario())))
    assert label.startswith("paused")


def test_a_run_pausing_hundreds_of_times_cuts_its_longest_pauses_into_visible_bands():
    recs, t = [], 0.0
    for i in range(300):
        recs.append(rec(i, "fit", t, 0.5, Pause("fit")))
        t += 0.5 + 60 + i  # pauses of a minute and more, each longer than the one before
    root = ET.fromstring(timeline_svg(recs, width=WIDTH))
    bands = cut_bands(root)
    assert len(bands) == 40 and all(b - a >= 5 for a, b, _ in bands)
    note = next(t.text for t in root.iter(NS + "text") if t.get("class") == "cuts-note")
    assert "40 shaded bands" in note
    # The longest pauses are the ones cut: the last 40 (they grow), so the bands sit at the right end.
    assert min(a for a, _, _ in bands) > WIDTH / 3


def labels(svg: str) -> list[str]:
    return [label for _, _, label in cut_bands(ET.fromstring(svg))]


def test_a_pause_the_event_log_never_saw_is_still_called_a_pause(registry):
    # A dashboard shown on a paused run opens its event log then: it never sees that pause's event. The
    # resume it does see, and an edit made while the run stood, say the gap was a pause (the cell's own
    # timeline, whose log saw everything, says "paused"; the dashboard's said "idle").
    steps = [Stage(name, steps=[Step("w", lambda s: {"n": 1})]) for name in ("a", "b", "c")]
    p = Pipeline("unseen-pause", stages=steps)

    async def scenario():
        ctx = (await PipelineFactory(p, registry=registry).prepare()).unwrap()
        ctx.breakpoints.update(["b", "c"])
        await ctx.start()
        assert ctx.status == "paused"
        await asyncio.sleep(0.3)  # the first pause, before anyone watched
        log = ctx.record()
        await ctx.start()  # Resume: it stops before c
        assert ctx.status == "paused"
        await asyncio.sleep(0.3)
        ctx.update_state({"k": 1})  # an edit while paused
        await asyncio.sleep(0.3)
        await ctx.start()
        assert ctx.status == "completed"
        return ctx.history.raw(), log

    records, log = arun(scenario())
    assert labels(timeline_svg(records, log, min_gap=0.2)) == ["paused 0 s"] * 3  # before b; either side of the edit
    # From the history alone: the edit says the run stood still around it; nothing tells about the first gap.
    assert labels(timeline_svg(records, min_gap=0.2)) == ["idle 0 s", "paused 0 s", "paused 0 s"]


class Seen(NamedTuple):
    name: str
    time: float
    path: tuple = ()


def test_a_run_resumed_after_it_failed_stood_idle_not_paused():
    records = [rec(0, "a", 0, 0.5), rec(1, "b", 40.0, 0.5)]
    failed_then_resumed = [Seen("pipeline:failure", 1000.6), Seen("pipeline:start", 1039.9)]
    assert labels(timeline_svg(records, failed_then_resumed)) == ["idle 40 s"]
    assert labels(timeline_svg(records, [Seen("pipeline:start", 1039.9)])) == ["paused 40 s"]  # a resume

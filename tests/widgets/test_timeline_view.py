"""The live timeline (issue #19.5): drawn while the run goes, throttled, drawn for finished runs, and in
the dashboard's foldable section (nothing drawn while folded)."""

import asyncio
import time
import xml.etree.ElementTree as ET

from pipenb import Pipeline, PipelineFactory, Stage, Step
from pipenb.widgets import RunDashboard, TimelineView

from ..conftest import arun, eventually


def slow_chain(n: int = 4, pause: float = 0.15) -> Pipeline:
    async def work(state):
        await asyncio.sleep(pause)
        return {"n": state.get("n", 0) + 1}

    return Pipeline("tl", stages=[Stage(f"s{i}", steps=[Step("w", work)]) for i in range(n)])


def bars(svg: str) -> list[str]:
    """The stage rows drawn (their address labels), in order."""
    root = ET.fromstring(svg)
    return [
        t.text
        for g in root.iter("{http://www.w3.org/2000/svg}g")
        if g.get("class") == "row"
        for t in g
        if t.tag.endswith("text")
    ]


def test_the_timeline_grows_while_the_run_goes_and_shows_the_finished_run(registry):
    factory = PipelineFactory(slow_chain(), registry=registry)

    async def scenario():
        ctx = (await factory.prepare()).unwrap()
        view = TimelineView(ctx)
        assert "no stage has run yet" in view.svg()
        task = ctx.start()
        await eventually(lambda: "s1" in bars(view.svg()), timeout=3)
        assert ctx.status == "running"  # drawn live, before the end
        assert "s3" not in bars(view.svg())
        await task
        await eventually(lambda: bars(view.svg()) == ["s0", "s1", "s2", "s3"])
        view.close()
        # A finished run is drawn at once, from its history.
        assert bars(TimelineView(ctx).svg()) == ["s0", "s1", "s2", "s3"]

    arun(scenario())


def test_a_fast_run_redraws_the_timeline_at_most_about_ten_times_a_second(registry):
    p = Pipeline("tlfast", stages=[Stage(f"s{i}", steps=[Step("w", lambda s: None)]) for i in range(400)])
    factory = PipelineFactory(p, registry=registry)

    async def scenario():
        ctx = (await factory.prepare()).unwrap()
        view = TimelineView(ctx)
        t = time.perf_counter()
        await ctx.start()
        took = time.perf_counter() - t
        redraws = view.follower.redraws
        assert redraws <= 10 * took * 1.5 + 3, (redraws, took)  # not one per stage (400)
        assert len(bars(view.svg())) == 400
        view.close()

    arun(scenario())


def test_the_dashboard_timeline_draws_only_when_unfolded(registry):
    factory = PipelineFactory(slow_chain(2, 0.01), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "completed")
        assert dash.timeline_section.selected_index is None and dash.timeline.svg() == ""  # folded: not drawn
        dash.timeline_section.selected_index = 0  # a click on its title
        assert bars(dash.timeline.svg()) == ["s0", "s1"]
        dash.close()

    arun(scenario())


def test_axis_ticks_of_a_sub_millisecond_run_are_all_different():
    from pipenb.timeline import tick_step, tick_text

    step = tick_step(0.002)
    labels = [tick_text(i * step, step) for i in range(5)]
    assert len(set(labels)) == 5, labels  # not "0", "0 ms", "1 ms", "2 ms", "2 ms"

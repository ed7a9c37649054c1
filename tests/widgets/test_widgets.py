"""SPEC 7, kernel-free layer: what the widgets hold and send, driven by real runs."""

import asyncio
import json
import time
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from pipenb import END, Pause, Pipeline, PipelineFactory, Stage, Step
from pipenb.widgets import EventTable, RunDashboard, RunPanel, StageGraph
from pipenb.display import checkpoint_html, run_context_html, state_html
from pipenb.rich import run_context_mimebundle
from pipenb.widgets.throttle import Ticker

from ..conftest import add, arun, eventually

EVIL = '<img src=x onerror="alert(1)">'


def demo(label="Load"):
    training = Pipeline("training", steps=[Step("fit", add("fit")), Step("score", add("score"))])
    return Pipeline("etl", stages=[
        Stage("load", steps=[Step("read", add("rows"))], label=label),
        Stage("check", steps=[Step("count", add("checks"))], router=lambda s, r: "load" if s["rows"] < 2 else None,
              routes=["load"]),
        Stage("train", pipeline=training),
    ])


def gate(pid: str, timeout: float) -> Pipeline:
    """Stage a pauses (for ``timeout`` s) before stage b: the dashboard tests' run."""
    return Pipeline(pid, stages=[
        Stage("a", steps=[Step("x", add("n"))], router=lambda s, r: Pause("b", timeout=timeout)),
        Stage("b", steps=[Step("y", add("n"))]),
    ])


def test_stage_graph_colours_stages_live_and_keeps_durations(registry):
    p = demo()
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    graph = StageGraph(p)
    graph.attach(ctx)
    assert graph.leaves == ["load", "check", "train/fit", "train/score"]
    ctx.run_sync()
    assert graph.status == {"load": "success", "check": "success", "train": "success", "train/fit": "success",
                            "train/score": "success"}
    assert set(graph.durations) >= {"load", "check", "train/fit"} and all(v >= 0 for v in graph.durations.values())
    # The SVG has an element per stage the browser can recolour by id.
    ids = {el.get("id") for el in ET.fromstring(graph.svg.split("?>", 1)[-1].split("]>", 1)[-1]).iter()}
    for addr in graph.leaves:
        assert "pipenb-stage-" + addr.replace("/", "--") in ids


def test_stage_graph_finds_stages_whose_last_event_is_far_back(registry):
    """Statuses come from each stage's last event, however many events ago, and never-run stages stay pending."""
    sub = Pipeline("sub", stages=[Stage("fit", steps=[Step("x", add("fit"))])])
    p = Pipeline("p", stages=[
        Stage("first", steps=[Step("x", add("n"))]),
        Stage("nested", pipeline=sub),
        Stage("spin", steps=[Step("x", add("spins"))],
              router=lambda s, r: "spin" if s["spins"] < 300 else END, routes=["spin"]),
        Stage("never", steps=[Step("x", add("n"))]),
    ], max_transitions=1000)
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    graph, log = StageGraph(p, ctx), ctx.record()
    ctx.run_sync()
    assert graph.status == {"first": "success", "nested": "success", "nested/fit": "success", "spin": "success"}
    assert set(graph.durations) == {"first", "nested", "nested/fit", "spin"}
    first = next(e for e in log if e.name == "stage:success")
    assert graph.durations["first"] == round(first.duration * 1000, 4)


def test_stage_graph_updates_while_the_run_goes(registry):
    async def slow(state):
        await asyncio.sleep(0.15)
        return {"n": state.get("n", 0) + 1}

    p = Pipeline("slow", stages=[Stage(f"s{i}", steps=[Step("x", slow)]) for i in range(4)])
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    graph = StageGraph(p, ctx)

    async def main():
        task = ctx.start()
        # Mid-run no run end has flushed yet: only the ticker can have pushed this.
        await eventually(lambda: graph.status.get("s0") == "success")
        mid = dict(graph.status)
        done_then = task.done()
        await task
        return mid, done_then

    mid, done_then = arun(main())
    assert mid.get("s0") == "success" and "s3" not in mid and not done_then
    assert graph.status == {f"s{i}": "success" for i in range(4)}
    assert 2 <= graph.follower.redraws <= 10


def test_stage_graph_marks_paused_and_failed(registry):
    def boom(state):
        raise ValueError("no")

    p = Pipeline("p", stages=[
        Stage("a", steps=[Step("x", add("n"))], router=lambda s, r: Pause("b") if s["n"] == 1 else None),
        Stage("b", steps=[Step("y", boom)]),
    ])
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    graph = StageGraph(p, ctx)
    ctx.run_sync()
    assert graph.status == {"a": "paused", "b": "paused"}
    ctx.run_sync()
    assert graph.status["b"] == "failed"


def test_breakpoints_trait_drives_the_attached_run(registry):
    p = demo()
    factory = PipelineFactory(p, registry=registry)
    ctx = factory.prepare_sync().unwrap()
    graph = StageGraph(p, ctx)
    graph.toggle_breakpoint("train/score")   # what a click does
    assert graph.breakpoints == ["train/score"] and ctx.breakpoints == {"train/score"}
    res = ctx.run_sync().unwrap()
    assert res.status == "paused" and res.checkpoint.resume_at == ("train", "score")
    assert graph.status["train/score"] == "paused"
    graph.toggle_breakpoint("train/score")
    assert ctx.breakpoints == set()
    # A new run attached to the same graph inherits the graph's breakpoints.
    graph.toggle_breakpoint("check")
    ctx2 = factory.prepare_sync().unwrap()
    graph.attach(ctx2)
    assert ctx2.run_sync().unwrap().checkpoint.resume_at == ("check",)


def test_attached_to_a_finished_run_shows_its_final_state(registry):
    p = demo()
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    ctx.run_sync()
    graph = StageGraph(p, ctx)
    assert graph.status == {"load": "success", "check": "success", "train/fit": "success", "train/score": "success"}
    table = EventTable(ctx)
    assert "completed" in table.note and table.total == 0
    dash = RunDashboard(PipelineFactory(p, registry=registry))
    dash.show(ctx)
    assert "completed" in dash.status.value and "score" in dash.state_view.value


def test_user_text_is_escaped_everywhere(registry):
    p = Pipeline("p", stages=[
        Stage("a", steps=[Step("x", lambda s: {EVIL: EVIL, "nested": {"k": EVIL}})], label=EVIL),
        Stage("b", steps=[Step("y", lambda s: (_ for _ in ()).throw(RuntimeError(EVIL)))]),
    ])
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    graph = StageGraph(p, ctx)
    table = EventTable(ctx)
    dash = RunDashboard(PipelineFactory(p, registry=registry))
    dash.show(ctx)
    ctx.run_sync()
    dash.refresh()
    for text in (graph.svg, state_html(ctx.state), checkpoint_html(ctx.checkpoint), dash.status.value,
                 dash.state_view.value, dash.checkpoint_view.value, run_context_html(ctx), p._repr_svg_()):
        assert "<img" not in text, text[:200]
    assert any(EVIL in row[-1] for row in table.rows)  # the table sends text; the browser sets textContent


def test_event_table_rows_filters_counts_and_dataframe(registry):
    p = demo()
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    table = EventTable(ctx, max_rows=5)
    ctx.run_sync()
    df = table.dataframe
    assert isinstance(df, pd.DataFrame) and len(df) == table.total > 5
    assert list(df.columns) == ["time", "elapsed_ms", "event", "path", "stage", "step", "duration_ms", "detail"]
    assert len(table.rows) == 5 and table.rows[-1][2] == "pipeline:success"
    assert table.counts["stage:start"] == 7 and sum(table.counts.values()) == table.total
    fit = df[df.stage == "train/fit"]
    assert set(fit.event) == {"stage:start", "step:start", "step:success", "stage:success"}
    assert fit.path.iloc[0] == "etl/training"
    assert df[df.event == "stage:success"].duration_ms.notna().all()
    table.event_filter = ["stage:success"]
    assert {r[2] for r in table.rows} == {"stage:success"} and len(table.rows) == 5
    table.stage_filter = "train/"
    assert [r[4] for r in table.rows] == ["train/fit", "train/score"]
    table.event_filter, table.stage_filter = [], ""
    assert len(table.rows) == 5


def test_event_table_keeps_earlier_runs_until_cleared(registry):
    p = demo()
    factory = PipelineFactory(p, registry=registry)
    first, second = (factory.prepare_sync().unwrap() for _ in range(2))
    table = EventTable(first, max_rows=3)
    first.run_sync()
    n = table.total
    table.attach(second)
    second.run_sync()
    assert table.total == 2 * n == len(table.dataframe) == len(table.events)
    assert table.counts["pipeline:start"] == 4 and sum(table.counts.values()) == 2 * n  # root + sub, twice
    assert [e.run_id for e in table.events] == [first.run_id] * n + [second.run_id] * n
    table.stage_filter = "load"  # the newest 3 rows about "load" are the second run's
    assert [r[4] for r in table.rows] == ["load"] * 3 and table.shown == 3
    table.stage_filter = ""
    table.clear()
    assert table.total == 0 and table.rows == [] and table.counts == {} and table.dataframe.empty
    third = factory.prepare_sync().unwrap()
    table.attach(third)
    third.run_sync()
    assert table.total == n and table.rows[-1][2] == "pipeline:success"


def test_event_table_rows_stay_right_across_many_redraws(registry):
    """Redraws reuse the rows they already built; what is shown must still be the newest events."""
    async def tick(state):
        await asyncio.sleep(0.004)
        return {"n": state.get("n", 0) + 1}

    p = Pipeline("p", stages=[Stage(f"s{i}", steps=[Step("x", tick)]) for i in range(80)])
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    table = EventTable(ctx, max_rows=30)
    seen = []
    table.observe(lambda change: seen.append(change["new"]), names="rows_json")
    ctx.run_sync()
    assert table.follower.redraws >= 3 and len(seen) >= 3

    def expected(df):
        df = df.tail(30).astype(object)
        return df.where(df.notna(), None).values.tolist()

    assert table.rows == expected(table.dataframe)
    assert json.loads(table.rows_json) == table.rows
    table.event_filter = ["step:success"]
    assert table.rows == expected(table.dataframe[table.dataframe.event == "step:success"])
    assert table.rows[-1][4] == "s79"


def test_ticker_caps_redraws_and_the_last_change_lands():
    backlog = []
    pushed = []

    def flush():
        pushed.append(len(backlog))

    async def burst():
        t = Ticker(flush, lambda: not pushed or pushed[-1] != len(backlog), per_second=10)
        t.start()
        end = time.monotonic() + 0.55
        while time.monotonic() < end:
            backlog.append(1)
            await asyncio.sleep(0.001)
        t.stop()
        t.flush_now()
        return t

    t = arun(burst())
    assert 3 <= t.count <= 8
    assert t.max_per_second() <= 10
    assert pushed[-1] == len(backlog)  # the last change landed


def test_widgets_redraw_at_most_ten_times_a_second_on_a_fast_run(registry):
    p = Pipeline("fast", stages=[Stage(f"s{i}", steps=[Step("x", add("n"))]) for i in range(3000)])
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    graph, table = StageGraph(p, ctx), EventTable(ctx)
    t0 = time.monotonic()
    ctx.run_sync()
    took = time.monotonic() - t0
    assert table.total == 3000 * 4 + 2
    for w in (graph, table):
        assert w.follower.ticker.max_per_second() <= 10
        assert w.follower.redraws <= 10 * took + 2
    assert graph.status["s2999"] == "success" and table.rows[-1][2] == "pipeline:success"


def test_dashboard_buttons_apply_only_when_they_should(registry):

    async def slow(state):
        await asyncio.sleep(0.02)
        return {"n": state.get("n", 0) + 1}

    p = Pipeline("dash", stages=[Stage(f"s{i}", steps=[Step("x", slow)]) for i in range(30)])
    factory = PipelineFactory(p, registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        disabled = {n: b.disabled for n, b in dash.buttons.items()}
        assert disabled == {"run": False, "pause": True, "step": False, "resume": True, "abort": True,
                            "retry": True, "discard": True, "replay": True, "compare": True}
        dash.press("resume")
        assert "Resume" in dash.message.value  # says why, does nothing
        dash.press("run")
        await asyncio.sleep(0.1)
        assert dash.ctx.status == "running" and not dash.buttons["pause"].disabled
        assert dash.buttons["run"].disabled and dash.buttons["resume"].disabled
        dash.press("run")
        assert "a run is going" in dash.message.value
        dash.press("pause")
        await eventually(lambda: dash.ctx.status == "paused", timeout=1)
        assert dash.ctx.status == "paused" and not dash.buttons["resume"].disabled
        await asyncio.sleep(0.15)  # the last redraw comes at most 0.1 s after the previous one
        assert "pipeline:paused" in {r[2] for r in dash.table.rows}
        at = dash.ctx.position
        assert dash.graph.status[at] == "paused"
        n = dash.ctx.state["n"]
        dash.press("step")
        await eventually(lambda: dash.ctx.status == "paused" and dash.ctx.state["n"] == n + 1, timeout=1)
        assert dash.ctx.state["n"] == n + 1
        assert dash.runs.value == dash.ctx.run_id
        assert dash.runs.row(dash.ctx.run_id)["cells"][4].endswith(" left")  # "0:59 left"; "… paused  s7  0:59 left  262 B"
        dash.press("resume")
        await eventually(lambda: dash.ctx.status == "completed", timeout=2)
        assert dash.ctx.status == "completed" and dash.ctx.state["n"] == 30
        assert "completed" in dash.status.value
        dash.close()

    arun(scenario())


def test_dashboard_picks_a_run_from_the_registry(registry):
    p = gate("pick", timeout=0)
    factory = PipelineFactory(p, registry=registry)
    ctx = factory.prepare_sync().unwrap()
    ctx.run_sync()  # paused, already released to the store (timeout=0)

    async def scenario():
        dash = RunDashboard(factory)
        assert "in the store" in dash.run_row(ctx.run_id)
        dash.runs.value = ctx.run_id
        await eventually(lambda: dash.ctx is not None, timeout=1)
        assert dash.ctx.run_id == ctx.run_id and dash.ctx.status == "paused"
        assert "saved with the checkpoint" in dash.checkpoint_view.value and "n" in dash.state_view.value
        dash.close()

    arun(scenario())


def test_picking_a_run_again_shows_the_events_seen_so_far(registry):
    p = gate("again", timeout=60)
    factory = PipelineFactory(p, registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "paused")
        first = dash.ctx
        seen = list(dash.table.dataframe.event)
        assert seen[0] == "pipeline:start" and seen[-1] == "pipeline:paused"
        dash.press("run")  # a second run: the table shows only its events
        await eventually(lambda: dash.ctx is not first and dash.ctx.status == "paused")
        second = dash.ctx
        assert dash.table.total == len(seen) and dash.table.counts["pipeline:paused"] == 1
        dash.runs.value = first.run_id  # back to the first run: its events are all there
        await eventually(lambda: dash.ctx is first)
        assert list(dash.table.dataframe.event) == seen and dash.table.total == len(seen)
        registry.expire(first.run_id)  # rebuilt from the store when picked: still one history
        dash.runs.value = second.run_id
        await eventually(lambda: dash.ctx is second)
        dash.runs.value = first.run_id
        await eventually(lambda: dash.ctx is not None and dash.ctx.run_id == first.run_id and dash.ctx is not first)
        dash.press("resume")
        await eventually(lambda: dash.ctx.status == "completed")
        await asyncio.sleep(0.15)
        events = list(dash.table.dataframe.event)
        assert events[: len(seen)] == seen and events[-1] == "pipeline:success"
        assert dash.table.rows[-1][2] == "pipeline:success"
        dash.close()

    arun(scenario())


def test_dashboard_shows_the_expiry_of_the_run_it_shows(registry):
    p = gate("exp", timeout=60)
    factory = PipelineFactory(p, registry=registry)
    ctx = factory.prepare_sync().unwrap()
    ctx.run_sync()
    dash = RunDashboard(factory)
    dash.show(ctx)
    assert "memory only" in dash.checkpoint_view.value
    assert " left  " in dash.run_row(ctx.run_id) and "in memory" in dash.status.value
    registry.expire(ctx.run_id)
    assert "saved with the checkpoint: a/x" in dash.checkpoint_view.value
    assert "in the store" in dash.run_row(ctx.run_id)
    dash.close()


def test_state_view_folds_nested_values_and_previews_dataframes():
    df = pd.DataFrame({"a": range(100), "b": ["<x>"] * 100})
    html = state_html({"cfg": {"lr": 0.1, "deep": {"x": 1}}, "frame": df, "items": list(range(50)), "n": 3})
    assert "<details" in html and "DataFrame 100 × 2" in html
    assert html.count("<tr>") < 40  # a head preview, not all 100 rows
    assert "&lt;x&gt;" in html and "<x>" not in html


def test_run_panel_and_context_display(registry):
    p = demo()
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    panel = RunPanel(ctx)
    ctx.run_sync()
    assert "completed" in panel.line.value
    bundle = run_context_mimebundle(ctx)
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/html" in bundle


def test_bad_widget_input():
    with pytest.raises(ValueError, match="max_rows"):
        EventTable(max_rows=0)


@pytest.mark.needs_dot
def test_stage_graph_is_laid_out_by_dot_when_installed():
    graph = StageGraph(demo(label=EVIL))
    assert graph.layout_engine == "graphviz" and graph.svg.lstrip().startswith("<?xml") and "<!-- Generated by graphviz" in graph.svg
    ids = {el.get("id") for el in ET.fromstring(graph.svg.split("?>", 1)[-1].split("]>", 1)[-1]).iter()}
    assert {"pipenb-stage-" + a.replace("/", "--") for a in graph.leaves} <= ids


def test_stage_graph_draws_without_graphviz_dot(monkeypatch, registry):
    import graphviz

    from pipenb.widgets import stage_graph

    def missing(*a, **k):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    monkeypatch.setattr(stage_graph, "_dot_available", lambda: False)
    p = demo(label=EVIL)
    graph = StageGraph(p)
    assert graph.layout_engine == "builtin" and graph.svg.startswith("<svg") and "<img" not in graph.svg
    ids = {el.get("id") for el in ET.fromstring(graph.svg).iter()}
    assert {"pipenb-stage-" + a.replace("/", "--") for a in graph.leaves} <= ids
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    graph.attach(ctx)
    ctx.run_sync()
    assert graph.status["train/score"] == "success"

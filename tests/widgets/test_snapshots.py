"""SPEC 12, kernel-free layer: every widget's output carries a static snapshot; closing leaks nothing."""

import gc
import re
import time
import warnings

import ipywidgets

from pipenb import Pause, Pipeline, PipelineFactory, Stage, Step
from pipenb.rich import run_context_mimebundle
from pipenb.graph import PALETTE
from pipenb.widgets import EventTable, RunDashboard, RunPanel, StageGraph

from ..conftest import add, arun, eventually

EVIL = '<img src=x onerror="alert(1)">'
VIEW = "application/vnd.jupyter.widget-view+json"
SUCCESS_FILL = PALETTE["success"]["fill"]
PAUSED_FILL = PALETTE["paused"]["fill"]


def gated(pid="snap"):
    return Pipeline(pid, stages=[
        Stage("a", steps=[Step("x", add("n"))], label=EVIL, router=lambda s, r: Pause("b")),
        Stage("b", steps=[Step("y", add("n"))]),
        Stage("c", steps=[Step("z", lambda s: {"note": EVIL})]),
    ])


def bundle_of(widget) -> dict:
    out = widget._repr_mimebundle_()
    return out[0] if isinstance(out, tuple) else out


def assert_static(html: str) -> None:
    """No script, no network: nothing a viewer would run or fetch."""
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<!DOCTYPE" not in html and "<?xml" not in html
    assert EVIL not in html  # user text is escaped


def widget_count() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return len(ipywidgets.Widget.widgets)


def listener_count(ctx) -> int:
    """Handlers and open EventLogs on the run. Private reach-in: a public ``ctx.listener_count()`` is proposed."""
    bus = ctx._bus
    return sum(map(len, bus._named.values())) + len(bus._wildcard) + bus.recording.open


def test_every_widget_output_has_the_live_view_and_a_static_snapshot(registry):
    p = gated()
    factory = PipelineFactory(p, registry=registry)
    ctx = factory.prepare_sync().unwrap()
    graph, table = StageGraph(p, ctx), EventTable(ctx)
    ctx.run_sync()  # pauses before b
    assert ctx.status == "paused"
    for widget in (graph, table):
        data = bundle_of(widget)
        assert data[VIEW]["model_id"] == widget.model_id
        assert "object at 0x" not in data["text/plain"] and len(data["text/plain"]) < 200
        assert_static(data["text/html"])
    gsnap = bundle_of(graph)["text/html"]
    assert PAUSED_FILL in gsnap and SUCCESS_FILL not in gsnap and "&lt;img" in gsnap
    tsnap = bundle_of(table)["text/html"]
    assert "pipeline:paused" in tsnap and "step:success" in tsnap
    assert tsnap.count("<tr>") == len(table.events) + 1  # header + every row (fewer than 20 events)
    ctx.run_sync()
    tsnap = bundle_of(table)["text/html"]
    assert "pipeline:success" in tsnap
    assert bundle_of(graph)["text/html"].count(SUCCESS_FILL) == 3  # a (paused on the way, then passed), b and c
    assert_static(tsnap)
    assert tsnap.count("<tr>") == len(table.events) + 1
    graph.close(), table.close()


def test_the_table_snapshot_holds_the_newest_twenty_rows_of_the_filter(registry):
    ten = Pipeline("ten", stages=[Stage(f"s{i}", steps=[Step("x", add("n"))]) for i in range(10)])
    ctx = PipelineFactory(ten, registry=registry).prepare_sync().unwrap()
    table = EventTable(ctx)
    ctx.run_sync()
    snap = bundle_of(table)["text/html"]
    assert snap.count("<tr>") == 21 and f"of {len(table.events)} events" in snap
    assert snap.rindex("pipeline:success") > snap.rindex("<td>s9</td>")  # newest last, up to the end
    table.stage_filter = "s3"
    assert bundle_of(table)["text/html"].count("<td>s3</td>") == 4  # stage and step start and success
    table.close()


def test_dashboard_and_context_snapshots_show_status_graph_state_and_events(registry):
    p = gated("snapdash")
    factory = PipelineFactory(p, registry=registry)
    dash = RunDashboard(factory)
    assert "object at 0x" not in bundle_of(dash)["text/plain"]
    dash.press("run")  # no loop: runs to the pause right here
    data = bundle_of(dash)
    assert data[VIEW]["model_id"] == dash.model_id
    assert "paused" in data["text/plain"]
    snap = data["text/html"]
    assert_static(snap)
    assert "<b>paused</b>" in snap and PAUSED_FILL in snap and "pipenb-state-view" in snap
    assert "pipeline:paused" in snap
    ctx = dash.ctx
    bundle = run_context_mimebundle(ctx)
    assert VIEW in bundle and "object at 0x" not in bundle["text/plain"]
    assert_static(bundle["text/html"])
    assert "paused" in bundle["text/html"] and PAUSED_FILL in bundle["text/html"]
    dash.close()


def test_a_displayed_context_keeps_one_panel_that_lets_go_when_the_run_finishes(registry):
    p = gated("letgo")
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    base = listener_count(ctx)
    first = run_context_mimebundle(ctx)[VIEW]["model_id"]
    again = run_context_mimebundle(ctx)[VIEW]["model_id"]
    assert first == again  # the same live panel
    panel = RunPanel.for_context(ctx)
    ctx.run_sync()
    assert panel.ctx is ctx and listener_count(ctx) > base  # paused: may go on, the panel follows
    ctx.run_sync()
    assert ctx.status == "completed"
    assert panel.ctx is None and listener_count(ctx) <= base  # finished for good: let go (the registry too)
    assert "completed" in panel.line.value
    snap = run_context_mimebundle(ctx)["text/html"]
    assert "completed" in snap and snap.count(SUCCESS_FILL) == 3  # the gate stage too: the run went on past it
    panel.close()
    assert RunPanel.for_context(ctx) is not panel  # a closed panel is never shown again


def ten_stage_ms(factory) -> float:
    best = float("inf")
    for _ in range(5):
        ctx = factory.prepare_sync().unwrap()
        t = time.perf_counter()
        ctx.run_sync().unwrap()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def test_two_hundred_dashboards_and_displays_leak_no_widget_and_no_listener(registry):
    ten = Pipeline("ten", stages=[Stage(f"s{i}", steps=[Step("x", add("n"))]) for i in range(10)])
    factory = PipelineFactory(ten, registry=registry)
    shown = factory.prepare_sync().unwrap()
    shown.run_sync()
    gc.collect()
    widgets0, listeners0, ms0 = widget_count(), listener_count(shown), ten_stage_ms(factory)
    for _ in range(200):
        dash = RunDashboard(factory)
        dash.show(shown)
        dash.close()
    gc.collect()
    assert widget_count() == widgets0
    assert listener_count(shown) == listeners0
    # The same context shown 200 times: one panel (7 widgets), which lets the finished run go.
    for _ in range(200):
        run_context_mimebundle(shown)
    gc.collect()
    assert widget_count() <= widgets0 + 7
    assert listener_count(shown) == listeners0
    # A paused run shown 200 times: one panel following it.
    paused = PipelineFactory(gated("leakpause"), registry=registry).prepare_sync().unwrap()
    paused.run_sync()
    base = listener_count(paused)
    run_context_mimebundle(paused)
    one = listener_count(paused)
    for _ in range(199):
        run_context_mimebundle(paused)
    assert listener_count(paused) == one <= base + 9
    ms = ten_stage_ms(factory)
    assert ms < max(5 * ms0, ms0 + 5), (ms0, ms)
    RunPanel.for_context(paused).close()
    RunPanel.for_context(shown).close()


def test_a_dashboard_closed_while_its_run_starts_stays_let_go(registry):
    p = gated("closing")
    factory = PipelineFactory(p, registry=registry)

    async def main():
        before = widget_count()
        dash = RunDashboard(factory)
        dash.press("run")
        dash.close()  # the run is being prepared: when it comes back, the dashboard must not follow it
        await eventually(lambda: any(r.status == "paused" for r in registry.runs() if r.pipeline_id == "closing"))
        assert dash.ctx is None
        assert widget_count() == before
        ctx = (await factory.resume(next(r.run_id for r in registry.runs() if r.pipeline_id == "closing"))).unwrap()
        return ctx

    ctx = arun(main())
    assert listener_count(ctx) <= 2  # the registry's own (paused / done)

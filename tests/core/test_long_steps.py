"""Long steps that never freeze the notebook (SPEC 8): the dashboard runs sync steps on
pipenb's worker threads, draws their progress live, and lands Abort while they run."""

import re
import threading
import time

from pipenb import Pipeline, PipelineFactory, Stage, Step
from pipenb.widgets import EventTable, RunDashboard, StageGraph

from ..conftest import add, arun, eventually


def long_pipeline(seconds: float, seen: dict, total=100, pid="long") -> Pipeline:
    """Stage "prep" (quick), stage "load" (a sync step of ``seconds`` reporting progress), stage "done"."""

    def read_rows(state, ctx):
        seen["thread"] = threading.current_thread().name
        slices = 100
        for k in range(slices):
            if ctx.signal.aborted:
                seen["saw_abort"] = True
                return {"rows": -1}
            time.sleep(seconds / slices)
            ctx.progress(k + 1, total if total is None else slices, f"reading rows <b>{k + 1}</b>")
        seen["returned"] = True
        return {"rows": slices}

    return Pipeline(pid, stages=[
        Stage("prep", steps=[Step("p", add("prepped"))]),
        Stage("load", steps=[Step("read", read_rows)]),
        Stage("done", steps=[Step("d", add("finished"))]),
    ])


def progress_rows(table: EventTable, step="read") -> list:
    return [r for r in table.rows if r[2] == "step:progress" and r[5] == step]


def test_dashboard_runs_a_long_sync_step_on_a_thread_live_and_aborts_it(registry):
    seen: dict = {}
    factory = PipelineFactory(long_pipeline(1.5, seen), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        # Asserted from inside the running loop while the step runs: the loop is free.
        await eventually(lambda: dash.graph.progress.get("load", {}).get("done"), timeout=2)
        assert dash.ctx.status == "running" and dash.graph.status["load"] == "running"
        assert seen["thread"].startswith("pipenb"), seen
        first = dash.graph.progress["load"]["done"]
        await eventually(lambda: dash.graph.progress.get("load", {}).get("done", 0) > first, timeout=1)
        # Several reports, one live row for the step, showing the latest report.
        await eventually(lambda: dash.table.counts.get("step:progress", 0) >= 3, timeout=1)
        rows = progress_rows(dash.table)
        assert len(rows) == 1, rows
        assert re.fullmatch(r"\d+/100 — reading rows <b>\d+</b>", rows[0][7]), rows
        assert "running" in dash.status.value and "load" in dash.status.value
        assert dash.graph.caption.endswith("· running")
        redraws = dash.graph.follower.redraws
        await eventually(lambda: dash.graph.follower.redraws > redraws + 2, timeout=1)  # the graph keeps redrawing
        # Abort lands within a second, even though the sync step is still going.
        t0 = time.monotonic()
        dash.press("abort")
        await eventually(lambda: dash.ctx.status == "aborted", timeout=1)
        assert time.monotonic() - t0 < 1.0
        assert "returned" not in seen  # the step had not finished: the abort did not wait for it
        assert "rows" not in dash.ctx.state and dash.ctx.state["prepped"] == 1  # "load" was not committed
        await eventually(lambda: "aborted" in dash.status.value, timeout=1)
        await eventually(lambda: dash.graph.progress == {}, timeout=1)
        await eventually(lambda: seen.get("saw_abort"), timeout=1)  # the step saw the signal and gave up
        assert "rows" not in dash.ctx.state
        assert not dash.buttons["resume"].disabled
        dash.close()

    arun(scenario())


def test_abort_and_pause_act_from_the_clicks_own_thread_while_the_loop_is_busy(registry):
    seen: dict = {}
    factory = PipelineFactory(long_pipeline(1.0, seen, pid="busy"), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.position == "load", timeout=2)
        # A click on another thread while the loop is blocked: the run's flags are set at once.
        pause = threading.Thread(target=dash.press, args=("pause",))
        pause.start()
        pause.join()
        assert dash.ctx.lifecycle.pause_request is not None
        t = threading.Thread(target=dash.press, args=("abort",))
        time.sleep(0.05)  # the loop stays blocked through the click
        t.start()
        t.join()
        assert dash.ctx.signal.aborted  # before the loop got a turn
        await eventually(lambda: dash.ctx.status == "aborted", timeout=1)
        assert "rows" not in dash.ctx.state
        dash.close()

    arun(scenario())


def test_resume_and_step_continue_with_start_on_threads(registry):
    seen: dict = {}
    factory = PipelineFactory(long_pipeline(0.2, seen, pid="cont"), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("step")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "paused", timeout=2)
        assert dash.ctx.position == "load"
        dash.press("step")
        await eventually(lambda: dash.ctx.status == "paused" and dash.ctx.position == "done", timeout=2)
        assert seen["thread"].startswith("pipenb") and dash.ctx.state["rows"] == 100
        dash.press("resume")
        await eventually(lambda: dash.ctx.status == "completed", timeout=2)
        assert dash.ctx.state["finished"] == 1
        dash.close()

    arun(scenario())


def test_graph_progress_without_total_and_cleared_when_the_stage_ends(registry):
    seen: dict = {}
    p = long_pipeline(0.6, seen, total=None, pid="nototal")
    factory = PipelineFactory(p, registry=registry)

    async def scenario():
        ctx = (await factory.prepare()).unwrap()
        graph, table = StageGraph(p, ctx), EventTable(ctx)
        task = ctx.start()
        await eventually(lambda: graph.progress.get("load", {}).get("done"), timeout=2)
        report = graph.progress["load"]
        assert report["total"] is None and report["step"] == "read"
        assert report["message"].startswith("reading rows <b>")  # plain text: the browser sets it as text
        await eventually(lambda: len(progress_rows(table)) == 1 and " — reading rows" in progress_rows(table)[0][7])
        assert "/" not in progress_rows(table)[0][7].split(" — ")[0]
        res = await task
        assert res.is_ok and ctx.state["rows"] == 100
        await eventually(lambda: graph.status.get("done") == "success")
        assert graph.progress == {}
        rows = progress_rows(table)
        assert len(rows) == 1 and rows[0][7].startswith("100 — reading rows <b>100</b>")
        assert table.counts["step:progress"] >= 2
        # Filtering keeps the one row; the dataframe keeps every report.
        table.event_filter = ["step:progress"]
        assert [r[2] for r in table.rows] == ["step:progress"]
        assert (table.dataframe.event == "step:progress").sum() == table.counts["step:progress"]
        graph.detach()
        table.detach()

    arun(scenario())


def test_event_table_keeps_one_progress_row_per_step_within_max_rows(registry):
    def chatty(state, ctx):
        for k in range(5):
            ctx.progress(k + 1, 5)
            time.sleep(0.11)  # each report gets through the 10/s coalescing
        return {}

    p = Pipeline("chat", stages=[Stage(f"s{i}", steps=[Step("c", chatty)]) for i in range(2)])
    factory = PipelineFactory(p, registry=registry)

    async def scenario():
        ctx = (await factory.prepare()).unwrap()
        table = EventTable(ctx, max_rows=6)
        res = await ctx.start()
        assert res.is_ok
        await eventually(lambda: table.total == len(table.dataframe) and table.rows[-1][2] == "pipeline:success")
        assert table.counts["step:progress"] == 10
        names = [r[2] for r in table.rows]
        assert len(names) == 6 and names.count("step:progress") == 1
        assert [r[7] for r in table.rows if r[2] == "step:progress"] == ["5/5"]
        table.max_rows = 1000
        table._refilter()
        prog = [(r[4], r[7]) for r in table.rows if r[2] == "step:progress"]
        assert prog == [("s0", "5/5"), ("s1", "5/5")]
        names = [r[2] for r in table.rows]
        assert names.index("step:progress") == names.index("step:start") + 1  # where the first report came
        table.detach()

    arun(scenario())

"""RunDashboard figures: following a run of 100,000 events, and picking a big run back from the runs list."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time

from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from widgets_bench import STAGES, WIDTH, _noop, _pipeline

PICK_LAPS = 250        # 2,500 stage runs of 4 events: 10,000 events, plus the run's own two
DF_ROWS = 200_000


def _run(pipeline, dashboard: bool) -> tuple[float, object]:
    """Seconds of ``ctx.run()`` alone; with ``dashboard``, a RunDashboard made in the loop shows the run."""

    async def main():
        from pipenb.widgets import RunDashboard

        factory = PipelineFactory(pipeline, registry=PipelineRegistry())
        dash = RunDashboard(factory) if dashboard else None  # made in the loop: its tickers and clock run
        ctx = (await factory.prepare()).unwrap()
        if dash is not None:
            dash.show(ctx)
        gc.collect()
        t = time.perf_counter()
        (await ctx.run()).unwrap()
        return time.perf_counter() - t, dash

    return asyncio.run(main())  # its shutdown lets the widgets' last redraw land


def following(report, repeats: int) -> None:
    pipeline = _pipeline(_noop)
    n = max(3, repeats)
    times = {"bare": [], "dashboard": []}
    redraws, worst_rate = [], 0
    for i in range(n):
        # Paired and in alternating order, as widgets_bench: the VM's speed drifts within seconds.
        for kind in (list(times) if i % 2 == 0 else list(times)[::-1]):
            seconds, dash = _run(pipeline, kind == "dashboard")
            times[kind].append(seconds)
            if dash is not None:
                assert dash.table.total == STAGES * 4 + 2, dash.table.total
                redraws.append((dash.table.follower.redraws, dash.graph.follower.redraws, dash.follower.redraws))
                worst_rate = max(worst_rate, dash.table.follower.ticker.max_per_second(),
                                 dash.graph.follower.ticker.max_per_second(), dash.follower.ticker.max_per_second())
                dash.close()  # ipywidgets keeps every open widget; a growing heap would skew later runs

    ratios = sorted(t / b for t, b in zip(times["dashboard"], times["bare"], strict=True))
    bare = statistics.median(times["bare"])
    report.add("100,000 events, no-op steps, no widget", f"{bare * 1e3:.0f} ms", "",
               f"{bare / (STAGES * 4) * 1e6:.2f} µs/event")
    report.add("100,000 events, no-op steps, RunDashboard showing the run",
               f"{statistics.median(times['dashboard']) * 1e3:.0f} ms", f"{statistics.median(ratios):.2f}x",
               f"target <= 2x of no widget; median of {n} pairs, {ratios[0]:.2f}-{ratios[-1]:.2f}x")
    tables, graphs, heads = zip(*redraws, strict=True)
    report.add("  redraws per run: table / graph / header+state",
               f"{min(tables)}-{max(tables)} / {min(graphs)}-{max(graphs)} / {min(heads)}-{max(heads)}", "",
               f"{worst_rate} per s at most over all runs (<= 10)")


def _paused_pipeline() -> Pipeline:
    """widgets_bench's loop of 10 no-op stages, gone round ``PICK_LAPS`` times, then paused (held, no expiry)."""

    def back(state, results):
        return "s0" if state["laps"] < PICK_LAPS else Pause("s0", timeout=float("inf"))

    stages = [Stage(f"s{i}", steps=[Step("x", _noop)]) for i in range(WIDTH - 1)]
    stages.append(Stage(f"s{WIDTH - 1}", steps=[Step("lap", lambda s: {"laps": s.get("laps", 0) + 1})],
                        router=back, routes=["s0"]))
    return Pipeline("picked", stages=stages, max_transitions=PICK_LAPS * WIDTH + 1)


def picking(report, repeats: int) -> None:
    import numpy as np
    import pandas as pd

    from pipenb.widgets import RunDashboard

    df = pd.DataFrame(np.random.default_rng(0).random((DF_ROWS, 5)), columns=list("abcde"))
    n = 5

    async def main():
        registry = PipelineRegistry(default_timeout=3600)
        factory = PipelineFactory(_paused_pipeline(), registry=registry)
        dash = RunDashboard(factory)
        big = (await factory.prepare(initial_state={"df": df})).unwrap()
        dash.show(big)  # the dashboard records its events (its EventLog for this run)
        res = await big.run()
        assert big.status == "paused", (big.status, res)
        other = (await factory.prepare()).unwrap()
        assert len(dash._logs_for(big)) == 1 and len(dash._logs_for(big)[0]) == PICK_LAPS * WIDTH * 4 + 2
        firsts, settled = [], []
        for _ in range(n + 1):  # the first is a warm-up
            dash.runs.value = other.run_id
            await _settle(dash)
            assert dash.ctx is other
            # A second apart, as a person clicks: graph and table draw at most 10 times in any one
            # second, so picks 10 a second would measure the rate limit's wait (up to 1 s), not the draw.
            await asyncio.sleep(1.0)
            gc.collect()
            table0 = dash.table.follower.redraws
            before = asyncio.all_tasks()
            t = time.perf_counter()
            dash.runs.value = big.run_id  # a click on its row
            first = None
            while first is None:
                # The header and state are redrawn by the dashboard's ticker or by the pick's own
                # redraw when its task ends, whichever comes first: read the state view itself.
                if (dash.ctx is big and dash.table.follower.redraws > table0
                        and "DataFrame 200000" in dash.state_view.value):
                    first = time.perf_counter() - t
                else:
                    await asyncio.sleep(0)
            await _settle(dash, before)
            settled.append(time.perf_counter() - t)
            firsts.append(first)
            assert dash.table.total == PICK_LAPS * WIDTH * 4 + 2 and dash.ctx.run_id == big.run_id
        dash.close()
        registry.close()
        return firsts[1:], settled[1:]

    firsts, settled = asyncio.run(main())
    report.add("pick a run: 10,000 events + 200,000-row DataFrame, click to drawn",
               f"{statistics.median(settled) * 1e3:.0f} ms", "",
               f"target <= 300 ms; median of {n}, {min(settled) * 1e3:.0f}-{max(settled) * 1e3:.0f} ms")
    report.add("  click to first draw of table + state (before the pick's task ends)",
               f"{statistics.median(firsts) * 1e3:.0f} ms", "", "")


async def _settle(dash, before=None) -> None:
    """Wait for the task a pick started (``RunControl._open``), then for its redraw when done.

    Only that task: a ticker's deferred redraw may sleep out its rate limit (up to a second)
    and then find nothing left to draw, which is no part of showing the run.
    """
    before = before if before is not None else set()
    opening = [t for t in asyncio.all_tasks() - before
               if not t.done() and t.get_coro().__qualname__.endswith("._open")]
    if opening:
        await asyncio.wait(opening)
    for _ in range(2):
        await asyncio.sleep(0)  # the task's done callback: the dashboard's closing _refresh_all


def section(report, repeats: int, base: float) -> None:
    following(report, repeats)
    picking(report, repeats)

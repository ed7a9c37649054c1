"""Widget figures (issue 4): a run emitting 100,000 events with an EventTable and a StageGraph attached."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time

from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step

STAGES = 25_000  # stage runs; 4 events each: 100,000 events, plus the run's own two
WIDTH = 10       # a loop of 10 stages, gone round 2,500 times


def _loop_back(state, results):
    return "s0" if state["laps"] < STAGES // WIDTH else None


def _noop(state):
    return {"x": 1}


def _light(state):
    return {"x": sum(range(2000))}  # ~25 µs: still far lighter than a typical notebook step


def _pipeline(action=_noop) -> Pipeline:
    stages = [Stage(f"s{i}", steps=[Step("x", action)]) for i in range(WIDTH - 1)]
    stages.append(Stage(f"s{WIDTH - 1}", steps=[Step("lap", lambda s: {"laps": s.get("laps", 0) + 1})],
                        router=_loop_back, routes=["s0"]))
    return Pipeline("events", stages=stages, max_transitions=STAGES + 1)


def _run(pipeline, attach) -> tuple[float, list]:
    """Seconds of ``ctx.run()`` alone, with the widgets ``attach(ctx)`` returns listening."""

    async def main():
        factory = PipelineFactory(pipeline, registry=PipelineRegistry())
        ctx = (await factory.prepare()).unwrap()
        widgets = attach(ctx)
        gc.collect()
        t = time.perf_counter()
        (await ctx.run()).unwrap()
        return time.perf_counter() - t, widgets

    return asyncio.run(main())  # its shutdown lets the widgets' last redraw land


def section(report, repeats: int, base: float) -> None:
    from pipenb.widgets import EventTable, StageGraph

    def watched(ctx):
        return [EventTable(ctx), StageGraph(pipeline, ctx)]

    for name, action, n in (("no-op steps", _noop, max(3, repeats)), ("steps doing ~25 µs of work", _light, 3)):
        pipeline = _pipeline(action)
        bares, logged, runs = [], [], []
        for _ in range(n):  # interleaved, so drift on a shared VM hits all alike
            bares.append(_run(pipeline, lambda ctx: [])[0])
            if action is _noop:
                logged.append(_run(pipeline, lambda ctx: [ctx.record()])[0])
            seconds, widgets = _run(pipeline, watched)
            runs.append((seconds, widgets))
            for w in widgets:
                w.close()  # ipywidgets keeps every open widget; a growing heap would skew later runs
        # Medians, not minimums: a minimum would favour the run whose redraw tick happened not to fire.
        bare = statistics.median(bares)
        best, (table, graph) = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
        assert table.total == STAGES * 4 + 2
        report.add(f"100,000 events, {name}, no listener", f"{bare * 1e3:.0f} ms", "",
                   f"{bare / (STAGES * 4) * 1e6:.2f} µs/event")
        if logged:
            log_only = statistics.median(logged)
            report.add(f"100,000 events, {name}, one EventLog (ctx.record())", f"{log_only * 1e3:.0f} ms",
                       f"{log_only / bare:.2f}x", "what recording alone costs")
        report.add(f"100,000 events, {name}, EventTable + StageGraph", f"{best * 1e3:.0f} ms",
                   f"{best / bare:.2f}x", "target <= 2x of no listener")
        report.add("  redraws: table / graph (most in any one second)",
                   f"{table.redraws} / {graph.redraws}", "",
                   f"{table._ticker.max_per_second()} / {graph._ticker.max_per_second()} per s (<= 10)")

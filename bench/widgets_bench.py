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
        variants = {"bare": lambda ctx: [], "watched": watched}
        if action is _noop:
            variants["logged"] = lambda ctx: [ctx.record()]
        times = {k: [] for k in variants}
        redraws, worst_rate = [], 0
        for i in range(n):
            # Paired and in alternating order: the VM's speed drifts by tens of percent
            # within seconds, and a pair of back-to-back runs sees the same speed.
            for kind in (list(variants) if i % 2 == 0 else list(variants)[::-1]):
                seconds, widgets = _run(pipeline, variants[kind])
                times[kind].append(seconds)
                if kind == "watched":
                    table, graph = widgets
                    assert table.total == STAGES * 4 + 2
                    redraws.append((table.follower.redraws, graph.follower.redraws))
                    worst_rate = max(worst_rate, table.follower.ticker.max_per_second(), graph.follower.ticker.max_per_second())
                for w in widgets:
                    w.close()  # ipywidgets keeps every open widget; a growing heap would skew later runs

        def ratio(kind):
            ratios = sorted(t / b for t, b in zip(times[kind], times["bare"], strict=True))
            return statistics.median(ratios), ratios[0], ratios[-1]

        bare = statistics.median(times["bare"])
        report.add(f"100,000 events, {name}, no listener", f"{bare * 1e3:.0f} ms", "",
                   f"{bare / (STAGES * 4) * 1e6:.2f} µs/event")
        if "logged" in times:
            mid, lo, hi = ratio("logged")
            report.add(f"100,000 events, {name}, one EventLog (ctx.record())",
                       f"{statistics.median(times['logged']) * 1e3:.0f} ms", f"{mid:.2f}x",
                       f"what recording alone costs; pairs {lo:.2f}-{hi:.2f}x")
        mid, lo, hi = ratio("watched")
        report.add(f"100,000 events, {name}, EventTable + StageGraph",
                   f"{statistics.median(times['watched']) * 1e3:.0f} ms", f"{mid:.2f}x",
                   f"target <= 2x of no listener; median of {n} pairs, {lo:.2f}-{hi:.2f}x")
        tables, graphs = zip(*redraws, strict=True)
        report.add("  redraws per run: table / graph; most in any one second",
                   f"{min(tables)}-{max(tables)} / {min(graphs)}-{max(graphs)}", "",
                   f"{worst_rate} per s at most over all runs (<= 10)")

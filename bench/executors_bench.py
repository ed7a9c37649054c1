"""Where steps run (SPEC 8): thread hand-off cost, a free loop, abort latency, progress cost.

Printed by ``bench/run.py`` in the same run; alone: ``python bench/executors_bench.py [--quick]``.
Ratios are medians of paired measurements taken back to back in alternating order (the VM's
speed drifts by tens of percent within seconds; a pair sees the same speed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import gc
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step  # noqa: E402

STAGES = 50
ROUND_TRIPS = 200


def noop(*_):
    return None


def step_noop(state):
    return {"x": 1}


def pipeline_of(stages: int, steps_per_stage: int) -> Pipeline:
    return Pipeline("exbench", stages=[
        Stage(f"s{i}", steps=[Step(f"t{j}", step_noop) for j in range(steps_per_stage)]) for i in range(stages)
    ])


def _paired(cases: dict, pairs: int, baseline: str) -> tuple[dict, dict]:
    """Run each case ``pairs`` times, order alternating; (median seconds, median ratio to baseline)."""
    times = {k: [] for k in cases}
    names = list(cases)
    for k in names:
        cases[k]()  # warm-up
    for i in range(pairs):
        gc.collect()
        for k in (names if i % 2 == 0 else names[::-1]):
            times[k].append(cases[k]())
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = {k: statistics.median(t / b for t, b in zip(v, times[baseline], strict=True)) for k, v in times.items()}
    return med, ratio


# -- (a)-(c): hand-off cost ----------------------------------------------------------------------


def handoff(pairs: int) -> tuple[dict, dict]:
    loop = asyncio.new_event_loop()
    pool = cf.ThreadPoolExecutor(4, thread_name_prefix="raw")
    registry = PipelineRegistry()
    one, five = PipelineFactory(pipeline_of(STAGES, 1), registry=registry), \
        PipelineFactory(pipeline_of(STAGES, 5), registry=registry)

    async def raw():
        t = time.perf_counter()
        for _ in range(ROUND_TRIPS):
            await loop.run_in_executor(pool, noop)
        return (time.perf_counter() - t) / ROUND_TRIPS

    async def started(factory):
        ctx = (await factory.prepare()).unwrap()
        t = time.perf_counter()
        (await ctx.start()).unwrap()
        return (time.perf_counter() - t) / STAGES

    try:
        return _paired({
            "raw": lambda: loop.run_until_complete(raw()),
            "one": lambda: min(loop.run_until_complete(started(one)) for _ in range(3)),
            "five": lambda: min(loop.run_until_complete(started(five)) for _ in range(3)),
        }, pairs, "raw")
    finally:
        pool.shutdown()
        registry.close()
        loop.close()


# -- (d): the loop stays free while a long sync step runs ---------------------------------------


def longest_tick_gap(seconds: float = 2.0) -> float:
    def slow(state):
        time.sleep(seconds)
        return {"slept": True}

    factory = PipelineFactory(Pipeline("slow", steps=[Step("slow", slow)]), registry=PipelineRegistry())

    async def main():
        ctx = (await factory.prepare()).unwrap()
        ticks = []
        done = False

        async def ticker():
            while not done:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.02)

        tick = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.05)
        (await ctx.start()).unwrap()
        done = True
        await tick
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        return max(gaps)

    return asyncio.run(main())


# -- (e): abort latency -------------------------------------------------------------------------


def abort_latencies(n: int = 20) -> list[float]:
    """Seconds from ``ctx.abort()`` to the ``start()`` task's end, a sync step ignoring the signal."""
    started = threading.Event()

    def stubborn(state):
        started.set()
        time.sleep(0.25)  # never looks at ctx.signal
        return {"late": True}

    factory = PipelineFactory(Pipeline("ab", steps=[Step("stubborn", stubborn)]), registry=PipelineRegistry())

    async def once():
        started.clear()
        ctx = (await factory.prepare()).unwrap()
        task = ctx.start()
        while not started.is_set():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.02)
        t = time.perf_counter()
        ctx.abort("bench")
        res = await task
        elapsed = time.perf_counter() - t
        assert res.is_err and ctx.status == "aborted", res
        return elapsed

    async def main():
        out = [await once() for _ in range(n)]
        await asyncio.sleep(0.3)  # let the abandoned steps end
        return out

    return asyncio.run(main())


# -- (f): progress per item ---------------------------------------------------------------------


def _calibrate_work(target: float = 10e-6) -> int:
    n = 100
    while True:
        t = time.perf_counter()
        for _ in range(200):
            sum(range(n))
        per = (time.perf_counter() - t) / 200
        if per >= target * 0.9 or n > 10**6:
            return max(1, int(n * target / per))
        n *= 2


def progress_cost(pairs: int, items: int = 100_000) -> tuple[dict, dict, float]:
    n = _calibrate_work()

    def plain(state):
        for _ in range(items):
            sum(range(n))
        return {"done": items}

    def reporting(state, ctx):
        for i in range(items):
            sum(range(n))
            ctx.progress(i + 1, items)
        return {"done": items}

    registry = PipelineRegistry()
    factories = {k: PipelineFactory(Pipeline(k, steps=[Step("work", f)]), registry=registry)
                 for k, f in (("plain", plain), ("progress", reporting))}
    loop = asyncio.new_event_loop()
    delivered = []

    async def once(kind):
        ctx = (await factories[kind].prepare()).unwrap()
        log = ctx.record()  # what the widgets do: progress is live only when someone listens
        t = time.perf_counter()
        (await ctx.start()).unwrap()
        elapsed = time.perf_counter() - t
        delivered.append(sum(1 for e in log if e.name == "step:progress"))
        log.close()
        return elapsed

    try:
        med, ratio = _paired({k: (lambda k=k: loop.run_until_complete(once(k))) for k in factories}, pairs, "plain")
    finally:
        registry.close()
        loop.close()
    return med, ratio, max(delivered)


# -- report -------------------------------------------------------------------------------------


def section(report, repeats: int, base: float | None = None) -> None:
    quick = repeats <= 3
    med, ratio = handoff(5 if quick else 15)
    raw = med["raw"]
    report.add("(a) raw await loop.run_in_executor(pool, noop)", f"{raw * 1e6:.1f} µs", "1.00x")
    report.add("(b) start(): single-step no-op stage (default executor)", f"{med['one'] * 1e6:.1f} µs",
               f"{ratio['one']:.2f}x (a)", "target <= 1.5x (a)")
    report.add("(c) start(): 5-sync-step stage", f"{med['five'] * 1e6:.1f} µs", f"{ratio['five']:.2f}x (a)",
               "target <= 2x (a)")
    gaps = [longest_tick_gap() for _ in range(1 if quick else 2)]
    report.add("(d) 20 ms ticker during a 2 s sync step: longest gap", f"{max(gaps) * 1e3:.1f} ms", "",
               "target <= 50 ms")
    lat = abort_latencies(10 if quick else 20)
    report.add(f"(e) abort latency, threaded sync step (median of {len(lat)})",
               f"{statistics.median(lat) * 1e3:.2f} ms", f"max {max(lat) * 1e3:.1f} ms", "target <= 100 ms")
    med, ratio, delivered = progress_cost(2 if quick else 5)
    report.add("(f) 100k items x ~10 µs, no progress (EventLog open)", f"{med['plain'] * 1e3:.0f} ms", "1.00x")
    report.add("(f) same, ctx.progress per item (EventLog open)", f"{med['progress'] * 1e3:.0f} ms",
               f"{ratio['progress']:.3f}x", f"target <= 1.1x ({delivered} events kept)")


if __name__ == "__main__":
    import argparse

    sys.path.insert(0, os.path.dirname(__file__))
    from run import Report

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"pipenb executors bench — Python {sys.version.split()[0]}, {os.cpu_count()} cores", flush=True)
    section(Report(), 3 if args.quick else 15)

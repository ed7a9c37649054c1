"""Pause/resume figures (issue 3), printed by ``bench/run.py`` in the same run."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import statistics
import tempfile
import threading
import time
import tracemalloc

from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.stores import SqliteStore
from timing import raw_step

MIB10 = b"\1" * (10 * 1024 * 1024)


def pausing_pipeline() -> Pipeline:
    return Pipeline("pauser", stages=[
        Stage("a", steps=[Step("x", lambda s: {"x": 1})], router=lambda s, r: Pause("a", timeout=600)),
    ])


def _median_per_call(fn, calls: int, repeats: int) -> float:
    fn(10)
    times = []
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        fn(calls)
        times.append((time.perf_counter() - t) / calls)
    return statistics.median(times)


def pause_and_fast_resume(repeats: int) -> dict:
    """Seconds per paused ``run()`` of one stage and per fast-path ``resume()`` call, for an empty
    and a 10 MiB state measured in alternation; plus the median of the paired 10 MiB/empty ratios.

    Pairs matter here: the VM's speed drifts by tens of percent within seconds.
    """
    registry = PipelineRegistry()
    loop = asyncio.new_event_loop()
    runs = {}
    for label, initial in (("empty", None), ("10 MiB", {"blob": MIB10})):
        factory = PipelineFactory(pausing_pipeline(), registry=registry)
        ctx = loop.run_until_complete(factory.prepare(initial_state=initial)).unwrap()
        loop.run_until_complete(ctx.run())
        runs[label] = (factory, ctx)

    async def pauses(ctx, n):
        for _ in range(n):
            await ctx.run()

    async def resumes(factory, ctx, n):
        for _ in range(n):
            await factory.resume(ctx.run_id)

    def per_call(coro, calls):
        gc.collect()
        t = time.perf_counter()
        loop.run_until_complete(coro)
        return (time.perf_counter() - t) / calls

    samples = {label: {"pause": [], "resume": []} for label in runs}
    raw: list[float] = []
    try:
        for i in range(repeats + 1):
            for label in (list(runs) if i % 2 == 0 else list(runs)[::-1]):
                factory, ctx = runs[label]
                pause = per_call(pauses(ctx, 500), 500)
                resume = per_call(resumes(factory, ctx, 2000), 2000)
                if i:  # the first round warms up
                    samples[label]["pause"].append(pause)
                    samples[label]["resume"].append(resume)
            if i:
                raw.append(raw_step(loop))
            assert loop.run_until_complete(factory.resume(ctx.run_id)).unwrap() is ctx
    finally:
        loop.close()
        registry.close()
    out = {label: {k: statistics.median(v) for k, v in d.items()} for label, d in samples.items()}
    for k in ("pause", "resume"):
        pairs = [b / e for b, e in zip(samples["10 MiB"][k], samples["empty"][k], strict=True)]
        out[f"{k} ratio"] = statistics.median(pairs)
    out["pause in raw steps"] = statistics.median(p / r for p, r in zip(samples["empty"]["pause"], raw, strict=True))
    return out


def slow_resume(repeats: int) -> float:
    """Seconds per resume() that rebuilds the context from the in-memory store."""
    registry = PipelineRegistry()
    factory = PipelineFactory(pausing_pipeline(), registry=registry)
    loop = asyncio.new_event_loop()
    ctx = loop.run_until_complete(factory.prepare()).unwrap()
    loop.run_until_complete(ctx.run())
    run_id = ctx.run_id

    async def rebuilds(n):
        for _ in range(n):
            registry.expire(run_id)
            await factory.resume(run_id)

    try:
        return _median_per_call(lambda n: loop.run_until_complete(rebuilds(n)), 500, repeats)
    finally:
        loop.close()
        registry.close()


def sqlite_resume(repeats: int) -> tuple[float, bool]:
    """Seconds to resume a paused run holding 10 MiB of bytes from a SQLite file (new factory)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.sqlite")
        factory = PipelineFactory(pausing_pipeline(), store_factory=SqliteStore.factory(path),
                                  registry=PipelineRegistry())
        ctx = factory.prepare_sync(initial_state={"blob": MIB10}).unwrap()
        ctx.run_sync()
        factory.store_factory.close()
        times, exact = [], True
        for _ in range(repeats):
            fresh = PipelineFactory(pausing_pipeline(), store_factory=SqliteStore.factory(path),
                                    registry=PipelineRegistry())
            t = time.perf_counter()
            again = fresh.resume_sync(ctx.run_id).unwrap()
            times.append(time.perf_counter() - t)
            exact = exact and again.state["blob"] == MIB10
            fresh.store_factory.close()
        return statistics.median(times), exact


def many_paused(n: int = 10_000) -> tuple[float, int, int]:
    """(MB held by n paused live runs, threads before, threads after)."""
    registry = PipelineRegistry(default_timeout=3600)
    factory = PipelineFactory(pausing_pipeline(), registry=registry)
    loop = asyncio.new_event_loop()
    one = loop.run_until_complete(factory.prepare()).unwrap()
    loop.run_until_complete(one.run())  # starts the shared timer thread
    threads_before = threading.active_count()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]

    async def pause_many():
        for _ in range(n):
            ctx = (await factory.prepare()).unwrap()
            await ctx.run()

    loop.run_until_complete(pause_many())
    gc.collect()
    held = (tracemalloc.get_traced_memory()[0] - base) / 1e6
    tracemalloc.stop()
    live = sum(1 for r in registry.runs() if r.live)
    assert live == n + 1, live
    threads_after = threading.active_count()
    registry.close()
    loop.close()
    return held, threads_before, threads_after


def section(report, repeats: int, base: float) -> None:
    m = pause_and_fast_resume(repeats)
    e_pause, e_resume = m["empty"]["pause"], m["empty"]["resume"]
    b_pause, b_resume = m["10 MiB"]["pause"], m["10 MiB"]["resume"]
    us = lambda s: f"{s * 1e6:.2f} µs"  # noqa: E731
    x = lambda s: f"{s / base:.1f}x"  # noqa: E731
    report.add("pause: run() of one stage that pauses, empty state", us(e_pause), x(e_pause), "target <= 20 µs")
    # The VM's pace drifts by tens of percent within minutes: the same pause in raw steps timed in the same rounds.
    report.add("  pause in raw steps timed in the same rounds (paired)", f"{m['pause in raw steps']:.0f}x", "",
               f"20 µs is {20e-6 / base:.0f}x the raw step of the first row")
    report.add("pause: same, 10 MiB state", us(b_pause), x(b_pause),
               f"{m['pause ratio']:.2f}x of empty, paired (<= 1.2x)")
    report.add("fast-path resume() call, empty state", us(e_resume), x(e_resume), "target <= 10 µs")
    report.add("fast-path resume() call, 10 MiB state", us(b_resume), x(b_resume),
               f"{m['resume ratio']:.2f}x of empty, paired (<= 1.2x)")
    slow = slow_resume(repeats)
    report.add("slow-path resume() from memory (expire + rebuild)", us(slow), x(slow))
    sq, exact = sqlite_resume(max(3, repeats // 3))
    report.add("SQLite resume of a run holding 10 MiB bytes", f"{sq * 1e3:.2f} ms", x(sq),
               f"target <= 25 ms; exact round trip: {exact}")
    held, before, after = many_paused()
    report.add("10,000 paused runs held live", f"{held:.1f} MB", "",
               f"target < 200 MB; threads {before} -> {after}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report.add("  (peak RSS of the whole bench process)", f"{rss:.0f} MB")

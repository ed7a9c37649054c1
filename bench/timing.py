"""Timing shared by the bench modules: the median of a few runs, after a warm-up."""

from __future__ import annotations

import gc
import statistics
import time


def median_time(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs (after one warm-up), each after a collection."""
    fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def noop(state):
    """The raw baseline's step: a call that returns a one-key patch."""
    return {"x": 1}


def raw_step(loop) -> float:
    """Seconds per step of the raw baseline, timed now on ``loop``: a coroutine calling 50 no-op sync steps and
    merging their dicts, run 200 times. What every ratio of the bench is "x the raw loop" of."""
    steps = [noop] * 50

    async def run():
        state = {}
        for step in steps:
            patch = step(state)
            state = {**state, **patch}
        return state

    gc.collect()
    t = time.perf_counter()
    for _ in range(200):
        loop.run_until_complete(run())
    return (time.perf_counter() - t) / (200 * 50)

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

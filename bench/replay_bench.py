"""RunReplay figures (SPEC 14), printed by ``bench/run.py`` in the same run.

    python bench/replay_bench.py [--quick]     # this section alone

Target (issue #19): replaying a 10,000-record run keeps scrubbing responsive,
each position drawn in under 50 ms, measured with the widget's Python side:
setting ``replay.position`` (what the browser's scrubber and Play do) computes
the frame; the JSON text of the frame is what goes to the browser, so its
encoding is counted too. The graph is laid out once, when the replay is made.
"""

from __future__ import annotations

import gc
import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step, run_sync  # noqa: E402

RECORDS = 10_000


def _load(state):
    n = state.get("n", 0) + 1
    return {"n": n, f"batch{n % 20}": list(range(n % 7)), "loss": 1.0 / n}


def _check(state):
    return {"checked": state["n"]}


def _loop(limit: int):
    def router(state, results):
        return "load" if state["n"] < limit else None

    return router


def looping_run(records: int = RECORDS):
    """A finished run of load -> check -> load ... (``records`` records, ~20 state keys), with its events."""
    rounds = records // 2
    pipeline = Pipeline(
        "replay-bench",
        stages=[
            Stage("load", steps=[Step("read", _load)]),
            Stage("check", steps=[Step("look", _check)], router=_loop(rounds)),
        ],
    )
    factory = PipelineFactory(pipeline, registry=PipelineRegistry())
    ctx = run_sync(factory.prepare()).unwrap()
    log = ctx.record()
    run_sync(ctx.run()).unwrap()
    log.close()
    return ctx, log


def _draw(replay, i: int) -> float:
    t = time.perf_counter()
    replay.position = i
    json.dumps(replay.frame)
    return time.perf_counter() - t


def per_position(replay, positions) -> list[float]:
    gc.collect()
    return [_draw(replay, i) for i in positions]


def section(report, repeats: int, base: float = 0.0) -> None:
    from pipenb.widgets import RunReplay

    ctx, log = looping_run()
    t = time.perf_counter()
    replay = RunReplay(ctx, events=log)
    made = time.perf_counter() - t
    n = len(replay)
    report.add(f"RunReplay of a {n:,}-record run: made (layout, timeline, indexes)", f"{made * 1e3:.0f} ms")
    rng = random.Random(19)
    jumps = per_position(replay, [rng.randrange(n) for _ in range(max(50, repeats * 20))])
    steps = per_position(replay, list(range(n // 2, n // 2 + max(50, repeats * 20))))
    for name, times in (("scrubbing to random positions", jumps), ("playing, one record after another", steps)):
        times = sorted(times)
        p95 = times[int(len(times) * 0.95) - 1]
        report.add(
            f"RunReplay {n:,} records, {name}: median",
            f"{statistics.median(times) * 1e3:.2f} ms",
            "",
            "target < 50 ms each",
        )
        report.add(f"  … 95th percentile / worst of {len(times)}", f"{p95 * 1e3:.2f} / {times[-1] * 1e3:.2f} ms")
    replay.close()


if __name__ == "__main__":
    import argparse

    sys.path.insert(0, os.path.dirname(__file__))
    from run import Report

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    section(Report(), 3 if args.quick else 15)

"""pipenb benchmarks: every figure as a ratio to a baseline measured in the same run.

    python bench/run.py            # full run (about ten minutes); writes docs/performance.md's table
    python bench/run.py --quick    # fewer repeats, for a smoke check; writes no page
    python bench/run.py --quick --only core --write /tmp/perf.md   # one section, its page elsewhere

Targets (from the issues) are printed beside each figure; nothing here fails a
test: speed is reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step  # noqa: E402
from timing import noop, raw_step  # noqa: E402

import page  # noqa: E402

STAGES = 50
MIB10 = b"\0" * (10 * 1024 * 1024)


def raw_baseline(repeats: int) -> float:
    """Seconds per step of the raw loop (``timing.raw_step``): the median of ``repeats``, after a warm-up."""
    loop = asyncio.new_event_loop()
    try:
        raw_step(loop)
        return statistics.median(raw_step(loop) for _ in range(repeats))
    finally:
        loop.close()


def pipeline_of(stages: int, steps_per_stage: int) -> Pipeline:
    return Pipeline("bench", stages=[
        Stage(f"s{i}", steps=[Step(f"t{j}", noop) for j in range(steps_per_stage)]) for i in range(stages)
    ])


def per_stage(pipeline: Pipeline, repeats: int, listener=False, initial=None, registry=None) -> float:
    """Seconds per stage of ``ctx.run()`` (prepare excluded), the default in-memory store."""
    factory = PipelineFactory(pipeline, registry=registry or PipelineRegistry())
    loop = asyncio.new_event_loop()

    def once():
        ctx = loop.run_until_complete(factory.prepare(initial_state=initial)).unwrap()
        if listener:
            ctx.on("*", lambda e: None)
        t = time.perf_counter()
        loop.run_until_complete(ctx.run()).unwrap()
        return time.perf_counter() - t

    try:
        once()
        times = []
        for _ in range(repeats):
            gc.collect()
            times.append(min(once() for _ in range(5)))
        return statistics.median(times) / len(pipeline.ordered)
    finally:
        loop.close()


def import_time() -> float:
    code = "import time; t=time.perf_counter(); import pipenb; print(time.perf_counter()-t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(5)]
    return statistics.median(runs)


class Report:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, name: str, value: str, ratio: str = "", target: str = "") -> None:
        self.rows.append((name, value, ratio, target))
        print(f"{name:<58} {value:>14} {ratio:>12}  {target}", flush=True)


def core_section(report: Report, repeats: int, base: float) -> None:
    report.add("raw baseline: one no-op step (asyncio + dict merge)", f"{base * 1e6:.2f} µs", "1.00x")

    def row(name, seconds, target, steps=1):
        report.add(name, f"{seconds * 1e6:.2f} µs", f"{seconds / (base * steps):.1f}x", target)

    # The four kinds of run take turns, round after round: the VM's pace drifts by tens of percent within a
    # minute, so the comparisons (extra step, 10 MiB vs empty) are made within a round, then their median taken.
    kinds = {"one": (pipeline_of(STAGES, 1), {}), "star": (pipeline_of(STAGES, 1), {"listener": True}),
             "five": (pipeline_of(STAGES, 5), {}), "big": (pipeline_of(STAGES, 1), {"initial": {"blob": MIB10}})}
    rounds: dict[str, list[float]] = {k: [] for k in kinds}
    raw: list[float] = []  # the raw baseline again in each round: the single-step stage's ratio, paired
    for i in range(repeats):
        for k in (list(kinds) if i % 2 == 0 else list(kinds)[::-1]):
            pipe, opts = kinds[k]
            rounds[k].append(per_stage(pipe, 1, **opts))
        raw.append(raw_baseline(1))
    one, star, five, big = (statistics.median(rounds[k]) for k in kinds)
    row("pipenb: single-step stage, no listener (history on)", one, "target <= 5 µs (earlier issue)")
    paired = statistics.median(o / r for o, r in zip(rounds["one"], raw, strict=True))
    report.add("  the same in raw steps timed in the same rounds (paired)", f"{paired:.1f}x", "",
               "target <= 20x (issue 17)")
    row('pipenb: single-step stage, "*" listener', star, "target <= 10 µs")
    row("pipenb: 5-step stage", five, "", steps=5)
    extra = statistics.median((f - o) / 4 for f, o in zip(rounds["five"], rounds["one"], strict=True))
    report.add("pipenb: each extra step in a stage", f"{extra * 1e6:.2f} µs", f"{extra / base:.1f}x",
               "target <= 1.5 µs; paired within rounds")
    row("pipenb: single-step stage, 10 MiB value in state", big, "")
    ratio = statistics.median(b / o for b, o in zip(rounds["big"], rounds["one"], strict=True))
    report.add("  10 MiB state vs empty state", f"{ratio:.2f}x", "", "target <= 1.2x; paired within rounds")
    report.add("import pipenb", f"{import_time() * 1e3:.1f} ms", "", "target <= 150 ms")


SECTIONS = ("core", "widgets", "dashboard", "executors", "history", "replay", "durable", "burr", "lifecycle")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats; writes no page unless --write")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections, comma-separated: {','.join(SECTIONS)}")
    parser.add_argument("--write", type=pathlib.Path, default=None,
                        help="the page whose table to replace (default: docs/performance.md for a full run)")
    args = parser.parse_args()
    only = args.only.split(",")
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; sections: {', '.join(SECTIONS)}")
    repeats = 3 if args.quick else 15
    report = Report()
    about = f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d', time.gmtime())}"
    about += (", --quick" if args.quick else "") + ("" if only == list(SECTIONS) else f", sections {args.only}")
    print(f"pipenb bench — {about}", flush=True)
    base = raw_baseline(repeats)
    run_sections(report, repeats, base, only)
    target = args.write if args.write is not None else (None if args.quick or only != list(SECTIONS) else page.PAGE)
    if target is not None:
        page.write(report.rows, f"One run of `python bench/run.py`: {about}.", target)
        print(f"wrote the table of {target}", flush=True)


def run_sections(report: Report, repeats: int, base: float, only: list[str]) -> None:
    if "core" in only:
        core_section(report, repeats, base)
    import burr_bench  # pipenb's SQLite stage commit vs Apache Burr's SQLitePersister (optional), same run
    import dashboard_bench  # RunDashboard: following a run, picking one back, same run
    import durable_bench  # runs that outlive the kernel: SQLite listing, commits, resume, same run
    import executors_bench  # where steps run: threads, abort, progress, same run
    import history_bench  # stage history, diffs, forks, same run
    import lifecycle  # pause/resume figures, same run
    import replay_bench  # RunReplay: scrubbing a 10,000-record run, same run
    import widgets_bench  # widget figures, same run

    # Widgets first: the lifecycle section leaves many long-lived objects behind,
    # which would make the garbage collector (not pipenb) dominate the event figures.
    for name, module in (("widgets", widgets_bench), ("dashboard", dashboard_bench), ("executors", executors_bench),
                         ("history", history_bench), ("replay", replay_bench), ("durable", durable_bench), ("burr", burr_bench),
                         ("lifecycle", lifecycle)):
        if name in only:
            module.section(report, repeats, base)


if __name__ == "__main__":
    main()

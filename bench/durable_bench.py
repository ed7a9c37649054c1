"""Runs that outlive the kernel (SPEC 11), printed by ``bench/run.py`` in the same run.

    python bench/durable_bench.py [--quick]     # this section alone

- ``factory.runs()`` over a SQLite file holding 10,000 paused runs (the
  dashboard's list after a kernel restart);
- one SQLite stage commit in a 1,000-stage run with history rows and the
  run's lease (one driver per run), per stage;
- ``factory.resume`` (slow path: the store opened, the checkpoint read, the
  context rebuilt) of a run holding a 10 MiB bytes value;
- bytes a stage commit writes to the file (WAL frames x page size): a stage
  that puts no artifact, one that puts a small one, and the stages after a
  10 MiB artifact was put (SPEC 15: written once, by its own stage);
- a stage commit with ``synchronous="full"`` (an fsync per commit, survives
  power loss) against ``"normal"`` (the default), as a ratio of the same run.

Speed is reported, never asserted.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step  # noqa: E402
from pipenb.core.checkpoints import PipelineCheckpoint, checkpoint_patch, now_iso  # noqa: E402
from pipenb.stores import SqliteStore  # noqa: E402
from timing import median_time  # noqa: E402

MIB10 = b"\3" * (10 * 1024 * 1024)


def _noop(state):
    return {"x": 1}


def _gate(state, results):
    return None if state.get("approved") else Pause("gate", timeout=0)


GATE = Pipeline("dbench-gate", stages=[
    Stage("a", steps=[Step("a", _noop)]),
    Stage("gate", steps=[Step("check", lambda s: None)], router=_gate, routes=["gate"]),
    Stage("b", steps=[Step("b", _noop)]),
])


def flat(stages: int) -> Pipeline:
    return Pipeline("dbench-flat", stages=[Stage(f"s{i}", steps=[Step("t", _noop)]) for i in range(stages)])


def listing(tmp: str, repeats: int, runs: int = 10_000) -> float:
    """Seconds of ``factory.runs()`` over a file of ``runs`` paused runs (each written as a pause writes it)."""
    path = os.path.join(tmp, "many.sqlite")
    sf = SqliteStore.factory(path)
    when = now_iso()
    for i in range(runs):
        run_id = f"run-{i:05d}"
        cp = PipelineCheckpoint(run_id=run_id, pipeline_id=GATE.id, resume_at=("gate",), paused_at_stage_id="gate",
                                paused_at_stage_label="gate", paused_on=when)
        store = sf(run_id)
        with store.transaction():
            store.set({"x": 1})
            store.set(checkpoint_patch(cp, status="paused"))
    factory = PipelineFactory(GATE, store_factory=sf, registry=PipelineRegistry())
    try:
        assert len(factory.runs()) == runs
        return median_time(factory.runs, repeats)
    finally:
        sf.close()


def stage_commit(tmp: str, repeats: int, stages: int = 1000, synchronous: str = "normal") -> float:
    """Seconds per stage of a ``stages``-stage SQLite run with history and the lease (prepare excluded)."""
    sf = SqliteStore.factory(os.path.join(tmp, f"stages-{stages}-{synchronous}.sqlite"), synchronous=synchronous)
    registry = PipelineRegistry()
    factory = PipelineFactory(flat(stages), store_factory=sf, registry=registry, history=True)
    loop = asyncio.new_event_loop()
    count = iter(range(10**9))
    times = []
    try:
        for i in range(repeats + 1):
            ctx = loop.run_until_complete(factory.prepare(run_id=f"r{next(count)}")).unwrap()
            assert ctx.store.leases and ctx.store.keeps_history
            gc.collect()
            t = time.perf_counter()
            loop.run_until_complete(ctx.run()).unwrap()
            if i:  # the first is a warm-up
                times.append((time.perf_counter() - t) / stages)
    finally:
        loop.close()
        registry.close()
        sf.close()
    return statistics.median(times)


def resume_big(tmp: str, repeats: int) -> float:
    """Seconds of ``factory.resume`` (slow path, a fresh factory on the file) of a run holding 10 MiB of bytes."""
    path = os.path.join(tmp, "big.sqlite")
    sf = SqliteStore.factory(path)
    factory = PipelineFactory(GATE, store_factory=sf, registry=PipelineRegistry())
    ctx = factory.prepare_sync(run_id="big", initial_state={"blob": MIB10}).unwrap()
    assert ctx.run_sync().unwrap().status == "paused"  # timeout 0: released at once, resumable from the file
    sf.close()
    loop = asyncio.new_event_loop()
    times = []
    try:
        for i in range(repeats + 1):
            fresh_sf = SqliteStore.factory(path)  # a new kernel's factory: nothing of the run in memory
            fresh = PipelineFactory(GATE, store_factory=fresh_sf, registry=PipelineRegistry())
            gc.collect()
            t = time.perf_counter()
            again = loop.run_until_complete(fresh.resume("big")).unwrap()
            took = time.perf_counter() - t
            assert len(again.state["blob"]) == len(MIB10)
            del again
            fresh_sf.close()
            if i:  # the first is a warm-up
                times.append(took)
    finally:
        loop.close()
    return statistics.median(times)


def _putting(kind: str):
    """A step that puts nothing (``none``), a new small artifact, or the same 10 MiB artifact (``big``: put by the
    first stage only)."""
    def step(state, ctx):
        n = state.get("n", 0)
        if kind == "small":
            ctx.artifacts.put("small", {"n": n})
        elif kind == "big" and n == 0:
            ctx.artifacts.put("big", MIB10)
        return {"n": n + 1}
    return step


def bytes_per_stage(tmp: str, kind: str, stages: int = 100) -> float:
    """Bytes written to the WAL per stage commit (frames x page size) by a ``stages``-stage run (``_putting(kind)``),
    the first stage (and the run's start) excluded."""
    path = os.path.join(tmp, f"bytes-{kind}.sqlite")
    sf = SqliteStore.factory(path)
    pipe = Pipeline(f"dbench-bytes-{kind}", stages=[Stage(f"s{i}", steps=[Step("t", _putting(kind))])
                                                     for i in range(stages)])
    registry = PipelineRegistry()
    factory = PipelineFactory(pipe, store_factory=sf, registry=registry, history=True)
    loop = asyncio.new_event_loop()
    spy = sqlite3.connect(path)
    try:
        ctx = loop.run_until_complete(factory.prepare(run_id="warm")).unwrap()
        loop.run_until_complete(ctx.run()).unwrap()  # the tables and first pages exist
        ctx = loop.run_until_complete(factory.prepare(run_id="r")).unwrap()
        loop.run_until_complete(ctx.step()).unwrap()  # the first stage: the big put, when there is one
        spy.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        loop.run_until_complete(ctx.run()).unwrap()
        frames = spy.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        page = spy.execute("PRAGMA page_size").fetchone()[0]
        assert frames < 1000, frames  # below the auto-checkpoint, so every frame is counted
        return frames * page / (stages - 1)
    finally:
        spy.close()
        loop.close()
        registry.close()
        sf.close()


def section(report, repeats: int, base: float | None = None) -> None:
    tmp = tempfile.mkdtemp(prefix="pipenb-dbench-")
    try:
        report.add("SQLite: factory.runs() over 10,000 paused runs", f"{listing(tmp, repeats) * 1e3:.1f} ms", "",
                   "target <= 200 ms")
        report.add("SQLite: stage commit, 1,000-stage run, history + lease",
                   f"{stage_commit(tmp, max(3, repeats // 3)) * 1e6:.1f} µs", "", "target <= 250 µs")
        report.add("SQLite: resume (new factory) of a run holding 10 MiB bytes",
                   f"{resume_big(tmp, repeats) * 1e3:.1f} ms", "", "target <= 30 ms")
        for kind, what in (("none", "puts no artifact"), ("small", "puts a small artifact"),
                           ("big", "follows a 10 MiB put")):
            report.add(f"SQLite: bytes written per stage that {what}",
                       f"{bytes_per_stage(tmp, kind) / 1024:.0f} KiB", "", "64 KiB pages; 10 MiB put: written once")
        normal = stage_commit(tmp, max(3, repeats // 3), stages=200)
        full = stage_commit(tmp, max(3, repeats // 3), stages=200, synchronous="full")
        report.add('SQLite: stage commit, synchronous="full" vs "normal"', f"{full * 1e6:.0f} µs",
                   f"x{full / normal:.1f}", "an fsync per commit: survives power loss")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import argparse

    sys.path.insert(0, os.path.dirname(__file__))
    from run import Report

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    section(Report(), 3 if args.quick else 15)

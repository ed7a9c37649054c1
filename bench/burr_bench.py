"""pipenb's SQLite stage commit against Apache Burr's ``SQLitePersister``, printed by ``bench/run.py``.

    python bench/burr_bench.py [--quick]     # this section alone

Burr is optional: ``pip install burr`` (it is not a pipenb dependency). Without
it this section prints why it was skipped and the rest of the bench runs.

In the same process, paired and alternating (which side goes first flips each
pair), each run on a fresh temporary SQLite file:

- pipenb: a 1,000-stage run (one no-op step a stage) through ``SqliteStore``
  with history rows and the run's lease, seconds per stage (prepare excluded;
  the same run as ``durable_bench.stage_commit``);
- Burr: an application of one ``increment`` action looping on itself by a
  transition until ``count`` reaches 1,000 (1,000 steps), persisted by
  ``SQLitePersister`` after every step (``with_state_persister``, ``on_every="step"``),
  seconds per step (build and ``initialize()`` excluded).

Burr's persister opens its file with ``sqlite3.connect`` defaults (rollback
journal, ``synchronous=FULL``: one fsync per step) and pipenb's store uses WAL
with ``synchronous=NORMAL``. The target compares against Burr as shipped; a
second Burr figure, its persister handed a connection with pipenb's pragmas,
shows how much of the gap is durability settings rather than code.

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

from durable_bench import flat  # noqa: E402
from pipenb import PipelineFactory, PipelineRegistry  # noqa: E402
from pipenb.stores import SqliteStore  # noqa: E402

try:
    from burr.core import ApplicationBuilder, State, action, default, expr
    from burr.core.persistence import SQLitePersister
except ImportError as exc:  # Burr is optional
    BURR_MISSING: str | None = f"burr not importable ({exc}); pip install burr to compare"
else:
    BURR_MISSING = None

STEPS = 1000


def pipenb_run(path: str, stages: int = STEPS) -> float:
    """Seconds per stage of one ``stages``-stage run on a fresh file ``path`` (history + lease, prepare excluded)."""
    sf = SqliteStore.factory(path)
    registry = PipelineRegistry()
    factory = PipelineFactory(flat(stages), store_factory=sf, registry=registry, history=True)
    loop = asyncio.new_event_loop()
    try:
        ctx = loop.run_until_complete(factory.prepare(run_id="r")).unwrap()
        assert ctx.store.leases and ctx.store.keeps_history
        gc.collect()
        t = time.perf_counter()
        loop.run_until_complete(ctx.run()).unwrap()
        return (time.perf_counter() - t) / stages
    finally:
        loop.close()
        registry.close()
        sf.close()


if BURR_MISSING is None:
    @action(reads=["count"], writes=["count"])
    def increment(state: State) -> State:
        return state.update(count=state["count"] + 1)

    @action(reads=["count"], writes=[])
    def done(state: State) -> State:
        return state


def burr_run(path: str, steps: int = STEPS, pipenb_pragmas: bool = False) -> float:
    """Seconds per step of a ``steps``-step Burr application persisted by ``SQLitePersister`` on a fresh file."""
    connection = sqlite3.connect(path)
    if pipenb_pragmas:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    persister = SQLitePersister(db_path=path, connection=connection)
    try:
        persister.initialize()
        app = (
            ApplicationBuilder()
            .with_actions(increment=increment, done=done)
            .with_transitions(("increment", "increment", expr(f"count < {steps}")), ("increment", "done", default))
            .with_state(count=0)
            .with_entrypoint("increment")
            .with_identifiers(app_id="bench")
            .with_state_persister(persister)
            .build()
        )
        gc.collect()
        t = time.perf_counter()
        _, _, state = app.run(halt_before=["done"])
        took = time.perf_counter() - t
        assert state["count"] == steps
        saved = connection.execute("SELECT count(*) FROM burr_state").fetchone()[0]
        assert saved == steps, saved
        return took / steps
    finally:
        connection.close()


def paired(tmp: str, pairs: int) -> tuple[list[float], list[float], list[float]]:
    """``pairs`` alternating (pipenb, Burr, Burr with pipenb's pragmas) triples after one discarded warm-up."""
    sides = [
        ("pipenb", lambda p: pipenb_run(p)),
        ("burr", lambda p: burr_run(p)),
        ("burr-wal", lambda p: burr_run(p, pipenb_pragmas=True)),
    ]
    got: dict[str, list[float]] = {name: [] for name, _ in sides}
    for i in range(pairs + 1):
        order = sides if i % 2 else sides[::-1]
        for name, fn in order:
            path = os.path.join(tmp, f"{name}-{i}.sqlite")
            took = fn(path)
            if i:  # the first round is a warm-up
                got[name].append(took)
    return got["pipenb"], got["burr"], got["burr-wal"]


def section(report, repeats: int, base: float | None = None) -> None:
    if BURR_MISSING is not None:
        print(f"Burr comparison skipped: {BURR_MISSING}", flush=True)
        return
    pairs = 3 if repeats <= 3 else 5
    tmp = tempfile.mkdtemp(prefix="pipenb-burrbench-")
    try:
        ours, burr, burr_wal = paired(tmp, pairs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = [a / b for a, b in zip(ours, burr, strict=True)]
    ours_m, burr_m, wal_m = statistics.median(ours), statistics.median(burr), statistics.median(burr_wal)
    report.add("SQLite vs Burr: pipenb stage, 1,000-stage run", f"{ours_m * 1e6:.1f} µs", "",
               "target <= 250 µs")
    report.add("SQLite vs Burr: Burr SQLitePersister step, 1,000 steps", f"{burr_m * 1e6:.1f} µs", "",
               "Burr defaults")
    report.add("  pipenb / Burr (median of paired ratios)", f"{statistics.median(ratios):.2f}x", "",
               "target <= 1.0x")
    report.add("  Burr step, connection with pipenb's WAL/NORMAL", f"{wal_m * 1e6:.1f} µs",
               f"{ours_m / wal_m:.2f}x", "pipenb / this, not a target")
    print("    pairs (pipenb µs / Burr µs / Burr-WAL µs): " + ", ".join(
        f"{a * 1e6:.0f}/{b * 1e6:.0f}/{c * 1e6:.0f}" for a, b, c in zip(ours, burr, burr_wal, strict=True)), flush=True)


if __name__ == "__main__":
    import argparse

    from run import Report

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    section(Report(), 3 if args.quick else 15)

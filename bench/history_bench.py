"""Stage history figures (SPEC 10), printed by ``bench/run.py`` in the same run.

    python bench/history_bench.py [--quick]     # this section alone

Every on/off comparison is paired and alternating (on, off, off, on, ...):
the VM's speed drifts by tens of percent within seconds, so a figure is the
median of per-pair differences or ratios, never two medians taken apart.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step  # noqa: E402
from pipenb.core.history import History, StageRecord  # noqa: E402
from pipenb.core.lookback import stage_code  # noqa: E402
from pipenb.core.state import FrozenDict, merge  # noqa: E402
from pipenb.stores import SqliteStore  # noqa: E402

MIB10 = b"\2" * (10 * 1024 * 1024)


def _noop(state):
    return {"x": 1}


def _counter(state):
    n = state.get("n", 0) + 1
    return {"n": n, f"k{n % 100}": n}


def _loop(limit):
    def router(state, results):
        return "s" if state["n"] < limit else None

    return router


def looping(limit: int, pid: str = "hbench-loop") -> Pipeline:
    """One stage that runs ``limit`` times (a router loop): ``limit`` records, ``limit`` commits."""
    return Pipeline(pid, stages=[Stage("s", steps=[Step("c", _counter)], router=_loop(limit))],
                    max_transitions=limit + 10)


def flat(stages: int, pid: str = "hbench") -> Pipeline:
    return Pipeline(pid, stages=[Stage(f"s{i}", steps=[Step("t", _noop)]) for i in range(stages)])


def _pairs(measure, repeats: int):
    """[(on, off)] measured alternately, after one warm-up pair."""
    out = []
    for i in range(repeats + 1):
        order = (True, False) if i % 2 == 0 else (False, True)
        got = {}
        for on in order:
            gc.collect()
            got[on] = measure(on)
        if i:
            out.append((got[True], got[False]))
    return out


def per_stage_cost(repeats: int) -> tuple[float, float, float]:
    """(seconds per stage with history, without, median paired difference) of a 50-stage in-memory run."""
    pipe = flat(50)
    loop = asyncio.new_event_loop()
    registry = PipelineRegistry()
    factories = {on: PipelineFactory(pipe, registry=registry, history=on) for on in (True, False)}

    def once(on):
        ctx = loop.run_until_complete(factories[on].prepare()).unwrap()
        t = time.perf_counter()
        loop.run_until_complete(ctx.run()).unwrap()
        return time.perf_counter() - t

    def measure(on):
        return min(once(on) for _ in range(20)) / 50

    try:
        pairs = _pairs(measure, repeats)
    finally:
        loop.close()
        registry.close()
    return (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs),
            statistics.median(p[0] - p[1] for p in pairs))


def memory_cost(stages: int = 10_000) -> tuple[float, float]:
    """MB that ``stages`` stages leave allocated (tracemalloc, the context still alive), history on and off.

    The state holds one 10 MiB bytes value and 100 small keys; each stage
    changes two of the small keys.
    """
    initial = {"blob": MIB10, **{f"k{i}": i for i in range(100)}}
    out = {}
    for on in (False, True):
        registry = PipelineRegistry()
        factory = PipelineFactory(looping(stages), registry=registry, history=on)
        gc.collect()
        tracemalloc.start()
        ctx = factory.prepare_sync(initial_state=initial).unwrap()
        base = tracemalloc.get_traced_memory()[0]
        ctx.run_sync().unwrap()
        gc.collect()
        out[on] = (tracemalloc.get_traced_memory()[0] - base) / 1e6
        tracemalloc.stop()
        assert len(ctx.history) == (stages if on else 0)
        del ctx
        registry.close()
    return out[True], out[False]


def wide_memory(keys: int = 10_000, stages: int = 1000) -> tuple[float, float]:
    """MB that ``stages`` stages over a state of ``keys`` top-level keys leave allocated (tracemalloc, the
    context still alive), history on and off. Each stage writes two small keys (SPEC 15: the history costs
    what the stages changed, not ``stages`` times the width)."""
    initial = {f"w{i}": i for i in range(keys)}
    out = {}
    for on in (False, True):
        registry = PipelineRegistry()
        factory = PipelineFactory(looping(stages, "hbench-wide"), registry=registry, history=on)
        gc.collect()
        tracemalloc.start()
        ctx = factory.prepare_sync(initial_state=initial).unwrap()
        base = tracemalloc.get_traced_memory()[0]
        ctx.run_sync().unwrap()
        gc.collect()
        out[on] = (tracemalloc.get_traced_memory()[0] - base) / 1e6
        tracemalloc.stop()
        assert len(ctx.history) == (stages if on else 0)
        if on:  # the records still read back whole
            assert ctx.history[stages // 2].state["n"] == stages // 2 + 1 and len(ctx.history[3].state) > keys
        del ctx
        registry.close()
    return out[True], out[False]


def wide_stage_cost(repeats: int, keys: int = 10_000) -> dict:
    """Seconds per single-step stage of a 50-stage in-memory run over ``keys`` top-level keys, history on and
    off, and over an empty state; ratios are medians of paired, alternating measures."""
    pipe = flat(50, "hbench-width")
    loop = asyncio.new_event_loop()
    registry = PipelineRegistry()
    wide = {f"w{i}": i for i in range(keys)}
    factories = {on: PipelineFactory(pipe, registry=registry, history=on) for on in (True, False)}

    def once(on, initial):
        ctx = loop.run_until_complete(factories[on].prepare(initial_state=initial)).unwrap()
        t = time.perf_counter()
        loop.run_until_complete(ctx.run()).unwrap()
        return time.perf_counter() - t

    samples = []
    try:
        for i in range(repeats + 1):
            order = [(True, wide), (False, wide), (True, None)]
            got = {}
            for on, initial in (order if i % 2 == 0 else order[::-1]):
                gc.collect()
                got[(on, initial is None)] = min(once(on, initial) for _ in range(5)) / 50
            if i:
                samples.append((got[(True, False)], got[(False, False)], got[(True, True)]))
    finally:
        loop.close()
        registry.close()
    return {"on": statistics.median(p[0] for p in samples), "off": statistics.median(p[1] for p in samples),
            "empty": statistics.median(p[2] for p in samples),
            "on/off": statistics.median(p[0] / p[1] for p in samples),
            "on/empty": statistics.median(p[0] / p[2] for p in samples),
            "off/empty": statistics.median(p[1] / p[2] for p in samples)}


def persistent_vs_copy(keys: int = 10_000) -> dict:
    """A persistent map against pipenb's copy-on-write dict, at ``keys`` top-level keys: seconds to make the
    next state with one key changed, bytes that version adds, seconds to hand the state to ``dict()``, and
    whether ``json.dumps`` takes it. The persistent map is CPython's own HAMT (the one behind
    ``contextvars.Context``, one ``ContextVar`` per key): the standard library has no other."""
    import contextvars
    import json

    names = [contextvars.ContextVar(f"w{i}") for i in range(keys)]
    hamt = contextvars.Context()

    def fill():
        for i, var in enumerate(names):
            var.set(i)

    hamt.run(fill)
    state = FrozenDict({f"w{i}": i for i in range(keys)})
    out = {}

    def timed(fn, n):
        fn()
        best = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            best.append((time.perf_counter() - t) / n)
        return min(best)

    def hamt_set():
        nxt = hamt.copy()
        nxt.run(names[keys // 2].set, -1)
        return nxt

    out["copy: next state"] = timed(lambda: merge(state, {"w5000": -1}), 200)
    out["hamt: next state"] = timed(hamt_set, 20000)
    for name, make in (("copy", lambda: merge(state, {"w5000": -1})), ("hamt", hamt_set)):
        gc.collect()
        tracemalloc.start()
        kept = [make() for _ in range(100)]
        out[f"{name}: bytes per version"] = tracemalloc.get_traced_memory()[0] / 100
        tracemalloc.stop()
        del kept
    out["copy: dict(state)"] = timed(lambda: dict(state), 200)
    out["hamt: dict(state)"] = timed(lambda: {var.name: value for var, value in hamt.items()}, 20)
    for name, value in (("copy", state), ("hamt", hamt)):
        try:
            json.dumps(value)
            out[f"{name}: json.dumps"] = "yes"
        except TypeError:
            out[f"{name}: json.dumps"] = "no (not a dict)"
    return out


def sqlite_ratio(repeats: int, stages: int = 1000) -> tuple[float, float, float]:
    """(seconds per stage with history rows, without, median paired ratio): a ``stages``-stage SQLite run."""
    pipe = flat(stages, "hbench-sql")
    tmp = tempfile.mkdtemp(prefix="pipenb-hbench-")
    sf = SqliteStore.factory(os.path.join(tmp, "runs.sqlite"))
    registry = PipelineRegistry()
    factories = {on: PipelineFactory(pipe, store_factory=sf, registry=registry, history=on) for on in (True, False)}
    loop = asyncio.new_event_loop()
    count = iter(range(10**9))

    def measure(on):
        ctx = loop.run_until_complete(factories[on].prepare(run_id=f"r{next(count)}")).unwrap()
        t = time.perf_counter()
        loop.run_until_complete(ctx.run()).unwrap()
        return (time.perf_counter() - t) / stages

    try:
        pairs = _pairs(measure, repeats)
    finally:
        loop.close()
        registry.close()
        sf.close()
    return (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs),
            statistics.median(p[0] / p[1] for p in pairs))


def diff_cost(keys: int = 10_000) -> float:
    """Seconds of ``h.diff(0)`` when one of ``keys`` top-level keys changed."""
    before = FrozenDict({f"k{i}": i for i in range(keys)})
    after = merge(before, {"k5000": -1})
    h = History(before)
    h.add(StageRecord(0, "s", "s", "s", {"k5000": -1}, None, 0.0, 0.0, after), before)
    d = h.diff(0)
    assert d.changed == {("k5000",): (5000, -1)} and not d.added and not d.removed
    times = []
    for _ in range(50):
        t = time.perf_counter()
        h.diff(0)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def fork_cost(records: int = 10_000) -> dict:
    """Seconds of ``factory.fork`` of a live run holding ``records`` records: at the middle,
    at the last record, and by address (that stage's last record)."""
    registry = PipelineRegistry()
    factory = PipelineFactory(looping(records, "hbench-fork"), registry=registry)
    ctx = factory.prepare_sync(initial_state={"blob": MIB10}).unwrap()
    ctx.run_sync().unwrap()
    assert len(ctx.history) == records
    loop = asyncio.new_event_loop()
    out = {}
    try:
        for name, at in (("middle", records // 2), ("last", -1), ("address", "s")):
            times = []
            for _ in range(7):
                gc.collect()
                t = time.perf_counter()
                fork = loop.run_until_complete(factory.fork(ctx.run_id, at)).unwrap()
                times.append(time.perf_counter() - t)
                i = records // 2 if at == records // 2 else records - 1
                assert len(fork.history) == i and fork.state["n"] == i and fork.status == "prepared"
            out[name] = statistics.median(times)
    finally:
        loop.close()
        registry.close()
    return out


def lookback_cost(records: int = 100_000) -> dict:
    """Seconds of ``visits``/``transitions``/``blame``/``compare``/``stale`` on a ``records``-record history
    (a loop of 5 stages, each writing ``n`` and one of 100 keys; an edit every 1,000 records)."""
    pipe = flat(5, "hbench-look")
    addresses = [f"s{i}" for i in range(5)]
    state = FrozenDict({f"k{i}": i for i in range(100)})
    h = History(state)
    codes = {info.key: stage_code(pipe, info.stage) for info in pipe.walk()}
    codes["s3"] = "older code"  # one stage in five changed since: its records are stale
    for i in range(records):
        patch = {"n": i, f"k{i % 100}": i} if i % 1000 else {"model": {"coef": i}}
        base, state = state, merge(state, patch)
        address = addresses[i % 5] if i % 1000 else "s0 (edit)"
        h.add(StageRecord(i, address, address if i % 1000 else None, address, patch, None, 0.0, 0.0, state), base,
              code=codes.get(address))
    h.definition = pipe
    out = {}
    for name, call in (("visits", h.visits), ("transitions", h.transitions), ("blame('n')", lambda: h.blame("n")),
                       ("blame(('model', 'coef'))", lambda: h.blame(("model", "coef"))),
                       ("compare (same run)", lambda: h.compare(h)), ("stale (1 stage in 5)", h.stale)):
        times = []
        for _ in range(5):
            gc.collect()
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
    return out


def section(report, repeats: int, base: float | None = None) -> None:
    on, off, extra = per_stage_cost(repeats)
    report.add("history on: single-step stage (in memory)", f"{on * 1e6:.2f} µs")
    report.add("history off: single-step stage (in memory)", f"{off * 1e6:.2f} µs")
    report.add("  history cost per stage (paired, alternating)", f"{extra * 1e6:.2f} µs", "",
               "target <= 0.5 µs")
    mem_on, mem_off = memory_cost()
    report.add("10,000 stages, 10 MiB + 100 keys: kept with history", f"{mem_on:.1f} MB", "",
               "tracemalloc, context alive")
    report.add("  same without history", f"{mem_off:.1f} MB")
    report.add("  history adds", f"{mem_on - mem_off:.1f} MB", "", "target <= 50 MB")
    w_on, w_off = wide_memory()
    report.add("1,000 stages over 10,000 keys: kept with history", f"{w_on:.1f} MB", "",
               "tracemalloc, context alive")
    report.add("  same without history", f"{w_off:.1f} MB")
    report.add("  history adds", f"{w_on - w_off:.1f} MB", "", "target <= 20 MB")
    w = wide_stage_cost(max(3, repeats // 3))
    report.add("single-step stage over 10,000 keys, history on", f"{w['on'] * 1e6:.1f} µs",
               f"{w['on/empty']:.1f}x", "x: of an empty state, history on (paired)")
    report.add("single-step stage over 10,000 keys, history off", f"{w['off'] * 1e6:.1f} µs",
               f"{w['off/empty']:.1f}x")
    report.add("  10,000 keys: history on / off (paired, alternating)", f"{w['on/off']:.2f}x", "",
               "target <= 1.0x (noise aside)")
    pm = persistent_vs_copy()
    report.add("10,000 keys, next state: copy-on-write dict", f"{pm['copy: next state'] * 1e6:.1f} µs", "",
               f"{pm['copy: bytes per version'] / 1e3:.0f} kB a version; dict(): "
               f"{pm['copy: dict(state)'] * 1e6:.0f} µs; json: {pm['copy: json.dumps']}")
    report.add("10,000 keys, next state: persistent map (stdlib HAMT)", f"{pm['hamt: next state'] * 1e6:.2f} µs",
               "", f"{pm['hamt: bytes per version']:.0f} B a version; dict(): "
               f"{pm['hamt: dict(state)'] * 1e6:.0f} µs; json: {pm['hamt: json.dumps']}")
    s_on, s_off, ratio = sqlite_ratio(max(3, repeats // 3))
    report.add("SQLite 1,000-stage run, history rows: per stage", f"{s_on * 1e6:.1f} µs")
    report.add("SQLite 1,000-stage run, no history: per stage", f"{s_off * 1e6:.1f} µs")
    report.add("  SQLite history on / off (paired, alternating)", f"{ratio:.2f}x", "", "target <= 1.2x")
    d = diff_cost()
    report.add("h.diff(i), 10,000 keys, one changed", f"{d * 1e3:.3f} ms", "", "target <= 1 ms")
    forks = fork_cost()
    for name, seconds in forks.items():
        report.add(f"fork of a 10,000-record run from memory ({name})", f"{seconds * 1e3:.2f} ms", "",
                   "target <= 50 ms")
    for name, seconds in lookback_cost().items():
        report.add(f"h.{name} of 100,000 records", f"{seconds * 1e3:.1f} ms", "",
                   "target <= 100 ms" if name.startswith(("visits", "transitions", "blame")) else "")


if __name__ == "__main__":
    import argparse

    sys.path.insert(0, os.path.dirname(__file__))
    from run import Report

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    section(Report(), 3 if args.quick else 15)

"""Completed runs do not pile up in a long-lived kernel; paused and failed ones stay resumable."""

import subprocess
import sys
import textwrap

LEAK_SCRIPT = textwrap.dedent("""
    import gc, tracemalloc
    from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
    from pipenb.stores.memory import default_provider

    def fail_once(state):
        if not state.get("fixed"):
            raise RuntimeError("broken")
        return {"ok": True}

    p = Pipeline("leaky", stages=[Stage("a", steps=[Step("x", lambda s: {"blob": "x" * 500, "n": 1})]),
                                  Stage("b", steps=[Step("y", lambda s: {"n": s["n"] + 1})])])
    gate = Pipeline("gate", stages=[Stage("a", steps=[Step("x", lambda s: {"v": 1})], router=lambda s, r: Pause("b")),
                                    Stage("b", steps=[Step("y", fail_once)])])
    factory = PipelineFactory(p)            # the defaults: in-memory provider, default registry
    gate_factory = PipelineFactory(gate)

    def batch(n):
        for _ in range(n):
            factory.prepare_sync().unwrap().run_sync().unwrap()

    tracemalloc.start()
    batch(2000)  # warm up: loops, caches and free lists reach their steady size
    paused = gate_factory.prepare_sync().unwrap(); paused.run_sync()
    failed = gate_factory.prepare_sync().unwrap(); failed.run_sync(); failed.run_sync()
    paused_id, failed_id = paused.run_id, failed.run_id
    del paused, failed
    PipelineRegistry.default.expire(paused_id); PipelineRegistry.default.expire(failed_id)
    batch(6000)  # one-off growth of interpreter tables lands here, not in the measured window
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    stores, live = len(default_provider), len(PipelineRegistry.default)
    batch(10_000)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    print(grown, len(default_provider) - stores, len(PipelineRegistry.default) - live)
    a = gate_factory.resume_sync(paused_id).unwrap()
    a.update_state({"fixed": True})
    b = gate_factory.resume_sync(failed_id).unwrap()
    b.update_state({"fixed": True})
    print(a.run_sync().unwrap().status, b.run_sync().unwrap().status)
""")


def test_ten_thousand_completed_runs_leave_memory_where_it_was():
    out = subprocess.run([sys.executable, "-c", LEAK_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    grown, stores, live = map(int, first.split())
    # A leaked store or context per run would be well over 1 KiB each (10+ MiB in all).
    # Measured: a few kB. One kept store per run would be about 6 MB.
    assert grown < 1_000_000, f"memory grew by {grown} bytes over 10,000 completed runs"
    assert (stores, live) == (0, 0)
    assert second.split() == ["completed", "completed"]

"""SPEC 5: the registry's fast path, expiry, timers, persist, and its methods."""

import gc
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

from pipenb import (
    ArtifactContainer, InMemoryStore, Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step,
)

from ..conftest import add, wait_for


class SpyStore(InMemoryStore):
    """Counts reads, so a test can prove the fast path reads nothing."""

    def __init__(self):
        super().__init__()
        self.reads = 0

    def get(self):
        self.reads += 1
        return super().get()


def model_step(state, ctx):
    ctx.artifacts.put("model", {"weights": [1, 2, 3]})
    return {"trained": True}


def pausing(timeout=None, persist=False, pid="reg"):
    return Pipeline(pid, stages=[
        Stage("train", steps=[Step("fit", model_step)],
              router=lambda s, r: Pause("report", timeout=timeout, persist=persist) if not s.get("ok") else None),
        Stage("report", steps=[Step("r", add("reports"))]),
    ])


def setup_run(registry, timeout=None, persist=False):
    stores = {}

    def store_factory(run_id):
        return stores.setdefault(run_id, SpyStore())

    f = PipelineFactory(pausing(timeout, persist), store_factory=store_factory, registry=registry)
    ctx = f.prepare_sync().unwrap()
    res = ctx.run_sync().unwrap()
    assert res.status == "paused"
    return f, ctx, stores[ctx.run_id]


def test_fast_path_returns_the_same_object_and_reads_nothing(registry):
    f, ctx, store = setup_run(registry, timeout=60)
    before = store.reads
    again = f.resume_sync(ctx.run_id).unwrap()
    assert again is ctx and store.reads == before
    # A brand-new factory (a re-run notebook cell) gets the same fast path.
    other = PipelineFactory(pausing(), store_factory=lambda r: store, registry=registry)
    assert other.resume_sync(ctx.run_id).unwrap() is ctx and store.reads == before
    assert ctx.checkpoint.container_bundle is None  # nothing exported while live


def test_expiry_exports_bundle_releases_context_and_resume_rebuilds(registry):
    f, ctx, store = setup_run(registry, timeout=0.1)
    run_id = ctx.run_id
    ref = weakref.ref(ctx)
    assert registry.get_live_context(run_id) is ctx
    assert wait_for(lambda: registry.get_live_context(run_id) is None)
    del ctx
    gc.collect()
    assert ref() is None, "the registry still keeps the context alive"
    cp = store.get()["__pipeline_data__"]["checkpoint"]
    assert cp.container_bundle["artifacts"]["model"] == {"weights": [1, 2, 3]}
    rebuilt = f.resume_sync(run_id).unwrap()
    assert rebuilt.status == "paused" and rebuilt.artifacts.get("model") == {"weights": [1, 2, 3]}
    assert registry.get_live_context(run_id) is rebuilt
    rebuilt.update_state({"ok": True})
    assert rebuilt.run_sync().unwrap().state == {"trained": True, "ok": True, "reports": 1}


def test_default_timeout_applies_when_pause_has_none():
    reg = PipelineRegistry(default_timeout=0.05)
    try:
        _, ctx, _ = setup_run(reg, timeout=None)
        rec = reg.runs()[0]
        assert rec.live and rec.expires_at is not None and rec.expires_at - time.time() <= 0.05
        assert wait_for(lambda: not reg.runs()[0].live)
    finally:
        reg.close()


def test_timeout_zero_releases_at_once(registry):
    _, ctx, store = setup_run(registry, timeout=0)
    assert registry.get_live_context(ctx.run_id) is None
    assert ctx.checkpoint.container_bundle is not None


def test_persist_writes_bundle_at_pause_and_keeps_context_live(registry):
    f, ctx, store = setup_run(registry, timeout=60, persist=True)
    assert ctx.checkpoint.container_bundle["artifacts"]["model"] == {"weights": [1, 2, 3]}
    assert f.resume_sync(ctx.run_id).unwrap() is ctx


def test_persist_is_ignored_when_timeout_is_zero(registry):
    _, ctx, _ = setup_run(registry, timeout=0, persist=True)
    assert registry.get_live_context(ctx.run_id) is None


def test_timer_is_disarmed_when_the_run_continues(registry):
    import asyncio

    seen = []
    holder = {}

    async def slow(state):
        await asyncio.sleep(0.4)  # the loop is free: a still-armed 0.1 s timer would fire now
        seen.append(registry.get_live_context(holder["id"]))

    p = Pipeline("p", stages=[Stage("a", steps=[Step("x", add("n"))], router=lambda s, r: Pause("b", timeout=0.1)),
                              Stage("b", steps=[Step("slow", slow)])])
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    holder["id"] = ctx.run_id
    ctx.run_sync()
    assert ctx.run_sync().unwrap().status == "completed"
    assert seen == [ctx]
    assert ctx.checkpoint is None


def test_a_new_pause_sets_the_expiry_whether_it_is_later_or_sooner(registry):
    timeouts = iter([0.3, 1.2, 60, 0.2])

    p = Pipeline("p", stages=[Stage("a", steps=[Step("x", add("n"))],
                                    router=lambda s, r: Pause("a", timeout=next(timeouts)))])
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    live = lambda: registry.get_live_context(ctx.run_id) is ctx  # noqa: E731
    t0 = time.monotonic()
    ctx.run_sync()   # expires in 0.3 s ...
    ctx.run_sync()   # ... no: paused again, now for 1.2 s
    time.sleep(0.6)
    assert live(), "expired on the first pause's deadline although the run paused again"
    assert wait_for(lambda: not live(), timeout=3)
    assert time.monotonic() - t0 >= 1.1
    # Resumed from the store (slow path), paused for 60 s, then again for 0.2 s: the sooner one wins.
    ctx = PipelineFactory(p, registry=registry).resume_sync(ctx.run_id).unwrap()
    ctx.run_sync()
    ctx.run_sync()
    t1 = time.monotonic()
    assert wait_for(lambda: not live(), timeout=3)
    assert time.monotonic() - t1 < 2


def test_runs_expire_discard_and_on_change(registry):
    changes = []
    off = registry.on_change(changes.append)
    f, ctx, store = setup_run(registry, timeout=60)
    rec = {r.run_id: r for r in registry.runs()}[ctx.run_id]
    assert (rec.pipeline_id, rec.status, rec.paused_at, rec.live) == ("reg", "paused", "report", True)
    assert 59 < rec.time_left <= 60
    assert ctx.run_id in changes
    assert registry.expire(ctx.run_id) is True
    assert registry.expire(ctx.run_id) is False
    rec = {r.run_id: r for r in registry.runs()}[ctx.run_id]
    assert (rec.live, rec.status, rec.expires_at) == (False, "paused", None)
    assert registry.discard(ctx.run_id) is True
    assert ctx.run_id not in {r.run_id for r in registry.runs()}
    res = f.resume_sync(ctx.run_id)
    assert res.is_err and ctx.run_id in str(res.error)
    off()
    n = len(changes)
    setup_run(registry, timeout=60)
    assert len(changes) == n


def test_completed_runs_leave_the_registry(registry):
    ctx = PipelineFactory(pausing(), registry=registry).prepare_sync(initial_state={"ok": True}).unwrap()
    ctx.run_sync()
    assert ctx.run_id not in {r.run_id for r in registry.runs()}


def test_close_releases_live_runs_keeping_them_resumable():
    reg = PipelineRegistry()
    f, ctx, store = setup_run(reg, timeout=60)
    reg.close()
    assert reg.get_live_context(ctx.run_id) is None
    assert f.resume_sync(ctx.run_id).unwrap().artifacts.get("model") == {"weights": [1, 2, 3]}


def test_no_thread_per_run_and_thread_safe_methods(registry):
    setup_run(registry, timeout=30)
    threads_before = threading.active_count()
    contexts = [setup_run(registry, timeout=30)[1] for _ in range(300)]
    assert threading.active_count() == threads_before
    errors = []

    def hammer(i):
        try:
            for ctx in contexts[i::4]:
                registry.runs()
                registry.get_live_context(ctx.run_id)
                registry.expire(ctx.run_id)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    assert all(registry.get_live_context(c.run_id) is None for c in contexts)
    assert all(c.checkpoint.container_bundle is not None for c in contexts)


SCRIPT = textwrap.dedent("""
    import time, sys
    from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
    def fit(state, ctx):
        ctx.artifacts.put("model", 42)
        return {"fit": 1}
    p = Pipeline("script", stages=[Stage("a", steps=[Step("fit", fit)], router=lambda s, r: Pause("b", timeout=0.2)),
                                   Stage("b", steps=[Step("x", lambda s: None)])])
    reg = PipelineRegistry()
    ctx = PipelineFactory(p, registry=reg).prepare_sync().unwrap()
    assert ctx.run_sync().unwrap().status == "paused"
    assert reg.runs()[0].live
    time.sleep(0.6)   # no loop is running any more: the timer must still fire
    rec = reg.runs()[0]
    print(rec.live, ctx.checkpoint.container_bundle["artifacts"]["model"])
""")


def test_timers_fire_in_a_plain_script_after_run_sync_returned():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "42"]


def test_timers_fire_in_a_jupyter_kernel():
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(SCRIPT.split("time.sleep")[0].replace("ctx.run_sync()", "(await ctx.run())")),
        nbformat.v4.new_code_cell("import asyncio\nawait asyncio.sleep(0.6)\nprint(reg.runs()[0].live, "
                                  "ctx.checkpoint.container_bundle['artifacts']['model'])"),
    ]
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert nb.cells[1].outputs[0]["text"].split() == ["False", "42"]


def test_artifact_container_export_round_trip():
    c = ArtifactContainer()
    c.put("model", {"w": 1})
    c.put("frame", [1, 2])
    bundle = c.export()
    c.put("later", 1)
    back = ArtifactContainer.from_bundle(bundle)
    assert back.keys() == ["model", "frame"] and back.get("model") == {"w": 1} and back.get("x", 7) == 7
    with pytest.raises(KeyError, match="nope"):
        back["nope"]
    with pytest.raises(ValueError):
        ArtifactContainer.from_bundle({"version": 99})

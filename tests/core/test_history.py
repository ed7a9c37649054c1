"""SPEC 9 and 10: stage history, diffs, forks, and fixing code while a run waits.

In memory, with SQLite after everything was rebuilt (a kernel restart), and
from a real second process.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from pipenb import (
    InMemoryStore, Pause, Pipeline, PipelineFactory, PipelineRegistry, ResumeError, Stage, Step, StepError,
)
from pipenb.core.history import StageRecord, StateDiff
from pipenb.stores import SqliteStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESERVED = "__pipeline_data__"
BLOB = b"\0" * (10 * 1024 * 1024)


# -- a pipeline with a sub-pipeline, a router pause and an artifact ---------------

MODELS: list = []


def fit(state, ctx):
    model = object()
    MODELS.append(model)
    ctx.artifacts.put("model", model)
    coef = state.get("model", {}).get("coef", 0)
    return {"model": {"coef": coef + 1, "kind": "linear"}}


def gate(state, results):
    return None if state.get("approved") else Pause("review")


def demo(pid="hist"):
    train = Pipeline(f"{pid}-train", stages=[
        Stage("prep", steps=[Step("p", lambda s: {"prepped": s["rows"] * 2})]),
        Stage("fit", steps=[Step("f", fit)]),
    ])
    return Pipeline(pid, stages=[
        Stage("load", steps=[Step("read", lambda s: {"rows": 3}), Step("more", lambda s: {"rows": s["rows"] + 1})]),
        Stage("gate", steps=[Step("g", lambda s: {"gated": True})], router=gate, routes=["review"]),
        Stage("review", steps=[Step("r", lambda s: {"reviewed": s.get("approved", False)})]),
        Stage("train", pipeline=train),
        Stage("report", steps=[Step("w", lambda s: {"report": f"coef={s['model']['coef']}"})]),
    ])


def finish(ctx, approve=True):
    """Run to the end, approving at the gate's pause."""
    for _ in range(20):
        res = ctx.run_sync().unwrap()
        if res.status != "paused":
            return res
        if approve:
            ctx.update_state({"approved": True})
    raise AssertionError("still paused")


def user(state):
    return {k: v for k, v in state.items() if k != RESERVED}


@pytest.fixture
def finished(make):
    factory, ctx, rec = make(demo(), initial_state={"x": 1, "blob": BLOB})
    res = finish(ctx)
    assert res.status == "completed"
    return factory, ctx


# -- records ------------------------------------------------------------------------

def test_one_record_per_committed_stage(make):
    factory, ctx, rec = make(demo(), initial_state={"x": 1})
    seen = {}
    ctx.on("stage:success", lambda e: seen.setdefault(e.stage_address, []).append(dict(ctx.state)))
    ctx.on("stage:paused", lambda e: seen.setdefault(e.stage_address, []).append(dict(ctx.state)))
    res = ctx.run_sync().unwrap()
    assert res.status == "paused"
    h = ctx.history
    # The pausing stage "gate" has its record.
    assert [r.address for r in h] == ["load", "gate"]
    assert h[-1].decision == Pause("review") and h[-1].stage_id == "gate"
    ctx.update_state({"approved": True})
    finish(ctx)
    h = ctx.history
    assert [r.address for r in h] == ["load", "gate", "review (edit)", "review", "train/prep", "train/fit", "report"]
    assert [r.seq for r in h] == list(range(7))
    assert all(isinstance(r, StageRecord) for r in h)
    assert h[0].label == "load" and h[0].stage_id == "load" and h[0].patch == {"rows": 4}
    assert h[5].stage_id == "fit" and h[5].address == "train/fit"
    assert h[0].started > 0 and h[0].duration >= 0
    for r in h:
        assert RESERVED not in r.state
        if not r.address.endswith("(edit)"):
            assert dict(r.state) == seen[r.address][-1]
    assert dict(h.initial) == {"x": 1}
    assert dict(h.state_before(0)) == {"x": 1}
    assert dict(h.state_before(3)) == dict(h[2].state) and h[2].state["approved"] is True
    assert h.state_before(-1) is h[-2].state
    assert dict(h[-1].state) == user(ctx.state)


def test_failed_and_aborted_stages_have_no_record(make):
    calls = {"n": 0}

    def flaky(state):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return {"b": 1}

    p = Pipeline("hist-fail", stages=[Stage("a", steps=[Step("a", lambda s: {"a": 1})]),
                                      Stage("b", steps=[Step("b", flaky)]),
                                      Stage("c", steps=[Step("c", lambda s: {"c": 1})])])
    factory, ctx, rec = make(p)
    res = ctx.run_sync()
    assert isinstance(res.error, StepError)
    assert [r.address for r in ctx.history] == ["a"]
    ctx.abort("stop")  # a failed run aborted before it ran again: still nothing
    assert ctx.run_sync().unwrap().status == "completed"
    assert [r.address for r in ctx.history] == ["a", "b", "c"]


def test_diff_by_key_paths(finished):
    factory, ctx = finished
    h = ctx.history
    i = [r.address for r in h].index("train/fit")
    d = h.diff(i)
    assert isinstance(d, StateDiff)
    assert d.added == {("model",): {"coef": 1, "kind": "linear"}} and not d.removed and not d.changed
    # Fork before train/fit, seed a model, and fit again: a nested change by path.
    factory2 = PipelineFactory(demo(), registry=factory.registry)
    p = factory2.fork_sync(ctx.run_id, "train/fit").unwrap()
    p.update_state({"model": {"coef": 10, "kind": "linear", "old": 1}})
    finish(p)
    hp = p.history
    j = [r.address for r in hp].index("train/fit")
    d = hp.diff(j)
    assert d.changed == {("model", "coef"): (10, 11)} and not d.added and not d.removed
    assert d.keys == ["model"]
    # removed: a DELETE in an edit
    from pipenb import DELETE
    q = factory2.fork_sync(ctx.run_id, "report").unwrap()
    q.update_state({"x": DELETE, "model": {"kind": DELETE}})
    dq = q.history.diff(-1)
    assert dq.removed == {("x",): 1, ("model", "kind"): "linear"} and not dq.added and not dq.changed
    assert not h.diff(0).removed and h.diff(0).added == {("rows",): 4}


def test_diff_index_errors(finished):
    factory, ctx = finished
    n = len(ctx.history)
    with pytest.raises(IndexError) as err:
        ctx.history.diff(99)
    assert "99" in str(err.value) and str(n) in str(err.value)
    with pytest.raises(IndexError, match="-99"):
        ctx.history.state_before(-99)


def test_dataframe_columns(finished):
    factory, ctx = finished
    df = ctx.history.dataframe()
    assert list(df.columns) == ["seq", "address", "label", "started", "duration", "decision", "changed"]
    assert len(df) == len(ctx.history)
    assert list(df["address"])[:2] == ["load", "gate"]
    assert list(df["changed"])[0] == ["rows"]
    assert df["decision"][0] == "next" and "review" in df["decision"][1]


def test_records_share_structure(finished):
    factory, ctx = finished
    h = ctx.history
    assert ctx.state["blob"] is not None
    blob = h.initial["blob"]
    assert all(r.state["blob"] is blob for r in h)
    assert h.state_before(0)["blob"] is blob


# -- factory settings ----------------------------------------------------------------

def test_history_false_keeps_none(make):
    factory, ctx, rec = make(demo(), history=False)
    finish(ctx)
    assert len(ctx.history) == 0
    assert list(ctx.history) == []


def test_history_int_keeps_the_last_n(make):
    ref_f, ref, _ = make(demo("hist-ref"), initial_state={"x": 1})
    finish(ref)
    factory, ctx, rec = make(demo("hist-n"), initial_state={"x": 1}, history=3)
    finish(ctx)
    h, full = ctx.history, ref.history
    assert [r.address for r in h] == [r.address for r in full][-3:]
    assert [r.seq for r in h] == [r.seq for r in full][-3:]
    for i in range(3):
        assert dict(h.state_before(i)) == dict(full.state_before(len(full) - 3 + i))
        assert dict(h[i].state) == dict(full[len(full) - 3 + i].state)
    assert dict(h.diff(0).added) == dict(full.diff(len(full) - 3).added)


def test_history_setting_is_checked():
    with pytest.raises(ValueError, match="-1"):
        PipelineFactory(demo(), history=-1)
    with pytest.raises(TypeError, match="yes"):
        PipelineFactory(demo(), history="yes")


# -- edits ---------------------------------------------------------------------------

def test_edit_is_a_record_and_a_fork_after_it_keeps_it(make):
    factory, ctx, rec = make(demo(), initial_state={"x": 1})
    assert ctx.run_sync().unwrap().status == "paused"
    started = {}
    ctx.on("stage:start", lambda e: started.setdefault(e.stage_address, dict(ctx.state)))
    ctx.update_state({"approved": True})
    edit = ctx.history[-1]
    assert "edit" in edit.address and edit.address.startswith("review") and edit.stage_id is None
    assert edit.patch == {"approved": True}
    finish(ctx, approve=False)
    h = ctx.history
    i = [r.address for r in h].index("review")
    assert h.state_before(i)["approved"] is True
    assert dict(h.state_before(i)) == started["review"]
    assert h[i].state["reviewed"] is True
    for at in ("review", i, i - len(h)):
        f = factory.fork_sync(ctx.run_id, at).unwrap()
        assert f.state["approved"] is True and f.position == "review"
        assert [r.address for r in f.history][-1] == "review (edit)"
        assert f.run_sync().unwrap().state["reviewed"] is True
    # Forking at the edit itself: the state before the edit, continuing at review.
    f = factory.fork_sync(ctx.run_id, i - 1).unwrap()
    assert "approved" not in f.state and f.position == "review"


# -- forks ---------------------------------------------------------------------------

@pytest.mark.parametrize("at", [5, -2, "train/fit", "train"])
def test_fork(finished, at):
    factory, ctx = finished
    h = ctx.history
    addresses = [r.address for r in h]
    i = {5: 5, -2: len(h) - 2, "train/fit": addresses.index("train/fit"),
         "train": addresses.index("train/prep")}[at]
    source_state, source_records = ctx.state, list(h)
    source_artifacts = dict(ctx.artifacts.items())
    fork = factory.fork_sync(ctx.run_id, at).unwrap()
    assert fork.run_id != ctx.run_id and fork.status == "prepared"
    assert dict(fork.state) == dict(h.state_before(i))
    assert list(fork.history) == source_records[:i]
    assert fork.position == h[i].address
    res = fork.run_sync().unwrap()
    assert res.status == "completed" and user(res.state) == user(ctx.state)
    assert [r.address for r in fork.history] == addresses
    # The source is unchanged.
    assert ctx.state is source_state and list(ctx.history) == source_records
    assert dict(ctx.artifacts.items()) == source_artifacts and ctx.status == "completed"


def test_fork_artifacts_are_those_before_the_stage(finished):
    factory, ctx = finished
    model = ctx.artifacts["model"]
    assert model is MODELS[-1]
    before = factory.fork_sync(ctx.run_id, "train/fit").unwrap()
    assert "model" not in before.artifacts and "load/read" in before.artifacts
    after = factory.fork_sync(ctx.run_id, "report").unwrap()
    assert after.artifacts["model"] is model
    assert after.artifacts["load/read"] is ctx.artifacts["load/read"]
    before.run_sync().unwrap()
    assert before.artifacts["model"] is not model and ctx.artifacts["model"] is model


def test_fork_errors_name_what_is_wrong(finished):
    factory, ctx = finished
    n = len(ctx.history)
    for at, words in [(99, ["99", str(n)]), (-99, ["-99"]), ("nowhere", ["nowhere"]),
                      ("train/nope", ["train/nope"]), (None, ["None"])]:
        res = factory.fork_sync(ctx.run_id, at)
        assert res.is_err and isinstance(res.error, ResumeError), at
        for w in words:
            assert w in str(res.error), (at, str(res.error))
    res = factory.fork_sync("no-such-run", 0)
    assert isinstance(res.error, ResumeError) and "no-such-run" in str(res.error)


def test_fork_of_a_stage_never_reached_is_an_error(make):
    factory, ctx, rec = make(demo())
    ctx.run_sync()  # paused at the gate: train never ran
    res = factory.fork_sync(ctx.run_id, "train/fit")
    assert isinstance(res.error, ResumeError) and "train/fit" in str(res.error)
    res = factory.fork_sync(ctx.run_id, "train")
    assert isinstance(res.error, ResumeError) and "'train'" in str(res.error)


def test_fork_new_run_id(finished):
    factory, ctx = finished
    fork = factory.fork_sync(ctx.run_id, 0, new_run_id="my-fork").unwrap()
    assert fork.run_id == "my-fork"
    assert factory.resume_sync("my-fork").unwrap() is fork
    again = factory.fork_sync(ctx.run_id, 0, new_run_id="my-fork")
    assert isinstance(again.error, ResumeError) and "my-fork" in str(again.error)


def test_fork_of_a_fork(finished):
    factory, ctx = finished
    a = factory.fork_sync(ctx.run_id, "train").unwrap()
    a.run_sync().unwrap()
    b = factory.fork_sync(a.run_id, "report").unwrap()
    assert user(b.run_sync().unwrap().state) == user(ctx.state)


# -- SPEC 9: fix the code, resume -----------------------------------------------------

def price_pipeline(fixed: bool, extra_stage=True, pid="shop"):
    def total(state):
        if fixed:
            return {"total": state["price"] * state["qty"]}
        return {"total": state["prcie"] * state["qty"]}

    stages = [Stage("load", steps=[Step("l", lambda s: {"price": 2.5, "qty": 4})]),
              Stage("total", steps=[Step("t", total)])]
    if extra_stage:
        stages.append(Stage("ship", steps=[Step("s", lambda s: {"shipped": s["total"]})]))
    return Pipeline(pid, stages=stages)


def test_resume_with_a_redefined_pipeline_runs_the_fixed_code(registry):
    old = PipelineFactory(price_pipeline(False), registry=registry)
    ctx = old.prepare_sync().unwrap()
    res = ctx.run_sync()
    assert isinstance(res.error, StepError) and "prcie" in str(res.error.__cause__)
    assert ctx.status == "failed" and ctx.position == "total"
    fixed_pipe = price_pipeline(True)
    new = PipelineFactory(fixed_pipe, registry=registry)
    again = new.resume_sync(ctx.run_id).unwrap()
    assert again is ctx and ctx.pipeline is fixed_pipe
    out = ctx.run_sync().unwrap()
    assert out.status == "completed" and out.state["total"] == 10.0 and out.state["shipped"] == 10.0
    assert [r.address for r in ctx.history] == ["load", "total", "ship"]


def test_resume_async_form(registry):
    from pipenb import run_sync

    old = PipelineFactory(price_pipeline(False, pid="shop2"), registry=registry)
    ctx = old.prepare_sync().unwrap()
    ctx.run_sync()

    async def go():
        new = PipelineFactory(price_pipeline(True, pid="shop2"), registry=registry)
        return await (await new.resume(ctx.run_id)).unwrap().run()

    assert run_sync(go()).unwrap().state["total"] == 10.0


def test_new_definition_lacking_the_address_is_refused(registry):
    old_pipe = price_pipeline(False, pid="shop3")
    old = PipelineFactory(old_pipe, registry=registry)
    ctx = old.prepare_sync().unwrap()
    ctx.run_sync()
    renamed = Pipeline("shop3", stages=[Stage("load", steps=[Step("l", lambda s: {"price": 1, "qty": 1})]),
                                        Stage("sum", steps=[Step("t", lambda s: {"total": 0})])])
    res = PipelineFactory(renamed, registry=registry).resume_sync(ctx.run_id)
    assert isinstance(res.error, ResumeError) and "'total'" in str(res.error)
    assert ctx.pipeline is old_pipe
    res = ctx.run_sync()  # still the old, broken code
    assert isinstance(res.error, StepError) and "prcie" in str(res.error.__cause__)


def test_a_running_context_is_never_rebound(registry):
    import asyncio

    gate = {}

    async def slow(state):
        gate["in"] = True
        await asyncio.sleep(0.05)
        return {"a": 1}

    p1 = Pipeline("shop4", stages=[Stage("a", steps=[Step("a", slow)]), Stage("b", steps=[Step("b", lambda s: {"b": 1})])])
    p2 = Pipeline("shop4", stages=[Stage("a", steps=[Step("a", slow)]), Stage("b", steps=[Step("b", lambda s: {"b": 2})])])
    f1 = PipelineFactory(p1, registry=registry)
    ctx = f1.prepare_sync().unwrap()

    async def go():
        task = ctx.start()
        while not gate.get("in"):
            await asyncio.sleep(0.005)
        assert (await PipelineFactory(p2, registry=registry).resume(ctx.run_id)).unwrap() is ctx
        return await task

    from pipenb import run_sync
    assert run_sync(go()).unwrap().state["b"] == 1 and ctx.pipeline is p1


# -- SQLite: after a restart, and from another process --------------------------------

MODULE = textwrap.dedent("""
    from pipenb import Pause, Pipeline, Stage, Step

    def gate(state, results):
        return None if state.get("approved") else Pause("review")

    def fit(state, ctx):
        ctx.artifacts.put("model", {"fitted": True})
        return {"model": {"coef": state.get("model", {}).get("coef", 0) + 1}}

    train = Pipeline("dur-train", stages=[
        Stage("prep", steps=[Step("p", lambda s: {"prepped": s["rows"] * 2})]),
        Stage("fit", steps=[Step("f", fit)]),
    ])
    pipeline = Pipeline("dur", stages=[
        Stage("load", steps=[Step("read", lambda s: {"rows": 3})]),
        Stage("gate", steps=[Step("g", lambda s: {"gated": True})], router=gate, routes=["review"]),
        Stage("review", steps=[Step("r", lambda s: {"reviewed": s.get("approved", False)})]),
        Stage("train", pipeline=train),
        Stage("report", steps=[Step("w", lambda s: {"report": s["model"]["coef"]})]),
    ])
""")

SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from pipenb import PipelineFactory, PipelineRegistry
    from pipenb.stores import SqliteStore
    from durmod import pipeline

    db, run_id, action = sys.argv[2], sys.argv[3], sys.argv[4]
    factory = PipelineFactory(pipeline, store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    if action == "history":
        res = factory.resume_sync(run_id)
        if res.is_err:
            print(json.dumps({"error": type(res.error).__name__, "message": str(res.error)}))
            sys.exit(0)
        h = res.value.history
        print(json.dumps({"addresses": [r.address for r in h], "seqs": [r.seq for r in h],
                          "states": [dict(r.state) for r in h], "initial": dict(h.initial),
                          "diff": [sorted("/".join(p) for p in h.diff(i).added) for i in range(len(h))]}))
    else:
        at = json.loads(sys.argv[5])
        res = factory.fork_sync(run_id, at, new_run_id=sys.argv[6])
        if res.is_err:
            print(json.dumps({"error": type(res.error).__name__, "message": str(res.error)}))
            sys.exit(0)
        ctx = res.value
        start = {"state": dict(ctx.state), "position": ctx.position, "status": ctx.status,
                 "history": [r.address for r in ctx.history], "model": ctx.artifacts.get("model")}
        out = ctx.run_sync().unwrap()
        print(json.dumps({"start": start, "status": out.status, "state": dict(out.state),
                          "history": [r.address for r in ctx.history]}))
""")


@pytest.fixture
def durable(tmp_path):
    (tmp_path / "durmod.py").write_text(MODULE)
    (tmp_path / "script.py").write_text(SCRIPT)
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("durmod", None)
    import durmod
    yield tmp_path, durmod
    sys.path.remove(str(tmp_path))
    sys.modules.pop("durmod", None)


def other_process(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, str(tmp_path / "script.py"), str(tmp_path), *map(str, args)],
                         capture_output=True, text=True, timeout=60, env=env, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sqlite_history_and_fork_after_a_restart(durable):
    tmp_path, durmod = durable
    db = tmp_path / "runs.sqlite"
    sf = SqliteStore.factory(db)
    factory = PipelineFactory(durmod.pipeline, store_factory=sf, registry=PipelineRegistry())
    ctx = factory.prepare_sync(run_id="r1", initial_state={"x": 1}).unwrap()
    assert ctx.run_sync().unwrap().status == "paused"
    ctx.update_state({"approved": True})
    live = [(r.address, dict(r.state)) for r in ctx.history]
    sf.close()

    # A kernel restart: new store factory, new registry, new factory; the run is paused.
    f2 = PipelineFactory(durmod.pipeline, store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    ctx2 = f2.resume_sync("r1").unwrap()
    assert ctx2 is not ctx
    assert [(r.address, dict(r.state)) for r in ctx2.history] == live
    assert dict(ctx2.history.initial) == {"x": 1}
    assert ctx2.run_sync().unwrap().status == "completed"
    full = [(r.address, dict(r.state)) for r in ctx2.history]
    assert [a for a, _ in full] == ["load", "gate", "review (edit)", "review", "train/prep", "train/fit", "report"]
    f2.store_factory.close()

    # Again, after the run completed: history and fork come from the file alone.
    f3 = PipelineFactory(durmod.pipeline, store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    fork = f3.fork_sync("r1", "train", new_run_id="r1-fork").unwrap()
    assert fork.status == "prepared" and fork.position == "train/prep"
    assert dict(fork.state) == full[3][1]
    assert [r.address for r in fork.history] == [a for a, _ in full[:4]]
    out = fork.run_sync().unwrap()
    assert out.status == "completed" and user(out.state) == full[-1][1]
    assert [(r.address, dict(r.state)) for r in fork.history] == full
    assert user(SqliteStore(db, "r1").get()) == full[-1][1]  # the source is unchanged
    bad = f3.fork_sync("r1", 42)
    assert isinstance(bad.error, ResumeError) and "42" in str(bad.error)
    bad = f3.fork_sync("never-ran", 0)
    assert isinstance(bad.error, ResumeError) and "never-ran" in str(bad.error)
    f3.store_factory.close()


def test_sqlite_history_and_fork_from_another_process(durable):
    tmp_path, durmod = durable
    db = tmp_path / "runs.sqlite"
    sf = SqliteStore.factory(db)
    factory = PipelineFactory(durmod.pipeline, store_factory=sf, registry=PipelineRegistry())
    ctx = factory.prepare_sync(run_id="p1", initial_state={"x": 1}).unwrap()
    assert ctx.run_sync().unwrap().status == "paused"
    ctx.update_state({"approved": True})
    # The paused run's history, read by another process.
    seen = other_process(tmp_path, db, "p1", "history")
    assert seen["addresses"] == [r.address for r in ctx.history] == ["load", "gate", "review (edit)"]
    assert seen["states"] == [dict(r.state) for r in ctx.history]
    assert seen["initial"] == {"x": 1} and seen["diff"][0] == ["rows"]
    assert ctx.run_sync().unwrap().status == "completed"
    live = [(r.address, dict(r.state)) for r in ctx.history]
    # Fork the completed run in another process, at an address and at a negative index.
    out = other_process(tmp_path, db, "p1", "fork", json.dumps("train/fit"), "p1-a")
    assert out["start"]["position"] == "train/fit" and out["start"]["status"] == "prepared"
    assert out["start"]["state"] == live[4][1]
    assert out["start"]["history"] == [a for a, _ in live[:5]]
    assert out["status"] == "completed" and out["state"] == live[-1][1]
    assert out["history"] == [a for a, _ in live]
    out = other_process(tmp_path, db, "p1", "fork", json.dumps(-1), "p1-b")
    assert out["start"]["position"] == "report" and out["start"]["state"] == live[-2][1]
    assert out["state"] == live[-1][1]
    # The forks are on the file: this process sees them, and the source is unchanged.
    assert user(SqliteStore(db, "p1-a").get()) == live[-1][1]
    assert [r.address for r in ctx.history] == [a for a, _ in live]
    assert user(SqliteStore(db, "p1").get()) == live[-1][1]
    # Errors cross the process boundary as ResumeErrors naming what was asked.
    out = other_process(tmp_path, db, "p1", "fork", json.dumps("nowhere"), "p1-c")
    assert out["error"] == "ResumeError" and "nowhere" in out["message"]
    out = other_process(tmp_path, db, "ghost", "fork", json.dumps(0), "p1-d")
    assert out["error"] == "ResumeError" and "ghost" in out["message"]
    sf.close()


def test_memory_store_history_is_gone_with_the_context(registry):
    """An in-memory store keeps no history rows: once the context is gone a fork says so."""
    stores = {}
    f = PipelineFactory(demo("hist-mem"), store_factory=lambda rid: stores.setdefault(rid, InMemoryStore()),
                        registry=PipelineRegistry())
    ctx = f.prepare_sync(run_id="m1").unwrap()
    ctx.run_sync()
    f2 = PipelineFactory(demo("hist-mem"), store_factory=lambda rid: stores.setdefault(rid, InMemoryStore()),
                         registry=PipelineRegistry())
    res = f2.fork_sync("m1", 0)
    assert isinstance(res.error, ResumeError) and "m1" in str(res.error)


def test_an_aborted_stage_has_no_record(make):
    import asyncio

    async def slow(state):
        await asyncio.sleep(5)
        return {"b": 1}

    p = Pipeline("hist-abort", stages=[Stage("a", steps=[Step("a", lambda s: {"a": 1})]),
                                       Stage("b", steps=[Step("b", slow)])])
    factory, ctx, rec = make(p)

    async def go():
        task = ctx.start()
        while ctx.position != "b":
            await asyncio.sleep(0.005)
        ctx.abort("stop")
        return await task

    from pipenb import AbortedError, run_sync
    res = run_sync(go())
    assert isinstance(res.error, AbortedError) and ctx.status == "aborted"
    assert [r.address for r in ctx.history] == ["a"]


# -- regressions: a fork's rows on file replay to the fork's states ----------------------

def test_fork_of_a_limited_history_replays_right_from_sqlite(tmp_path):
    """history=N: the fork's rows start from the state before its oldest kept record, not the run's initial."""
    db = tmp_path / "runs.sqlite"
    sf = SqliteStore.factory(db)
    f = PipelineFactory(demo("hist-lim"), store_factory=sf, registry=PipelineRegistry(), history=3)
    ctx = f.prepare_sync(run_id="src", initial_state={"x": 1}).unwrap()
    finish(ctx)
    h = ctx.history
    fork = f.fork_sync("src", 1, new_run_id="fk").unwrap()
    assert dict(fork.history.state_before(0)) == dict(h.state_before(0))
    sf.close()
    f2 = PipelineFactory(demo("hist-lim"), store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    again = f2.fork_sync("fk", -1, new_run_id="fk2").unwrap()  # the fork's past, from the file alone
    assert dict(again.state) == dict(h.state_before(0))
    assert again.run_sync().unwrap().state == user(ctx.state)
    f2.store_factory.close()


def test_fork_rows_of_a_stage_whose_steps_delete_then_set_replay_right(tmp_path):
    """A stage's steps {"cfg": DELETE} then {"cfg": {"y": 2}} combine to {"cfg": {"y": 2}}, which would
    merge to {"x": 1, "y": 2}: the fork's rows carry the exact change instead."""
    from pipenb import DELETE
    from pipenb.core.history import replay

    p = Pipeline("hist-comb", stages=[
        Stage("a", steps=[Step("a", lambda s: {"cfg": {"x": 1}, "n": 5})]),
        Stage("b", steps=[Step("b1", lambda s: {"cfg": DELETE, "n": DELETE}),
                          Step("b2", lambda s: {"cfg": {"y": 2}, "n": {"m": 1}})]),
        Stage("c", steps=[Step("c", lambda s: {"done": True})]),
    ])
    db = tmp_path / "runs.sqlite"
    sf = SqliteStore.factory(db)
    f = PipelineFactory(p, store_factory=sf, registry=PipelineRegistry())
    ctx = f.prepare_sync(run_id="src").unwrap()
    ctx.run_sync().unwrap()
    live = [dict(r.state) for r in ctx.history]
    assert live[1] == {"cfg": {"y": 2}, "n": {"m": 1}}
    f.fork_sync("src", "c", new_run_id="fk").unwrap()
    assert [dict(r.state) for r in replay(sf("src").load_history(), None)] == live
    assert [dict(r.state) for r in replay(sf("fk").load_history(), None)] == live[:2]
    sf.close()

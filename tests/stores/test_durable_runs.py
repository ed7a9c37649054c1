"""Runs that outlive their process (SPEC 11, 5, 6): real processes, a real SQLite file, no mocks.

Every pipeline lives in a script written to ``tmp_path`` (``durable_defs.py``)
that both this test process and its subprocesses import. Processes talk
through files: a role writes a JSON file when it reaches a point, the test
polls for it with a deadline (never a bare sleep). Steps count their
executions by appending to ``marks`` in the run's directory (``state["dir"]``).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import weakref

import pytest

from pipenb import PipelineFactory, PipelineRegistry, ResumeError
from pipenb.core.store import default_provider
from pipenb.stores import SqliteStore
from ..conftest import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFS = textwrap.dedent('''
    """Pipelines of tests/test_durable_runs.py: imported by the test process and by every subprocess."""
    import json
    import os
    import sys
    import threading
    import time

    from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
    from pipenb.stores import SqliteStore


    def mark(state, name):
        with open(os.path.join(state["dir"], "marks"), "a") as f:
            f.write(f"{name} {os.getpid()}\\n")


    def slow(name):
        """Sleeps in small slices for about 20 s, or until the file ``hurry`` exists in the run's dir."""
        def step(state):
            mark(state, name)
            hurry = os.path.join(state["dir"], "hurry")
            end = time.monotonic() + 20
            while time.monotonic() < end and not os.path.exists(hurry):
                time.sleep(0.02)
            return {name: True}
        return step


    def quick(name):
        def step(state):
            mark(state, name)
            return {name: state.get(name, 0) + 1}
        return step


    def gate_router(state, results):
        if state.get("approved"):
            return None
        return Pause("gate", timeout=state.get("pause_timeout", 60.0))


    def put_lock(state, ctx):
        ctx.artifacts.put("lock", threading.Lock())
        return {"locked": True}


    def put_model(state, ctx):
        ctx.artifacts.put("model", {"coef": [1, 2, 3]})
        return {"modelled": True}


    class Big:
        """A large value that a weakref can watch (bytes cannot be weakly referenced)."""
        def __init__(self, n):
            self.data = bytes(n)


    GATE = Pipeline("durable-gate", stages=[
        Stage("a", steps=[Step("a", quick("a"))]),
        Stage("gate", steps=[Step("check", lambda s: None)], router=gate_router, routes=["gate"]),
        Stage("finish", steps=[Step("finish", quick("finish"))]),
    ])
    LONG = Pipeline("durable-long", stages=[
        Stage("s1", steps=[Step("s1", quick("s1"))]),
        Stage("s2", steps=[Step("s2", slow("s2"))]),
        Stage("s3", steps=[Step("s3", quick("s3"))]),
    ])
    SLOW_FIRST = Pipeline("durable-slow-first", stages=[
        Stage("f1", steps=[Step("f1", slow("f1"))]),
        Stage("f2", steps=[Step("f2", quick("f2"))]),
    ])
    LOCKED = Pipeline("durable-locked", stages=[
        Stage("a", steps=[Step("put", put_lock)], router=lambda s, r: Pause("b", timeout=60.0), routes=["b"]),
        Stage("b", steps=[Step("b", quick("b"))]),
    ])
    MODELLED = Pipeline("durable-modelled", stages=[
        Stage("a", steps=[Step("put", put_model)], router=lambda s, r: Pause("b", timeout=60.0), routes=["b"]),
        Stage("b", steps=[Step("b", quick("b"))]),
    ])
    PIPELINES = {p.id: p for p in (GATE, LONG, SLOW_FIRST, LOCKED, MODELLED)}


    def factory(db, pipeline_id, registry=None):
        return PipelineFactory(PIPELINES[pipeline_id], store_factory=SqliteStore.factory(db),
                               registry=registry if registry is not None else PipelineRegistry())


    def say(dir, name, **data):
        """Write ``name`` (JSON) atomically: the test polls for it."""
        tmp = os.path.join(dir, name + ".tmp")
        with open(tmp, "w") as f:
            json.dump({"pid": os.getpid(), **data}, f)
        os.replace(tmp, os.path.join(dir, name))


    def role_pause_and_linger(db, dir, run_id, timeout):
        """Process A of (a): pause (timeout ``timeout``), stay alive past the expiry, report what the registry did."""
        registry = PipelineRegistry(default_timeout=300)
        f = factory(db, "durable-gate", registry)
        ctx = f.prepare_sync(run_id=run_id, initial_state={"dir": dir, "pause_timeout": float(timeout)}).unwrap()
        res = ctx.run_sync().unwrap()
        say(dir, "paused", status=res.status, paused_at=time.time())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rec = [r for r in registry.runs() if r.run_id == run_id][0]
            if not rec.live:
                say(dir, "expired", note=rec.note, status=rec.status, expired_at=time.time())
                return
            time.sleep(0.02)
        say(dir, "expired", note="never expired", status="?", expired_at=None)


    def role_run(db, dir, run_id, pipeline_id):
        """Prepare ``run_id`` with an initial state and run it (the test kills this process mid-run)."""
        f = factory(db, pipeline_id)
        ctx = f.prepare_sync(run_id=run_id, initial_state={"dir": dir}).unwrap()
        res = ctx.run_sync()
        say(dir, "ran", ok=res.is_ok, status=res.value.status if res.is_ok else str(res.error))


    def role_resume(db, dir, run_id, pipeline_id, patch, out):
        """Resume ``run_id`` in a fresh process; apply ``patch`` (JSON) and run it, or report why not."""
        res = factory(db, pipeline_id).resume_sync(run_id)
        if res.is_err:
            say(dir, out, ok=False, kind=type(res.error).__name__, error=str(res.error))
            return
        ctx = res.value
        patch = json.loads(patch)
        if patch:
            ctx.update_state(patch)
        ran = ctx.run_sync()
        say(dir, out, ok=ran.is_ok, status=ran.value.status if ran.is_ok else None,
            error=None if ran.is_ok else str(ran.error))


    if __name__ == "__main__":
        globals()["role_" + sys.argv[1]](*sys.argv[2:])
''')


# -- plumbing -------------------------------------------------------------------------------

@pytest.fixture
def defs(tmp_path, monkeypatch):
    """The definitions module, importable here (and by subprocesses run with ``spawn``)."""
    (tmp_path / "durable_defs.py").write_text(DEFS)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("durable_defs", None)
    import durable_defs

    yield durable_defs
    sys.modules.pop("durable_defs", None)


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, e.get("PYTHONPATH")]))
    return e


def spawn(tmp_path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(tmp_path / "durable_defs.py"), *map(str, args)], cwd=str(tmp_path),
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_role(tmp_path, *args, timeout: float = 60) -> None:
    out = subprocess.run([sys.executable, str(tmp_path / "durable_defs.py"), *map(str, args)], cwd=str(tmp_path),
                         env=env(), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr


def said(tmp_path, name: str, proc=None, timeout: float = 30.0) -> dict:
    path = tmp_path / name
    wait_for(path.exists, f"file {name!r}", timeout, proc)
    return json.loads(path.read_text())


def marks(tmp_path) -> list[str]:
    path = tmp_path / "marks"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)  # reaped: not a zombie
    proc.stdout.close()
    proc.stderr.close()


def stored(db, run_id) -> dict:
    """What a fresh reader of the file sees of the run (a new store object; nothing shared with anyone)."""
    return dict(SqliteStore(db, run_id).get())


def user(state: dict) -> dict:
    return {k: v for k, v in state.items() if k != "__pipeline_data__"}


def checkpoint_of(state: dict):
    data = state.get("__pipeline_data__") or {}
    return data.get("checkpoint")


def dump(db) -> list:
    """Every row of every table: the file's logical content."""
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return [(t, sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)) for t in tables]
    finally:
        conn.close()


# -- (a) an expiry timer in process A never undoes what process B did ---------------------

def test_expiry_in_the_old_process_never_writes_back_over_a_run_finished_elsewhere(tmp_path, defs):
    db = str(tmp_path / "runs.sqlite")
    a = spawn(tmp_path, "pause_and_linger", db, tmp_path, "run-a", 1.5)
    try:
        paused = said(tmp_path, "paused", a)
        assert paused["status"] == "paused"
        # B (this process) resumes and completes the run while A still holds it live, its timer pending.
        factory = defs.factory(db, "durable-gate")
        ctx = factory.resume_sync("run-a").unwrap()
        ctx.update_state({"approved": True})
        done = ctx.run_sync().unwrap()
        finished_at = time.time()
        assert done.status == "completed"
        final = user(stored(db, "run-a"))
        assert final["finish"] == 1 and final["approved"] is True
        expired = said(tmp_path, "expired", a)
        assert a.wait(timeout=30) == 0
    finally:
        if a.poll() is None:
            kill(a)
    assert expired["expired_at"] is not None and expired["expired_at"] > finished_at, (
        "A's timer fired before B finished: the pause window was too short for this machine")
    assert "another process" in expired["note"], expired
    after = stored(db, "run-a")
    assert checkpoint_of(after) is None, "A's expiry wrote its stale checkpoint back"
    assert user(after) == final
    # Nothing resumes a completed run: B again, then a fresh process C.
    again = factory.resume_sync("run-a")
    assert again.is_err and isinstance(again.error, ResumeError)
    assert defs.factory(db, "durable-gate").resume_sync("run-a").is_err
    run_role(tmp_path, "resume", db, tmp_path, "run-a", "durable-gate", "{}", "c.json")
    c = json.loads((tmp_path / "c.json").read_text())
    assert not c["ok"] and c["kind"] == "ResumeError" and "run-a" in c["error"], c
    assert user(stored(db, "run-a")) == final and checkpoint_of(stored(db, "run-a")) is None
    assert marks(tmp_path).count("finish") == 1


# -- (b) one driver per run; a killed driver is taken over ----------------------------------

def test_a_run_running_elsewhere_is_refused_then_taken_over_after_its_process_is_killed(tmp_path, defs):
    db = str(tmp_path / "runs.sqlite")
    a = spawn(tmp_path, "run", db, tmp_path, "run-b", "durable-long")
    try:
        wait_for(lambda: "s2" in marks(tmp_path), "stage s2 started in A", proc=a)
        factory = defs.factory(db, "durable-long")
        refused = factory.resume_sync("run-b")
        assert refused.is_err and isinstance(refused.error, ResumeError)
        assert "run-b" in str(refused.error) and f"process {a.pid}" in str(refused.error), str(refused.error)
        [rec] = [r for r in factory.runs() if r.run_id == "run-b"]
        assert rec.status == "running" and str(a.pid) in rec.note
    finally:
        kill(a)
    [rec] = [r for r in factory.runs() if r.run_id == "run-b"]
    assert rec.status == "interrupted" and not rec.live, rec
    assert rec.paused_at == "s2"
    (tmp_path / "hurry").touch()  # the long step of B's retry need not take 20 s
    ctx = factory.resume_sync("run-b").unwrap()
    assert ctx.position == "s2"
    done = ctx.run_sync().unwrap()
    assert done.status == "completed"
    assert marks(tmp_path) == ["s1", "s2", "s2", "s3"]  # s1 is not run again; s2 (never committed) is
    assert user(stored(db, "run-b")) == {"dir": str(tmp_path), "s1": 1, "s2": True, "s3": 1}
    assert checkpoint_of(stored(db, "run-b")) is None
    assert factory.resume_sync("run-b").is_err  # completed stays completed


# -- (c) killed during the first stage of a run prepared with an initial state --------------

def test_killed_in_the_first_stage_resumes_from_the_start(tmp_path, defs):
    db = str(tmp_path / "runs.sqlite")
    a = spawn(tmp_path, "run", db, tmp_path, "run-c", "durable-slow-first")
    try:
        wait_for(lambda: "f1" in marks(tmp_path), "stage f1 started in A", proc=a)
    finally:
        kill(a)
    fresh = defs.factory(db, "durable-slow-first")
    [rec] = [r for r in fresh.runs() if r.run_id == "run-c"]
    assert rec.status == "interrupted" and rec.paused_at == "f1", rec
    (tmp_path / "hurry").touch()
    res = fresh.resume_sync("run-c")
    assert res.is_ok, f"resume after a kill in the first stage: {res.error}"  # never "no checkpoint"
    ctx = res.value
    assert ctx.position == "f1"
    done = ctx.run_sync().unwrap()
    assert done.status == "completed"
    assert marks(tmp_path) == ["f1", "f1", "f2"]
    assert user(stored(db, "run-c")) == {"dir": str(tmp_path), "f1": True, "f2": 1}
    # A new run with the same id is refused (the id has state), never silently merged.
    again = defs.factory(db, "durable-slow-first").prepare_sync(run_id="run-c", initial_state={"dir": "x"})
    assert again.is_err and "already has state" in str(again.error)


# -- (d) an old context object after another process took the run over ------------------------

def test_an_old_context_refuses_to_run_after_another_process_took_the_run_over(tmp_path, defs):
    db = str(tmp_path / "runs.sqlite")
    registry = PipelineRegistry(default_timeout=300)
    factory = defs.factory(db, "durable-gate", registry)
    old = factory.prepare_sync(run_id="run-d", initial_state={"dir": str(tmp_path)}).unwrap()
    assert old.run_sync().unwrap().status == "paused"
    # B, another process, takes it over: edits the state and runs it; it pauses again at the gate.
    run_role(tmp_path, "resume", db, tmp_path, "run-d", "durable-gate", json.dumps({"by": "B"}), "b.json")
    b = json.loads((tmp_path / "b.json").read_text())
    assert b["ok"] and b["status"] == "paused", b
    before = dump(db)
    assert user(stored(db, "run-d"))["by"] == "B"
    assert old.status == "paused"  # as far as this process knows
    res = old.run_sync()
    assert res.is_err
    assert "run-d" in str(res.error) and "another" in str(res.error), str(res.error)
    assert dump(db) == before, "the refused attempt changed the file"
    assert marks(tmp_path) == ["a"]  # nothing ran for the old context (B's gate step marks nothing)
    # Its registry's expiry writes nothing either: the file is B's.
    registry.expire("run-d")
    assert dump(db) == before
    registry.close()
    # The file's run is still B's, resumable with B's edit.
    ctx = defs.factory(db, "durable-gate").resume_sync("run-d").unwrap()
    assert ctx.state["by"] == "B"


# -- (e) a durable pause whose artifacts cannot all be saved --------------------------------

def test_durable_pause_with_an_unsaveable_artifact_keeps_the_run_live_and_says_why(tmp_path, defs, caplog):
    db = str(tmp_path / "runs.sqlite")
    registry = PipelineRegistry(default_timeout=300)
    factory = defs.factory(db, "durable-locked", registry)
    ctx = factory.prepare_sync(run_id="run-e").unwrap()
    with caplog.at_level(logging.WARNING, logger="pipenb"):
        res = ctx.run_sync()
    assert res.is_ok, res.error
    assert res.value.status == "paused" and ctx.status == "paused"
    [rec] = [r for r in registry.runs() if r.run_id == "run-e"]
    assert rec.live and "lock" in rec.note, rec
    assert registry.get_live_context("run-e") is ctx
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING and "lock" in r.getMessage()]
    assert warned, [r.getMessage() for r in caplog.records]
    cp = checkpoint_of(stored(db, "run-e"))
    assert cp is not None and cp.resume_at == ("b",)
    assert cp.container_bundle is None or "lock" not in cp.container_bundle.get("artifacts", {})
    # The expiry cannot save it either: the context stays the only copy, still live.
    assert not registry.expire("run-e")
    assert registry.get_live_context("run-e") is ctx
    assert factory.resume_sync("run-e").unwrap() is ctx
    registry.close()


def test_durable_pause_has_its_saveable_artifacts_in_the_file_already(tmp_path, defs):
    db = str(tmp_path / "runs.sqlite")
    registry = PipelineRegistry(default_timeout=300)
    ctx = defs.factory(db, "durable-modelled", registry).prepare_sync(run_id="run-e2").unwrap()
    assert ctx.run_sync().unwrap().status == "paused"
    [rec] = [r for r in registry.runs() if r.run_id == "run-e2"]
    assert rec.live and rec.note == ""
    probe = ("import sys; from pipenb.stores import SqliteStore; "
             "print(repr(SqliteStore(sys.argv[1], 'run-e2').load_artifacts()['model']))")
    out = subprocess.run([sys.executable, "-c", probe, db], capture_output=True, text=True, env=env(),
                         cwd=str(tmp_path), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'coef': [1, 2, 3]}"
    registry.close()


# -- (f) memory ------------------------------------------------------------------------------

def test_discard_frees_a_paused_in_memory_run_and_the_old_context_refuses_to_run(defs):
    registry = PipelineRegistry(default_timeout=300)
    factory = PipelineFactory(defs.LOCKED, registry=registry)
    ctx = factory.prepare_sync().unwrap()
    assert ctx.run_sync().unwrap().status == "paused"
    assert ctx.run_id in default_provider
    assert registry.discard(ctx.run_id)
    assert ctx.run_id not in default_provider
    res = ctx.run_sync()
    assert res.is_err and ctx.run_id in str(res.error), res
    assert ctx.run_id not in default_provider  # the refused attempt made no store again
    assert factory.resume_sync(ctx.run_id).is_err
    registry.close()


def test_a_run_prepared_and_never_run_is_released_after_the_default_timeout(defs, tmp_path):
    registry = PipelineRegistry(default_timeout=0.3)
    factory = PipelineFactory(defs.GATE, registry=registry)
    big = defs.Big(1000)
    watch = weakref.ref(big)
    ctx = factory.prepare_sync(initial_state={"dir": str(tmp_path), "big": big}).unwrap()
    del big
    run_id = ctx.run_id
    assert run_id in default_provider
    [rec] = registry.runs()
    assert rec.live and rec.expires_at is not None
    wait_for(lambda: not registry.runs()[0].live, "the prepared run's release", timeout=10)
    [rec] = registry.runs()
    assert not rec.live and rec.note, rec
    assert run_id not in default_provider
    del ctx
    gc.collect()
    assert watch() is None, "the released run's state is still referenced"
    registry.close()


BIG = 50 * 1000 * 1000


def _big_runs(defs, factory, dir, n=10):
    """``n`` runs paused at the gate, each holding a 50 MB value; weakrefs to those values."""
    refs, ids = [], []
    for _ in range(n):
        big = defs.Big(BIG)
        refs.append(weakref.ref(big))
        ctx = factory.prepare_sync(initial_state={"dir": dir, "big": big}).unwrap()
        del big
        assert ctx.run_sync().unwrap().status == "paused"
        ids.append(ctx.run_id)
        del ctx
    gc.collect()
    assert all(r() is not None for r in refs)  # held while the runs are
    return refs, ids


def test_ten_discarded_paused_runs_of_50_mb_leave_no_reference(defs, tmp_path):
    registry = PipelineRegistry(default_timeout=300)
    factory = PipelineFactory(defs.GATE, registry=registry)
    refs, ids = _big_runs(defs, factory, str(tmp_path))
    for run_id in ids:
        assert registry.discard(run_id)
    gc.collect()
    alive = [i for i, r in enumerate(refs) if r() is not None]
    assert not alive, f"runs {alive} still hold their 50 MB state after discard"
    assert not any(run_id in default_provider for run_id in ids)
    registry.close()


def test_ten_expired_durable_runs_of_50_mb_leave_no_reference_in_memory(defs, tmp_path):
    registry = PipelineRegistry(default_timeout=300)
    factory = defs.factory(str(tmp_path / "runs.sqlite"), "durable-gate", registry)
    refs, ids = _big_runs(defs, factory, str(tmp_path))
    assert all(r.size is not None for r in registry.runs())  # a dashboard looked at them (sizes measured)
    for run_id in ids:
        assert registry.expire(run_id)
    gc.collect()
    alive = [i for i, r in enumerate(refs) if r() is not None]
    assert not alive, f"runs {alive} still hold their 50 MB state in memory after expiry (it is in the file)"
    # Still resumable from the file.
    again = factory.resume_sync(ids[0]).unwrap()
    assert again.state["big"].data == bytes(BIG)
    del again
    # An expired run can still be discarded: its checkpoint leaves the file.
    assert registry.discard(ids[1])
    assert factory.resume_sync(ids[1]).is_err
    assert checkpoint_of(stored(str(tmp_path / "runs.sqlite"), ids[1])) is None
    registry.close()
    factory.store_factory.close()


# -- (g) listing 10,000 stored runs ----------------------------------------------------------

def make_paused_runs(db: str, n: int, pipeline_id: str = "durable-gate") -> None:
    """``n`` runs paused at "gate" in ``db``: each written through its own ``SqliteStore`` as a pause writes it
    (the state and the checkpoint in one commit), without running 10,000 pipelines."""
    from pipenb.core.checkpoints import PipelineCheckpoint, checkpoint_patch, now_iso

    store_factory = SqliteStore.factory(db)
    when = now_iso()
    for i in range(n):
        run_id = f"run-{i:05d}"
        cp = PipelineCheckpoint(run_id=run_id, pipeline_id=pipeline_id, resume_at=("gate",),
                                paused_at_stage_id="gate", paused_at_stage_label="gate", paused_on=when)
        store = store_factory(run_id)
        with store.transaction():
            store.set({"dir": "/nowhere", "a": 1})
            store.set(checkpoint_patch(cp, status="paused"))
    store_factory.close()


def test_runs_lists_ten_thousand_paused_runs_of_a_sqlite_file(defs, tmp_path):
    db = str(tmp_path / "runs.sqlite")
    make_paused_runs(db, 10_000)
    factory = defs.factory(db, "durable-gate")
    factory.runs()  # warm: the file opened once
    t = time.perf_counter()
    runs = factory.runs()
    took = time.perf_counter() - t
    print(f"factory.runs() over 10,000 paused runs: {took * 1e3:.1f} ms (target <= 200 ms)")
    assert len(runs) == 10_000
    assert {(r.status, r.paused_at, r.live) for r in runs} == {("paused", "gate", False)}
    # They are real runs: one resumes and completes.
    ctx = factory.resume_sync("run-00042").unwrap()
    ctx.update_state({"approved": True, "dir": str(tmp_path)})
    assert ctx.run_sync().unwrap().status == "completed"
    assert len(factory.runs()) == 10_000  # the completed one stays listed (SPEC 14), as completed
    assert sum(r.status == "completed" for r in factory.runs()) == 1
    factory.store_factory.close()

"""SPEC 6: SqliteStore durability — new processes, SIGKILL, exact values, isolation, bad files."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step, StoreError
from pipenb.stores import SqliteStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def python(code: str, *args, timeout=60, check=True):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT)
    if check:
        assert out.returncode == 0, out.stderr
    return out


GATED = """
from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.stores import SqliteStore
import sys
def fit(state, ctx):
    ctx.artifacts.put("model", {"coef": [0.5, 1.5]})
    return {"fitted": state.get("fitted", 0) + 1}
def gate(state, results):
    return None if state.get("approved") else Pause("deploy", timeout=0)
def deploy(state, ctx):
    return {"deployed": ctx.artifacts.get("model")}
p = Pipeline("gated", stages=[Stage("fit", steps=[Step("fit", fit)], router=gate),
                              Stage("deploy", steps=[Step("deploy", deploy)])])
factory = PipelineFactory(p, store_factory=SqliteStore.factory(sys.argv[1]), registry=PipelineRegistry())
"""


def test_paused_run_resumes_in_a_new_process(tmp_path):
    db = str(tmp_path / "runs.sqlite")
    out = python(GATED + """
ctx = factory.prepare_sync().unwrap()
print(ctx.run_sync().unwrap().status, ctx.run_id)
""", db)
    status, run_id = out.stdout.split()
    assert status == "paused"
    out = python(GATED + """
ctx = factory.resume_sync(sys.argv[2]).unwrap()
ctx.update_state({"approved": True})
res = ctx.run_sync().unwrap()
print(res.status, res.state["deployed"]["coef"], res.state["fitted"], ctx.checkpoint)
""", db, run_id)
    assert out.stdout.split() == ["completed", "[0.5,", "1.5]", "1", "None"]


KILLABLE = """
import sys, time
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.stores import SqliteStore
N = 40
def work(i):
    def action(state):
        time.sleep(0.02)
        return {"count": state.get("count", 0) + 1, "done": {f"s{i:02d}": True}}
    return action
p = Pipeline("long", stages=[Stage(f"s{i:02d}", steps=[Step("a", work(i)), Step("b", lambda s: {"twice": s["count"] * 2})])
                             for i in range(N)])
factory = PipelineFactory(p, store_factory=SqliteStore.factory(sys.argv[1]), registry=PipelineRegistry())
"""


def test_sigkill_between_stages_resumes_from_last_commit(tmp_path):
    db = str(tmp_path / "runs.sqlite")
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLABLE + """
ctx = factory.prepare_sync(run_id="victim").unwrap()
ctx.run_sync()
"""), db], cwd=ROOT)
    try:
        # Wait until some stages are committed, then kill without warning.
        deadline = time.monotonic() + 30
        count = 0
        while time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                count = len(SqliteStore(db, "victim").get().get("done", {}))
            except StoreError:
                continue
            if count >= 8:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = SqliteStore(db, "victim")
    state = store.get()
    committed = len(state["done"])
    assert 8 <= committed < 40
    # Whole stages only: both steps' patches of every committed stage, nothing of a half stage.
    assert state["count"] == committed and state["twice"] == 2 * committed
    cp = state["__pipeline_data__"]["checkpoint"]
    assert cp.resume_at == (f"s{committed:02d}",)
    out = python(KILLABLE + """
ctx = factory.resume_sync("victim").unwrap()
res = ctx.run_sync().unwrap()
print(res.status, res.state["count"], len(res.state["done"]), res.state["twice"])
""", db)
    assert out.stdout.split() == ["completed", "40", "40", "80"]


def test_values_round_trip_exactly(tmp_path):
    db = tmp_path / "v.sqlite"
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "t": pd.date_range("2026-01-01", periods=3)})
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    blob = os.urandom(1 << 20)
    factory = SqliteStore.factory(db)
    s = factory("r1")
    s.set({"df": df, "arr": arr, "blob": blob, "nested": {"t": (1, 2), "f": 1.5}})
    factory.close()
    back = SqliteStore(db, "r1").get()
    pd.testing.assert_frame_equal(back["df"], df)
    assert back["arr"].dtype == np.float32 and np.array_equal(back["arr"], arr)
    assert back["blob"] == blob and back["nested"] == {"t": (1, 2), "f": 1.5}


def test_many_runs_in_one_file_stay_isolated(tmp_path):
    factory = SqliteStore.factory(tmp_path / "many.sqlite")
    p = Pipeline("iso", stages=[
        Stage("a", steps=[Step("x", lambda s: {"me": s["me"], "n": s["me"] * 10})],
              router=lambda s, r: Pause("b")),
        Stage("b", steps=[Step("y", lambda s: {"n": s["n"] + 1})]),
    ])
    f = PipelineFactory(p, store_factory=factory, registry=PipelineRegistry())
    ctxs = [f.prepare_sync(initial_state={"me": i}).unwrap() for i in range(5)]
    for c in ctxs:
        c.run_sync()
    for c in ctxs[::2]:
        c.run_sync()
    assert sorted(factory.run_ids()) == sorted(c.run_id for c in ctxs)
    for i, c in enumerate(ctxs):
        state = SqliteStore(factory.path, c.run_id).get()
        assert state["me"] == i and state["n"] == i * 10 + (1 if i % 2 == 0 else 0)
        note = state["__pipeline_data__"]  # paused: where it continues; completed: how it ended, no checkpoint
        assert ("checkpoint" in note, note["status"]) == ((True, "paused") if i % 2 else (False, "completed"))


def paused_sqlite_run(db):
    factory = SqliteStore.factory(db, timeout=0.2)
    p = Pipeline("locked", stages=[
        Stage("a", steps=[Step("x", lambda s: {"a": 1})], router=lambda s, r: Pause("b")),
        Stage("b", steps=[Step("y", lambda s: {"b": 1})]),
    ])
    f = PipelineFactory(p, store_factory=factory, registry=PipelineRegistry())
    ctx = f.prepare_sync().unwrap()
    ctx.run_sync()
    return f, ctx


def test_locked_file_is_a_store_error_and_the_checkpoint_survives(tmp_path):
    db = str(tmp_path / "locked.sqlite")
    f, ctx = paused_sqlite_run(db)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        res = ctx.run_sync()
        assert isinstance(res.error, StoreError) and db in str(res.error) and "locked" in str(res.error)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert ctx.status == "failed"
    state = SqliteStore(db, ctx.run_id).get()
    assert state["a"] == 1 and "b" not in state
    assert state["__pipeline_data__"]["checkpoint"].resume_at == ("b",)
    assert f.resume_sync(ctx.run_id).unwrap().run_sync().unwrap().state == {"a": 1, "b": 1}


def test_read_only_file_is_a_store_error_naming_the_path(tmp_path):
    db = str(tmp_path / "ro.sqlite")
    f, ctx = paused_sqlite_run(db)
    f.store_factory.close()
    if os.geteuid() == 0:
        # root ignores file modes; the immutable attribute binds root too.
        if subprocess.run(["chattr", "+i", db], capture_output=True).returncode != 0:
            pytest.skip("cannot make a file read-only for root here (chattr failed)")
    else:
        os.chmod(db, 0o444)
    try:
        g = PipelineFactory(f.pipeline, store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
        res = g.resume_sync(ctx.run_id)
        if res.is_ok:
            res = res.value.run_sync()
        assert isinstance(res.error, StoreError) and db in str(res.error)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", db])
        else:
            os.chmod(db, 0o644)
    state = SqliteStore(db, ctx.run_id).get()
    assert state["__pipeline_data__"]["checkpoint"].resume_at == ("b",)


def test_corrupt_file_is_a_store_error_naming_the_path(tmp_path):
    db = tmp_path / "corrupt.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    f = PipelineFactory(Pipeline("p", steps=[Step("a", lambda s: None)]), store_factory=SqliteStore.factory(db),
                        registry=None)
    res = f.prepare_sync()
    assert isinstance(res.error, StoreError) and str(db) in str(res.error)
    res = f.resume_sync("some-run")
    assert isinstance(res.error, StoreError) and str(db) in str(res.error)

"""Artifacts in a SQLite file (SPEC 15): written with each stage commit, by version; real files, real processes.

The pipelines live in a script written to ``tmp_path`` that this test process
and its subprocesses both import. A subprocess that dies with ``os._exit`` in
the middle of a stage is a kernel killed mid-run; the test process, which
never held the run, is the new kernel that resumes or forks it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from pipenb import ArtifactNotSavedError, PipelineFactory, PipelineRegistry, StoreError
from pipenb.stores import SqliteStore
from pipenb.stores.sqlite.file import SCHEMA_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1024 * 1024

DEFS = textwrap.dedent('''
    """Pipelines of tests/stores/test_sqlite_artifacts.py: imported by the test process and its subprocesses."""
    import json
    import os
    import sys
    import threading

    import numpy as np
    import pandas as pd

    from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
    from pipenb.stores import SqliteStore


    def frame():
        return pd.DataFrame({"a": np.arange(1000), "b": np.linspace(0.0, 1.0, 1000)})


    def load(state, ctx):
        ctx.artifacts.put("frame", frame())
        ctx.artifacts.put("lock", threading.Lock())  # cannot be pickled
        ctx.artifacts.put("scratch", [1, 2, 3], durable=False)
        return {"loaded": True}


    def fit(state, ctx):
        ctx.artifacts.put("model", {"mean": float(ctx.artifacts["frame"]["b"].mean())})
        return {"fitted": True}


    def crash(state, ctx):
        if state.get("crash"):
            os._exit(17)  # the kernel dies in the middle of this stage
        return {"checked": True}


    def report(state, ctx):
        return {"rows": len(ctx.artifacts["frame"]), "mean": ctx.artifacts["model"]["mean"]}


    PIPE = Pipeline("artifacts-crash", stages=[
        Stage("load", steps=[Step("load", load)]),
        Stage("fit", steps=[Step("fit", fit)]),
        Stage("crash", steps=[Step("crash", crash)]),
        Stage("report", steps=[Step("report", report)]),
    ])


    def factory(db, registry=None):
        return PipelineFactory(PIPE, store_factory=SqliteStore.factory(db),
                               registry=registry if registry is not None else PipelineRegistry())


    def seen(ctx):
        """What a run's artifacts hold, as JSON-able facts (a value, or the error reading it raises)."""
        out = {}
        for key in sorted(ctx.artifacts.keys()):
            try:
                value = ctx.artifacts[key]
            except Exception as exc:
                out[key] = f"{type(exc).__name__}: {exc}"
                continue
            out[key] = value.shape[0] if hasattr(value, "shape") else repr(value)
        return out


    if __name__ == "__main__":
        role, db = sys.argv[1], sys.argv[2]
        if role == "crash":
            ctx = factory(db).prepare_sync(run_id="r1", initial_state={"crash": True}).unwrap()
            ctx.run_sync()
            sys.exit(3)  # not reached: the run dies in stage "crash"
        if role == "fork":  # a new process forks a run (r1) at sys.argv[3], says what it sees, then runs the fork
            source = sys.argv[5] if len(sys.argv) > 5 else "r1"
            ctx = factory(db).fork_sync(source, at=sys.argv[3], new_run_id=sys.argv[4]).unwrap()
            before = seen(ctx)
            done = ctx.run_sync().unwrap()
            print(json.dumps({"seen": before, "status": done.status, "rows": ctx.state.get("rows"),
                              "mean": ctx.state.get("mean")}))
''')


@pytest.fixture
def defs(tmp_path, monkeypatch):
    (tmp_path / "artifact_defs.py").write_text(DEFS)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("artifact_defs", None)
    import artifact_defs

    yield artifact_defs
    sys.modules.pop("artifact_defs", None)


def role(tmp_path, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(tmp_path / "artifact_defs.py"), *map(str, args)],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_kernel_killed_in_stage_3_resumes_in_a_new_process_with_stage_1s_dataframe(tmp_path, defs):
    db = tmp_path / "runs.sqlite"
    died = role(tmp_path, "crash", db)
    assert died.returncode == 17, died.stderr
    registry = PipelineRegistry()
    ctx = defs.factory(db, registry).resume_sync("r1").unwrap()
    assert ctx.position == "crash"
    assert ctx.artifacts["frame"].equals(defs.frame())
    assert ctx.artifacts.get("model") == {"mean": 0.5}
    assert ctx.artifacts["load/load"] == {"loaded": True}  # step outputs are artifacts too
    # Not saved: a clear error naming the artifact and why, never a silent None.
    with pytest.raises(ArtifactNotSavedError, match=r"run r1: artifact 'lock' .*cannot be pickled") as info:
        ctx.artifacts.get("lock")
    assert info.value.key == "lock" and "lock" in info.value.reason
    with pytest.raises(ArtifactNotSavedError, match=r"artifact 'scratch' .*durable=False"):
        ctx.artifacts["scratch"]
    ctx.update_state({"crash": False})
    done = ctx.run_sync().unwrap()
    assert done.status == "completed" and ctx.state["rows"] == 1000 and ctx.state["mean"] == 0.5
    registry.close()


def test_fork_in_a_new_process_sees_exactly_the_artifacts_as_of_its_record(tmp_path, defs):
    db = tmp_path / "runs.sqlite"
    registry = PipelineRegistry()
    factory = defs.factory(db, registry)
    ctx = factory.prepare_sync(run_id="r1").unwrap()
    assert ctx.run_sync().unwrap().status == "completed"
    here = {at: defs.seen(factory.fork_sync("r1", at=at, new_run_id=f"here-{at}").unwrap()) for at in ("fit", "report")}
    registry.close()
    for at in ("fit", "report"):
        out = role(tmp_path, "fork", db, at, f"there-{at}")
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        assert got["status"] == "completed" and got["rows"] == 1000 and got["mean"] == 0.5, got
        there = got["seen"]
        assert there["frame"] == 1000
        # Before "fit" ran there was no model and no output of fit; before "report" there were.
        assert ("model" in there, "fit/fit" in there, "crash/crash" in there) == ((at == "report"),) * 3, there
        assert "report/report" not in there
        assert "cannot be pickled" in there["lock"] and "durable=False" in there["scratch"]
        # The fork of this process (from the live run) holds the same keys; the unsaved objects themselves.
        assert sorted(there) == sorted(here[at]), (there, here[at])


def test_a_10_mib_artifact_is_written_once_not_once_per_later_stage(tmp_path):
    from pipenb import Pipeline, Stage, Step

    pickled = []

    class Big:
        """10 MiB that counts how often it is pickled."""

        def __init__(self):
            self.data = os.urandom(10 * MIB)

        def __reduce__(self):
            pickled.append(1)
            return (bytes, (self.data,))

    big = Big()

    def put_big(state, ctx):
        ctx.artifacts.put("big", big)
        return {"n": 0}

    def later(state, ctx):
        return {"n": state["n"] + 1}

    stages = [Stage("put", steps=[Step("put", put_big)])]
    stages += [Stage(f"s{i}", steps=[Step("t", later)]) for i in range(20)]
    db = tmp_path / "big.sqlite"
    sf = SqliteStore.factory(db)
    registry = PipelineRegistry()
    ctx = (
        PipelineFactory(Pipeline("bigart", stages=stages), store_factory=sf, registry=registry)
        .prepare_sync(run_id="r1")
        .unwrap()
    )
    assert ctx.run_sync().unwrap().status == "completed" and ctx.state["n"] == 20
    assert len(pickled) == 1  # put once: pickled (and written) by its own stage's commit only
    stored = sf.artifact_bytes()
    assert 10 * MIB <= stored < 10 * MIB + 64 * 1024, stored
    sf.close()
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages, size = con.execute("PRAGMA page_count").fetchone()[0], con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    assert pages * size < 12 * MIB, pages * size  # once, not 21 times
    # The stages that put nothing wrote no artifact row: their step outputs ride in their history rows.
    con = sqlite3.connect(db)
    assert con.execute("SELECT key FROM pipenb_artifacts").fetchall() == [("big",)]
    con.close()
    registry.close()


def test_an_artifact_write_that_fails_keeps_nothing_of_the_stage(tmp_path, defs):
    db = tmp_path / "runs.sqlite"
    SqliteStore.factory(db).close()  # the file and its tables
    con = sqlite3.connect(db)  # a real SQLite failure, from SQLite itself, in the middle of the commit
    con.execute(
        "CREATE TRIGGER no_model BEFORE INSERT ON pipenb_artifacts WHEN NEW.key = 'model' "
        "BEGIN SELECT RAISE(ABORT, 'the disk says no'); END"
    )
    con.commit()
    con.close()
    registry = PipelineRegistry()
    factory = defs.factory(db, registry)
    ctx = factory.prepare_sync(run_id="r1").unwrap()
    res = ctx.run_sync()
    assert isinstance(res.error, StoreError) and "'fit'" in str(res.error) and "the disk says no" in str(res.error)
    probe = SqliteStore(db, "r1")
    assert "fitted" not in probe.get() and probe.get()["loaded"] is True  # the state of "load" only
    assert [r[1] for r in probe.load_history()] == ["load"]
    assert "model" not in probe.load_artifacts() and "fit/fit" not in probe.load_artifacts()
    assert "frame" in probe.load_artifacts()
    registry.close()
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER no_model")
    con.commit()
    con.close()
    again_registry = PipelineRegistry()
    again = defs.factory(db, again_registry).resume_sync("r1").unwrap()
    assert again.position == "fit"
    assert again.run_sync().unwrap().status == "completed" and again.state["rows"] == 1000
    again_registry.close()


def test_unsaved_artifacts_are_named_in_a_warning_once_and_in_the_run_record(tmp_path, caplog):
    import threading

    from pipenb import Pause, Pipeline, Stage, Step

    def put(state, ctx):
        ctx.artifacts.put("lock", threading.Lock())
        ctx.artifacts.put("scratch", 1, durable=False)
        return {"a": 1}

    pipe = Pipeline(
        "unsaved",
        stages=[
            Stage("a", steps=[Step("a", put)]),
            Stage("b", steps=[Step("b", lambda s: {"b": 1})], router=lambda s: Pause("c", timeout=0)),
            Stage("c", steps=[Step("c", lambda s: {"c": 1})]),
        ],
    )
    registry = PipelineRegistry()
    factory = PipelineFactory(pipe, store_factory=SqliteStore.factory(tmp_path / "runs.sqlite"), registry=registry)
    ctx = factory.prepare_sync(run_id="r1").unwrap()
    with caplog.at_level(logging.WARNING):
        assert ctx.run_sync().unwrap().status == "paused"
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    # The commit that skipped them says so once (not at every later stage); the pause says it again.
    commits = [m for m in warned if m.startswith("run r1: artifact")]
    assert len([m for m in commits if "artifact 'lock'" in m and "cannot be pickled" in m]) == 1, warned
    assert len([m for m in commits if "artifact 'scratch'" in m and "durable=False" in m]) == 1, warned
    assert any(m.startswith("registry: run r1") and "'lock'" in m for m in warned), warned
    # timeout=0 would release the run at once, but it holds the only copy of those two: it stays live.
    [rec] = registry.runs()
    assert rec.live and "'lock'" in rec.note and "'scratch'" in rec.note, rec
    assert registry.get_live_context("r1") is ctx and ctx.artifacts["scratch"] == 1
    registry.close()


def test_synchronous_choice_is_what_the_connection_does(tmp_path):
    assert SqliteStore.factory(tmp_path / "a.sqlite").synchronous == "normal"
    full = SqliteStore.factory(tmp_path / "b.sqlite", synchronous="full")
    assert full.synchronous == "full"  # read back from SQLite's PRAGMA synchronous on the store's connection
    full.close()
    with pytest.raises(ValueError, match=r"synchronous.*'fsync'"):
        SqliteStore.factory(tmp_path / "c.sqlite", synchronous="fsync")
    assert not (tmp_path / "c.sqlite").exists()  # refused before anything was made


def test_a_file_of_a_newer_schema_is_refused_naming_the_path_and_both_versions(tmp_path):
    db = tmp_path / "newer.sqlite"
    SqliteStore.factory(db).close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError) as info:
        SqliteStore.factory(db)("r1")
    message = str(info.value)
    assert str(db) in message and f"schema version {SCHEMA_VERSION + 1}" in message
    assert f"up to {SCHEMA_VERSION}" in message


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 command-line tool is not installed")
def test_the_file_reads_with_the_plain_sqlite3_tool(tmp_path, defs):
    db = tmp_path / "runs.sqlite"
    registry = PipelineRegistry()
    assert defs.factory(db, registry).prepare_sync(run_id="r1").unwrap().run_sync().unwrap().status == "completed"
    registry.close()
    out = subprocess.run(
        [
            "sqlite3",
            str(db),
            "PRAGMA user_version;",
            "SELECT key, seq, note IS NOT NULL FROM pipenb_artifacts WHERE run_id = 'r1' ORDER BY version;",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == str(SCHEMA_VERSION)
    assert "frame|0|0" in lines and "lock|0|1" in lines and "scratch|0|1" in lines and "model|1|0" in lines, lines


def test_an_artifact_put_while_paused_is_written_when_the_registry_lets_the_run_go(tmp_path):
    from pipenb import Pause, Pipeline, Stage, Step

    pipe = Pipeline(
        "paused-put",
        stages=[
            Stage("a", steps=[Step("a", lambda s: {"a": 1})], router=lambda s: None if s.get("go") else Pause("a")),
            Stage("b", steps=[Step("b", lambda s, ctx: {"w": ctx.artifacts["weights"]})]),
        ],
    )
    db = tmp_path / "runs.sqlite"
    registry = PipelineRegistry(default_timeout=300)
    ctx = (
        PipelineFactory(pipe, store_factory=SqliteStore.factory(db), registry=registry)
        .prepare_sync(run_id="r1")
        .unwrap()
    )
    assert ctx.run_sync().unwrap().status == "paused"
    ctx.artifacts.put("weights", [0.4, 1.7])  # from a notebook cell, between stages
    assert registry.expire("r1")
    assert SqliteStore(db, "r1").load_artifacts()["weights"] == [0.4, 1.7]
    registry.close()
    fresh = PipelineRegistry()
    again = PipelineFactory(pipe, store_factory=SqliteStore.factory(db), registry=fresh).resume_sync("r1").unwrap()
    again.update_state({"go": True})
    assert again.run_sync().unwrap().status == "completed" and again.state["w"] == [0.4, 1.7]
    fresh.close()


def test_a_bundle_in_the_checkpoint_of_an_older_file_still_comes_back(tmp_path, defs):
    from pipenb import PipelineCheckpoint, write_checkpoint
    from pipenb.core.checkpoints import now_iso

    db = tmp_path / "runs.sqlite"
    sf = SqliteStore.factory(db)
    store = sf("old")  # as a pipenb of schema 4 left a paused run: its artifacts only in the checkpoint's bundle
    store.set({"loaded": True})
    bundle = {"version": 1, "artifacts": {"frame": defs.frame()}}
    write_checkpoint(store, PipelineCheckpoint("old", defs.PIPE.id, ("fit",), "fit", "fit", now_iso(), bundle))
    sf.close()
    registry = PipelineRegistry()
    ctx = defs.factory(db, registry).resume_sync("old").unwrap()
    assert ctx.run_sync().unwrap().status == "completed" and ctx.state["rows"] == 1000
    registry.close()


def test_clearing_a_run_frees_its_large_values_unless_a_fork_still_refers_to_them(tmp_path, defs):
    db = tmp_path / "runs.sqlite"
    registry = PipelineRegistry()
    factory = defs.factory(db, registry)
    assert factory.prepare_sync(run_id="r1").unwrap().run_sync().unwrap().status == "completed"
    factory.fork_sync("r1", at="report", new_run_id="f1").unwrap()
    registry.close()

    def blobs() -> int:
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT count(*) FROM pipenb_blobs").fetchone()[0]
        finally:
            con.close()

    assert blobs() == 1  # the frame, once for both runs
    SqliteStore(db, "r1").clear()
    assert blobs() == 1 and SqliteStore(db, "f1").load_artifacts()["frame"].equals(defs.frame())
    SqliteStore(db, "f1").clear()
    assert blobs() == 0 and SqliteStore(db, "f1").load_artifacts() == {}


def test_an_artifact_put_from_a_cell_between_stages_belongs_before_the_next_stage(tmp_path, defs):
    from pipenb import run_sync

    db = tmp_path / "runs.sqlite"
    registry = PipelineRegistry()
    factory = defs.factory(db, registry)
    ctx = factory.prepare_sync(run_id="r2").unwrap()
    assert run_sync(ctx.step()).unwrap().status == "paused"  # "load" ran; "fit" is next
    ctx.artifacts.put("note", "from a cell")
    assert ctx.run_sync().unwrap().status == "completed"  # "fit" commits the note with its own stage
    here = defs.seen(factory.fork_sync("r2", at="fit", new_run_id="here").unwrap())
    registry.close()
    out = role(tmp_path, "fork", db, "fit", "there", "r2")
    assert out.returncode == 0, out.stderr
    there = json.loads(out.stdout)["seen"]
    assert there["note"] == repr("from a cell") and "model" not in there
    assert sorted(there) == sorted(here)

"""SqliteStore under faults: unpicklable values, a vanished file, corrupt rows, bad paths, tampered rows."""

import ast
import os
import shutil
import sqlite3
import threading

import pytest

from pipenb import (PIPELINE_DATA_KEY, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step,
                    StoreError)
from pipenb.stores import SqliteStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def raw(db):
    return sqlite3.connect(str(db), isolation_level=None)


# -- 1. a commit that fails outside SQLite is rolled back in memory ---------------------------------

def test_unpicklable_value_is_a_store_error_and_nothing_is_kept(tmp_path):
    factory = SqliteStore.factory(tmp_path / "runs.sqlite")
    s = factory("r1")
    s.set({"a": 1})
    with pytest.raises(StoreError) as info:
        s.set({"a": 2, "model": threading.Lock()})
    assert "run r1: key 'model' holds a _thread.lock that cannot be pickled" in str(info.value)
    assert s.get() == {"a": 1}
    s.set({"b": 2})  # the store still works, and the failed patch does not ride along
    assert s.get() == {"a": 1, "b": 2}
    factory.close()
    assert SqliteStore(tmp_path / "runs.sqlite", "r1").get() == {"a": 1, "b": 2}


def test_failed_flush_rolls_back_the_whole_transaction_and_notifies_nobody(tmp_path):
    factory = SqliteStore.factory(tmp_path / "runs.sqlite")
    s = factory("r1")
    s.set({"a": 1})
    seen = []
    s.subscribe(seen.append)
    with pytest.raises(StoreError, match=r"run r1: key 'cfg' holds a function .*cfg\['inner'\]\[1\]"):
        with s.transaction():
            s.set({"a": 2})
            with s.transaction():
                s.set({"cfg": {"inner": [1, lambda: 1]}})
    assert s.get() == {"a": 1} and seen == []
    with s.transaction():
        s.set({"a": 3})
    assert s.get() == {"a": 3} and len(seen) == 1
    factory.close()
    assert SqliteStore(tmp_path / "runs.sqlite", "r1").get() == {"a": 3}


def test_non_str_top_level_key_is_refused_nested_ones_round_trip(tmp_path):
    factory = SqliteStore.factory(tmp_path / "runs.sqlite")
    s = factory("r1")
    with pytest.raises(StoreError, match=r"run r1: key 5 is an int; .*str"):
        s.set({"ok": 1, 5: "five"})
    assert s.get() == {}
    with pytest.raises(StoreError, match=r"key \(1, 2\) is a tuple"):
        with s.transaction():
            s.set({"ok": 1})
            s.set({(1, 2): "pair"})
    assert s.get() == {}
    s.set({"m": {5: "five"}})
    factory.close()
    assert SqliteStore(tmp_path / "runs.sqlite", "r1").get() == {"m": {5: "five"}}


BROKEN = {"on": True}


def bump(state):
    out = {"count": state["count"] + 1}
    if BROKEN["on"]:
        out["bad"] = lambda: 1
    return out


def counting_pipeline():
    return Pipeline("count", stages=[
        Stage("one", steps=[Step("inc", lambda s: {"count": s["count"] + 1})]),
        Stage("two", steps=[Step("bump", bump)]),
        Stage("three", steps=[Step("done", lambda s: {"done": True})]),
    ])


@pytest.mark.parametrize("fresh_factory", [False, True], ids=["same-factory", "new-factory"])
def test_engine_unpicklable_patch_fails_and_resume_counts_once(tmp_path, monkeypatch, fresh_factory):
    monkeypatch.setitem(BROKEN, "on", True)
    db = str(tmp_path / "runs.sqlite")
    factory = PipelineFactory(counting_pipeline(), store_factory=SqliteStore.factory(db),
                              registry=PipelineRegistry(default_timeout=60))
    ctx = factory.prepare_sync(initial_state={"count": 0}).unwrap()
    res = ctx.run_sync()
    assert res.is_err and isinstance(res.error, StoreError), res
    msg = str(res.error)
    assert ctx.run_id in msg and "'bad'" in msg and "function" in msg
    assert ctx.status == "failed"
    assert ctx.state == {"count": 1}  # the last committed stage, not the failed one
    on_disk = SqliteStore(db, ctx.run_id).get()
    assert on_disk["count"] == 1 and "bad" not in on_disk
    assert on_disk[PIPELINE_DATA_KEY]["checkpoint"].resume_at == ("two",)

    monkeypatch.setitem(BROKEN, "on", False)
    if fresh_factory:
        factory.store_factory.close()
        factory = PipelineFactory(counting_pipeline(), store_factory=SqliteStore.factory(db),
                                  registry=PipelineRegistry(default_timeout=60))
    res = factory.resume_sync(ctx.run_id).unwrap().run_sync().unwrap()
    assert res.status == "completed" and res.state == {"count": 2, "done": True}


# -- 2. the file vanishes while the store is open ------------------------------------------------

def test_removed_directory_makes_commits_fail_naming_the_path(tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    db = str(d / "runs.sqlite")
    factory = SqliteStore.factory(db)
    s = factory("r1")
    s.set({"a": 1})
    shutil.rmtree(d)
    with pytest.raises(StoreError) as info:
        s.set({"a": 2})
    assert db in str(info.value) and "r1" in str(info.value)
    assert s.get() == {"a": 1}
    with pytest.raises(StoreError, match="runs.sqlite"):
        with s.transaction():
            s.set({"b": 1})
    assert s.get() == {"a": 1}
    with pytest.raises(StoreError, match="runs.sqlite"):
        factory("r2")  # opening another run of that file
    factory.close()


def test_replaced_file_makes_commits_fail(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    s.set({"a": 1})
    for p in tmp_path.iterdir():
        p.unlink()
    other = raw(db)
    other.execute("CREATE TABLE t (x)")
    other.close()
    with pytest.raises(StoreError, match=str(db)):
        s.set({"a": 2})
    assert s.get() == {"a": 1}
    factory.close()


def test_engine_commit_after_directory_removal_is_a_store_error(tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    db = str(d / "runs.sqlite")
    p = Pipeline("gone", stages=[
        Stage("a", steps=[Step("x", lambda s: {"a": 1})]),
        Stage("b", steps=[Step("y", lambda s: shutil.rmtree(d) or {"b": 1})]),
    ])
    f = PipelineFactory(p, store_factory=SqliteStore.factory(db), registry=PipelineRegistry(default_timeout=60))
    ctx = f.prepare_sync().unwrap()
    res = ctx.run_sync()
    assert res.is_err and isinstance(res.error, StoreError) and db in str(res.error)
    assert ctx.state == {"a": 1}


# -- 6. no reaching into another object's private attributes --------------------------------------

def test_sqlite_module_touches_only_its_own_private_attributes():
    tree = ast.parse(open(os.path.join(ROOT, "pipenb", "stores", "sqlite.py")).read())
    reaches = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert reaches == []


def test_nested_transactions_keep_their_semantics(tmp_path):
    factory = SqliteStore.factory(tmp_path / "runs.sqlite")
    s = factory("r1")
    seen = []
    s.subscribe(lambda state: seen.append(dict(state)))
    with s.transaction():
        s.set({"a": 1})
        with pytest.raises(RuntimeError):
            with s.transaction():
                s.set({"b": 1})
                raise RuntimeError("inner")
        with s.transaction():
            s.set({"c": 1})
        assert seen == []
    assert seen == [{"a": 1, "c": 1}]
    factory.close()
    assert SqliteStore(tmp_path / "runs.sqlite", "r1").get() == {"a": 1, "c": 1}

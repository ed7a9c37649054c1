"""SqliteStore under faults: unpicklable values, a vanished file, corrupt rows, bad paths, tampered rows."""

import ast
import os
import pickle
import shutil
import sqlite3
import threading
import zlib

import pytest

from pipenb import (PIPELINE_DATA_KEY, Pause, Pipeline, PipelineFactory, PipelineRegistry, ResumeError, Stage, Step,
                    StoreError)
from pipenb.stores import SqliteStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


# -- 3. checksums and the schema version -----------------------------------------------------------

def stored(db, run_id):
    factory = SqliteStore.factory(db)
    return factory, factory(run_id)


def test_corrupt_blob_is_a_store_error_naming_run_and_key(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory, s = stored(db, "r1")
    s.set({"blob": os.urandom(64 << 10), "small": [1, 2, 3], "other": "fine"})
    factory.close()
    con = raw(db)
    con.execute("UPDATE pipenb_state SET value = substr(value, 1, 30000) || x'deadbeef' || substr(value, 30005) "
                "WHERE run_id = 'r1' AND key = 'blob'")
    con.close()
    with pytest.raises(StoreError) as info:
        SqliteStore(db, "r1")
    msg = str(info.value)
    assert "r1" in msg and "'blob'" in msg and "checksum" in msg and str(db) in msg


def test_corrupt_pickled_value_is_a_store_error_naming_run_and_key(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory, s = stored(db, "r1")
    s.set({"small": list(range(100))})
    factory.close()
    con = raw(db)
    con.execute("UPDATE pipenb_state SET value = substr(value, 1, 20) || x'ff' || substr(value, 22) "
                "WHERE key = 'small'")
    con.close()
    with pytest.raises(StoreError, match=r"run r1.*'small'.*checksum"):
        SqliteStore(db, "r1")


def test_bytes_flipped_in_the_file_are_caught(tmp_path):
    db = tmp_path / "runs.sqlite"
    blob = os.urandom(64 << 10)
    factory, s = stored(db, "r1")
    s.set({"blob": blob})
    factory.close()  # the last connection checkpoints the WAL into the file
    data = bytearray(db.read_bytes())
    for start in range(30000, 40000, 1000):
        pos = data.find(blob[start:start + 32])
        if pos >= 0:
            break
    assert pos >= 0
    data[pos + 10] ^= 0xFF
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"run r1.*'blob'.*checksum"):
        SqliteStore(db, "r1")


OLD_SCHEMA = """
CREATE TABLE pipenb_state (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, kind INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID
"""


def test_old_schema_file_opens_and_is_migrated(tmp_path):
    db = tmp_path / "old.sqlite"
    con = raw(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(OLD_SCHEMA)
    con.execute("INSERT INTO pipenb_state VALUES ('r1', 'cfg', ?, 0)", (pickle.dumps({"lr": 0.1}),))
    con.execute("INSERT INTO pipenb_state VALUES ('r1', 'raw', ?, 1)", (b"\x00" * 100,))
    con.close()
    factory, s = stored(db, "r1")
    assert s.get() == {"cfg": {"lr": 0.1}, "raw": b"\x00" * 100}
    s.set({"new": 1})
    factory.close()
    con = raw(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] >= 1
    crcs = dict(con.execute("SELECT key, crc FROM pipenb_state"))
    assert crcs["cfg"] is None and crcs["new"] == zlib.crc32(pickle.dumps(1, protocol=pickle.HIGHEST_PROTOCOL))
    con.close()
    assert SqliteStore(db, "r1").get() == {"cfg": {"lr": 0.1}, "raw": b"\x00" * 100, "new": 1}


def test_file_from_a_newer_pipenb_is_refused(tmp_path):
    db = tmp_path / "new.sqlite"
    factory, s = stored(db, "r1")
    s.set({"a": 1})
    factory.close()
    con = raw(db)
    con.execute("PRAGMA user_version = 999")
    con.close()
    with pytest.raises(StoreError, match="written by a newer pipenb") as info:
        SqliteStore(db, "r1")
    assert str(db) in str(info.value)
    res = PipelineFactory(counting_pipeline(), store_factory=SqliteStore.factory(db), registry=None).resume_sync("r1")
    assert isinstance(res.error, StoreError) and "newer pipenb" in str(res.error)


def test_a_10_mib_value_comes_back_exactly_in_a_new_factory(tmp_path):
    """A big value round-trips byte for byte through the file (its load time is measured in bench/)."""
    db = tmp_path / "big.sqlite"
    factory, s = stored(db, "r1")
    big = os.urandom(10 << 20)
    s.set({"big": big, "n": 1})
    factory.close()
    for _ in range(2):  # each new factory reads the file afresh
        f = SqliteStore.factory(db)
        state = f("r1").get()
        f.close()
        assert state["big"] == big and state["n"] == 1


# -- 4. bad paths are refused by SqliteStore.factory itself ----------------------------------------

def test_factory_refuses_a_missing_directory(tmp_path):
    path = tmp_path / "nope" / "runs.sqlite"
    with pytest.raises(StoreError) as info:
        SqliteStore.factory(path)
    assert str(path) in str(info.value) and "does not exist" in str(info.value)


def test_factory_refuses_a_file_as_parent_directory(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    path = tmp_path / "file.txt" / "runs.sqlite"
    with pytest.raises(StoreError) as info:
        SqliteStore.factory(path)
    assert str(path) in str(info.value) and "not a directory" in str(info.value)


def test_factory_refuses_a_directory_as_the_file(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        SqliteStore.factory(tmp_path)


def test_factory_refuses_a_directory_it_cannot_write(tmp_path):
    if os.geteuid() == 0:
        path = "/proc/pipenb-test.sqlite"  # root ignores modes; /proc refuses new files even to root
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        path = str(ro / "runs.sqlite")
    with pytest.raises(StoreError) as info:
        SqliteStore.factory(path)
    assert path in str(info.value) and "cannot create" in str(info.value)


def test_not_a_sqlite_file_is_a_store_error_at_first_use(tmp_path):
    db = tmp_path / "hello.sqlite"
    db.write_bytes(b"hello world" * 100)
    factory = SqliteStore.factory(db)
    with pytest.raises(StoreError) as info:
        factory("r1")
    assert str(db) in str(info.value) and "not a SQLite database" in str(info.value)
    with pytest.raises(StoreError, match="not a SQLite database"):
        factory.run_ids()


def test_not_a_sqlite_file_is_refused_at_first_use_naming_the_path(tmp_path):
    # The factory may be built before the file is looked at; its first use says what is wrong.
    db = tmp_path / "hello.sqlite"
    db.write_bytes(b"hello world" * 100)
    res = PipelineFactory(Pipeline("p", steps=[Step("x", lambda s: None)]), store_factory=SqliteStore.factory(db),
                          registry=None).prepare_sync()
    assert isinstance(res.error, StoreError) and "not a SQLite database" in str(res.error) and str(db) in str(res.error)


# -- 5. a tampered engine row ----------------------------------------------------------------------

def paused_run(db):
    p = Pipeline("tamper", stages=[
        Stage("a", steps=[Step("x", lambda s: {"a": 1})], router=lambda s, r: Pause("b")),
        Stage("b", steps=[Step("y", lambda s: {"b": 1})]),
    ])
    f = PipelineFactory(p, store_factory=SqliteStore.factory(db), registry=PipelineRegistry(default_timeout=60))
    ctx = f.prepare_sync().unwrap()
    assert ctx.run_sync().unwrap().status == "paused"
    f.store_factory.close()
    return p, ctx.run_id


@pytest.mark.parametrize("garbage", ["garbage", 42, {"checkpoint": "garbage"}], ids=["str", "int", "bad-cp"])
def test_tampered_pipeline_data_is_a_clear_error_on_resume(tmp_path, garbage):
    db = str(tmp_path / "runs.sqlite")
    p, run_id = paused_run(db)
    blob = pickle.dumps(garbage)
    con = raw(db)
    n = con.execute("UPDATE pipenb_state SET value = ?, kind = 0, crc = ? WHERE run_id = ? AND key = ?",
                    (blob, zlib.crc32(blob), run_id, PIPELINE_DATA_KEY)).rowcount
    con.close()
    assert n == 1
    f = PipelineFactory(p, store_factory=SqliteStore.factory(db), registry=PipelineRegistry(default_timeout=60))
    res = f.resume_sync(run_id)
    assert res.is_err and isinstance(res.error, (StoreError, ResumeError)), res
    msg = str(res.error)
    assert run_id in msg and PIPELINE_DATA_KEY in msg and "outside pipenb" in msg, msg


# -- 6. no reaching into another object's private attributes --------------------------------------

def test_sqlite_module_touches_only_its_own_private_attributes():
    tree = ast.parse(open(os.path.join(ROOT, "pipenb", "stores", "sqlite", "store.py")).read())
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

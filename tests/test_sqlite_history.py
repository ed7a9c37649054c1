"""SqliteStore history rows: written in the stage's own SQLite transaction, kept or lost with its state."""

import os
import pickle
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import zlib

import pytest

from pipenb import StoreError
from pipenb.core.checkpoints import PipelineCheckpoint
from pipenb.core.sentinel import DELETE, END
from pipenb.core.state import FrozenDict
from pipenb.core.store import InMemoryStore, StoreBase
from pipenb.stores import SqliteStore
from pipenb.stores.sqlite_file import SCHEMA_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def raw(db):
    return sqlite3.connect(str(db), isolation_level=None)


def row(seq, address="a", *, patches=({"x": 1},), decision=None):
    return (seq, f"{address}", f"stage{seq}", f"label {seq}", patches, decision, 1000.0 + seq, 0.5)


def test_store_base_declares_no_history_by_default():
    store = InMemoryStore()
    assert StoreBase.keeps_history is False and store.keeps_history is False
    assert store.load_history() == []
    with pytest.raises(NotImplementedError, match="InMemoryStore"):
        store.append_history(row(0))
    assert SqliteStore.keeps_history is True


def test_row_and_state_of_one_transaction_land_together(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    initial = (-1, "", None, "initial", (FrozenDict({"x": 0}),), None, 999.0, 0.0)
    s.append_history(initial)  # outside a transaction: its own small transaction
    with s.transaction():
        s.set({"x": 1})
        s.append_history(row(0, patches=({"x": 1, "gone": DELETE},), decision=END))
        assert s.load_history()[-1][0] == 0  # the open transaction reads its own rows
        assert raw(db).execute("SELECT count(*) FROM pipenb_history").fetchone()[0] == 1  # not yet on disk
    assert raw(db).execute("SELECT count(*) FROM pipenb_history").fetchone()[0] == 2
    history = s.load_history()
    assert history == [initial, row(0, patches=({"x": 1, "gone": DELETE},), decision=END)]
    assert history[1][4][0]["gone"] is DELETE and history[1][5] is END
    factory.close()
    s2 = SqliteStore(db, "r1")
    assert s2.get() == {"x": 1} and s2.load_history() == history
    assert SqliteStore(db, "other").load_history() == []


def test_exception_in_the_transaction_keeps_neither_state_nor_row(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    with s.transaction():
        s.set({"x": 1})
        s.append_history(row(0))
    with pytest.raises(RuntimeError):
        with s.transaction():
            s.set({"x": 2})
            s.append_history(row(1))
            raise RuntimeError("stage failed")
    assert s.get() == {"x": 1} and s.load_history() == [row(0)]
    with s.transaction():  # a nested failure drops only the inner rows
        s.append_history(row(1))
        with pytest.raises(RuntimeError):
            with s.transaction():
                s.append_history(row(2))
                raise RuntimeError("inner")
    assert [r[0] for r in s.load_history()] == [0, 1]
    factory.close()
    assert [r[0] for r in SqliteStore(db, "r1").load_history()] == [0, 1]


def test_unpicklable_state_value_keeps_neither_state_nor_row(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    s.set({"x": 1})
    with pytest.raises(StoreError, match="key 'lock'"):
        with s.transaction():
            s.set({"x": 2, "lock": threading.Lock()})
            s.append_history(row(0))
    assert s.get() == {"x": 1} and s.load_history() == []
    with s.transaction():  # nothing of the failed commit rides along with the next one
        s.set({"y": 1})
        s.append_history(row(1))
    assert s.load_history() == [row(1)]
    factory.close()
    s2 = SqliteStore(db, "r1")
    assert s2.get() == {"x": 1, "y": 1} and s2.load_history() == [row(1)]


def test_unpicklable_history_row_is_a_store_error_naming_run_and_seq(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    s.set({"x": 1})
    seen = []
    s.subscribe(seen.append)
    with pytest.raises(StoreError, match=r"run r1: history row 7 holds a _thread.lock \(at row\[4\]\[0\]\['m'\]\)"):
        with s.transaction():
            s.set({"x": 2})
            s.append_history(row(7, patches=({"m": threading.Lock()},)))
    assert s.get() == {"x": 1} and s.load_history() == [] and seen == []
    with pytest.raises(StoreError, match="history row 8"):
        s.append_history(row(8, patches=(lambda: 1,)))  # outside a transaction
    assert s.load_history() == []
    factory.close()
    s2 = SqliteStore(db, "r1")
    assert s2.get() == {"x": 1} and s2.load_history() == []


def test_malformed_row_is_refused():
    s = SqliteStore(":memory:", "r1")
    for bad in ([0, "a"], (), ("0", "a"), (True, "a")):
        with pytest.raises(StoreError, match="history row must be a tuple"):
            s.append_history(bad)


def test_rows_come_back_ordered_by_seq_and_a_seq_is_replaced(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    for seq in (3, -1, 10, 0, 2):
        s.append_history(row(seq))
    with s.transaction():
        s.append_history(row(2, "replaced"))
    s.append_history(row(1))
    factory.close()
    history = SqliteStore(db, "r1").load_history()
    assert [r[0] for r in history] == [-1, 0, 1, 2, 3, 10]
    assert history[3][1] == "replaced"


def test_values_of_the_engine_round_trip(tmp_path):
    db = tmp_path / "runs.sqlite"
    cp = PipelineCheckpoint("r1", "p", (1, 2), "s1", "fit", "approval")
    patches = (FrozenDict({"a": FrozenDict({"b": [1, 2]}), "d": DELETE}), {"cp": cp}, b"\x00" * 10)
    s = SqliteStore(db, "r1")
    s.append_history(row(0, patches=patches, decision=END))
    got = SqliteStore(db, "r1").load_history()[0]
    assert got == row(0, patches=patches, decision=END) and got[4][1]["cp"] == cp
    assert got[4][0]["d"] is DELETE and got[5] is END and isinstance(got[4][0], FrozenDict)


def test_rows_are_read_by_a_second_process(tmp_path):
    db = tmp_path / "runs.sqlite"
    s = SqliteStore(db, "r1")
    for seq in range(-1, 5):
        with s.transaction():
            s.set({"n": seq})
            s.append_history(row(seq, f"addr{seq}"))
    code = textwrap.dedent("""
        import sys
        from pipenb.stores import SqliteStore
        h = SqliteStore(sys.argv[1], "r1").load_history()
        print(len(h), h[-1][1])
    """)
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["6", "addr4"]


def test_corrupt_history_row_is_a_store_error_naming_run_and_seq(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    for seq in range(3):
        s.append_history(row(seq, "x" * 200))
    factory.close()
    con = raw(db)
    con.execute("UPDATE pipenb_history SET row = substr(row, 1, 40) || x'ff' || substr(row, 42) WHERE seq = 1")
    con.close()
    s2 = SqliteStore(db, "r1")  # the state loads: history is read only when asked for
    with pytest.raises(StoreError) as info:
        s2.load_history()
    msg = str(info.value)
    assert "run r1" in msg and "history row 1" in msg and "checksum" in msg and str(db) in msg


V1_SCHEMA = """
CREATE TABLE pipenb_state (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    kind   INTEGER NOT NULL DEFAULT 0,
    crc    INTEGER,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID
"""


def test_schema_1_file_opens_and_gains_the_history_table(tmp_path):
    db = tmp_path / "v1.sqlite"
    con = raw(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(V1_SCHEMA)
    con.execute("PRAGMA user_version = 1")
    blob = pickle.dumps({"lr": 0.1}, protocol=pickle.HIGHEST_PROTOCOL)
    con.execute("INSERT INTO pipenb_state VALUES ('r1', 'cfg', ?, 0, ?)", (blob, zlib.crc32(blob)))
    con.close()
    factory = SqliteStore.factory(db)
    s = factory("r1")
    assert s.get() == {"cfg": {"lr": 0.1}} and s.load_history() == []
    with s.transaction():
        s.set({"x": 1})
        s.append_history(row(0))
    factory.close()
    con = raw(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
    assert con.execute("SELECT count(*) FROM pipenb_history").fetchone()[0] == 1
    con.close()
    s2 = SqliteStore(db, "r1")
    assert s2.get() == {"cfg": {"lr": 0.1}, "x": 1} and s2.load_history() == [row(0)]


def test_schema_0_file_gains_checksums_and_the_history_table(tmp_path):
    db = tmp_path / "v0.sqlite"
    con = raw(db)
    con.execute(V1_SCHEMA.replace("crc    INTEGER,", ""))
    con.execute("INSERT INTO pipenb_state VALUES ('r1', 'cfg', ?, 0)", (pickle.dumps(1),))
    con.close()
    s = SqliteStore(db, "r1")
    s.append_history(row(0))
    assert s.get() == {"cfg": 1} and SqliteStore(db, "r1").load_history() == [row(0)]


def test_clear_deletes_state_and_history_of_this_run_only(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    a, b = factory("a"), factory("b")
    for s in (a, b):
        with s.transaction():
            s.set({"x": 1, "blob": b"123"})
            s.append_history(row(0))
    seen = []
    a.subscribe(seen.append)
    with a.transaction():
        with pytest.raises(StoreError, match="inside a transaction"):
            a.clear()
    a.clear()
    assert a.get() == {} and a.load_history() == [] and seen == [{}]
    assert factory.run_ids() == ["b"]
    a.set({"y": 2})  # the store goes on working
    factory.close()
    assert SqliteStore(db, "a").get() == {"y": 2} and SqliteStore(db, "a").load_history() == []
    assert SqliteStore(db, "b").get() == {"x": 1, "blob": b"123"} and SqliteStore(db, "b").load_history() == [row(0)]


def test_a_run_with_only_history_is_listed(tmp_path):
    factory = SqliteStore.factory(tmp_path / "runs.sqlite")
    factory("h").append_history(row(-1))
    factory("s").set({"x": 1})
    assert factory.run_ids() == ["h", "s"]
    factory.close()


def test_cost_of_a_history_row_with_a_stage_commit(tmp_path):
    """Measure only: a stage-like commit (1 small key + 1 history row) against the same set alone."""
    n = 1000

    def commits(path, with_history):
        s = SqliteStore(path, "r1")
        patches = (FrozenDict({"n": 0}),)
        t0 = time.perf_counter()
        for i in range(n):
            with s.transaction():
                s.set({"n": i})
                if with_history:
                    s.append_history((i, f"run/{i}", f"stage{i % 7}", "fit", patches, None, t0, 0.001))
        return time.perf_counter() - t0

    best = {}
    for rnd in range(3):  # interleaved, best of 3, each on a fresh file
        for with_history in (False, True):
            took = commits(tmp_path / f"cost-{rnd}-{with_history}.sqlite", with_history)
            best[with_history] = min(best.get(with_history, took), took)
    plain, hist = best[False] / n * 1e6, best[True] / n * 1e6
    print(f"\nset alone: {plain:.1f} µs/commit; set + history row: {hist:.1f} µs/commit; ratio {hist / plain:.2f}x")

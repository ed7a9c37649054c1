"""SqliteStore history rows: written in the stage's own SQLite transaction, kept or lost with its state."""

import os
import pickle
import sqlite3
import subprocess
import sys
import struct
import textwrap
import threading
import zlib

import pytest

from pipenb import StoreError
from pipenb.core.checkpoints import PipelineCheckpoint
from pipenb.core.sentinel import DELETE, END
from pipenb.core.state import FrozenDict
from pipenb.core.store import InMemoryStore, StoreBase
from pipenb.stores import SqliteStore
from pipenb.stores.sqlite.file import JOURNAL_KEY, JOURNAL_MAGIC, SCHEMA_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def raw(db):
    return sqlite3.connect(str(db), isolation_level=None)


def committed_seqs(db, run_id="r1"):
    """The seqs of the run's history rows committed to the file, read with plain sqlite3: those of
    ``pipenb_history`` and those still in the run's history journal (a row of ``pipenb_state``)."""
    con = raw(db)
    try:
        seqs = {r[0] for r in con.execute("SELECT seq FROM pipenb_history WHERE run_id = ?", (run_id,))}
        for (value,) in con.execute("SELECT value FROM pipenb_state WHERE run_id = ? AND key = ?", (run_id, JOURNAL_KEY)):
            at = len(JOURNAL_MAGIC)
            while at < len(value):  # per row: seq (int64), crc32, length (uint32), then the pickled row
                seq, _, length = struct.unpack_from("<qII", value, at)
                seqs.add(seq)
                at += 16 + length
    finally:
        con.close()
    return sorted(seqs)


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
        assert len(committed_seqs(db)) == 1  # not yet on disk
    assert len(committed_seqs(db)) == 2
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


# -- the history journal (schema 4): recent rows in a row of the run's own state page --------------------------------


def table_seqs(db, run_id="r1"):
    con = raw(db)
    try:
        return [r[0] for r in con.execute("SELECT seq FROM pipenb_history WHERE run_id = ? ORDER BY seq", (run_id,))]
    finally:
        con.close()


def stage_row(i):
    return (i, f"run/s{i}", f"s{i}", "fit", (FrozenDict({"n": i, f"k{i % 7}": "v" * (i % 50)}),), None, 1e9 + i, 0.25)


def test_1000_commits_reopened_in_a_new_process_give_1000_rows_in_order(tmp_path):
    db = tmp_path / "runs.sqlite"
    s = SqliteStore(db, "r1")
    for i in range(1000):
        with s.transaction():
            s.set({"n": i})
            s.append_history(stage_row(i))
    assert 0 < len(table_seqs(db)) < 1000 and len(committed_seqs(db)) == 1000  # the last rows wait in the journal
    code = textwrap.dedent("""
        import pickle, sys
        from pipenb.stores import SqliteStore
        s = SqliteStore(sys.argv[1], "r1")
        sys.stdout.buffer.write(pickle.dumps((dict(s.get()), s.load_history())))
    """)
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr.decode()
    state, history = pickle.loads(out.stdout)
    assert state == {"n": 999}  # the journal is no state key
    assert len(history) == 1000 and [r[0] for r in history] == list(range(1000))
    assert history == [stage_row(i) for i in range(1000)]


def test_a_crash_between_commits_loses_no_committed_row(tmp_path):
    """No close, no flush of the journal: a second connection sees every committed row, after each commit."""
    db = tmp_path / "runs.sqlite"
    s = SqliteStore(db, "r1")
    for i in range(150):  # across two moves of the journal into the table
        with s.transaction():
            s.set({"n": i})
            s.append_history(stage_row(i))
        if i % 7 == 0 or i in (62, 63, 64, 65, 127, 128):
            other = SqliteStore(db, "r1")  # its own connection, as after a crash
            assert other.get() == {"n": i}
            assert other.load_history() == [stage_row(j) for j in range(i + 1)]
            other._db.close()  # a reader's close writes nothing
    # And a real crash: a process that commits, then dies without closing anything.
    code = textwrap.dedent("""
        import os, sys
        from pipenb.stores import SqliteStore
        from pipenb.core.state import FrozenDict
        s = SqliteStore.factory(sys.argv[1])("r2")
        for i in range(100):
            with s.transaction():
                s.set({"n": i})
                s.append_history((i, "a", "s", "l", (FrozenDict({"n": i}),), None, 0.0, 0.0))
        os._exit(0)
    """)
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    history = SqliteStore(db, "r2").load_history()
    assert [r[0] for r in history] == list(range(100)) and history[-1][4][0] == {"n": 99}
    assert len(table_seqs(db, "r2")) < 100  # some rows were read from the journal
    assert len(table_seqs(db)) < 150


def test_closing_moves_the_journal_into_the_table(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    for i in range(10):
        s.append_history(row(i))
    assert table_seqs(db) == [] and committed_seqs(db) == list(range(10))
    factory.close()
    assert table_seqs(db) == list(range(10)) == committed_seqs(db)
    con = raw(db)
    assert con.execute("SELECT count(*) FROM pipenb_state WHERE key = ?", (JOURNAL_KEY,)).fetchone()[0] == 0
    con.close()
    assert SqliteStore(db, "r1").load_history() == [row(i) for i in range(10)]


def test_a_journal_row_replaces_a_table_row_of_the_same_seq(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    for i in range(3):
        s.append_history(row(i))
    factory.close()  # rows 0..2 now in the table
    factory = SqliteStore.factory(db)
    s = factory("r1")
    s.append_history(row(1, "replaced"))
    s.append_history(row(1, "replaced again"))
    assert table_seqs(db) == [0, 1, 2] and committed_seqs(db) == [0, 1, 2]
    expected = [row(0), row(1, "replaced again"), row(2)]
    assert s.load_history() == expected and SqliteStore(db, "r1").load_history() == expected
    factory.close()  # the journal goes into the table in order: the last row of a seq wins
    assert SqliteStore(db, "r1").load_history() == expected


def test_the_journal_key_never_shows_and_user_keys_cannot_take_it(tmp_path):
    db = tmp_path / "runs.sqlite"
    s = SqliteStore(db, "r1")
    s.set({"zzz": 1, "\uffff": 2, "\U0010fffe": 3})  # the keys sorting just before the reserved ones still work
    s.append_history(row(0))
    for key in ("\U0010ffff", JOURNAL_KEY, "\U0010ffffmine"):
        with pytest.raises(StoreError, match="key .* starts with") as info:
            s.set({"ok": 1, key: "x"})
        assert repr(key) in str(info.value) and "Nothing was kept" in str(info.value)
        with pytest.raises(StoreError, match="starts with"):
            with s.transaction():
                s.set({key: 1})
    assert s.get() == {"zzz": 1, "\uffff": 2, "\U0010fffe": 3}
    s2 = SqliteStore(db, "r1")
    assert s2.get() == {"zzz": 1, "\uffff": 2, "\U0010fffe": 3} and s2.load_history() == [row(0)]
    assert SqliteStore.factory(db).run_ids() == ["r1"]


def test_a_damaged_journal_is_a_store_error_naming_the_run(tmp_path):
    db = tmp_path / "runs.sqlite"
    s = SqliteStore(db, "r1")
    for i in range(3):
        s.append_history(row(i, "x" * 100))
    con = raw(db)  # (not closing s: that would move the journal into the table)
    con.execute("UPDATE pipenb_state SET value = substr(value, 1, 60) || x'ff' || substr(value, 62) WHERE key = ?",
                (JOURNAL_KEY,))
    con.close()
    s2 = SqliteStore(db, "r1")  # the state loads: the journal is read only for the history
    with pytest.raises(StoreError) as info:
        s2.load_history()
    msg = str(info.value)
    assert "run r1" in msg and "history journal" in msg and "checksum" in msg and str(db) in msg
    with pytest.raises(StoreError, match="history journal"):  # a commit with a row reads it too, and keeps nothing
        with s2.transaction():
            s2.set({"x": 1})
            s2.append_history(row(3))
    assert s2.get() == {} and SqliteStore(db, "r1").get() == {}


def test_a_failed_commit_leaves_the_journal_in_memory_as_it_was(tmp_path, monkeypatch):
    from pipenb.stores.sqlite import file as sqlite_file

    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    broken = {"at": None}
    real_append = sqlite_file.Database.append_journal

    def append_then_fail(self, run_id, frames, rows):
        out = real_append(self, run_id, frames, rows)  # the journal row is written, then the transaction fails
        if rows[0][0] == broken["at"]:
            raise sqlite3.OperationalError("disk I/O error (injected)")
        return out

    monkeypatch.setattr(sqlite_file.Database, "append_journal", append_then_fail)
    for i in range(sqlite_file.JOURNAL_ROWS + 20):
        broken["at"] = i if i % 9 == 4 or i == sqlite_file.JOURNAL_ROWS - 1 else None  # incl. the move to the table
        if broken["at"] is not None:
            before = s._db.journals.get("r1")
            with pytest.raises(StoreError, match="commit for run r1 failed: OperationalError: disk I/O error"):
                with s.transaction():
                    s.set({"n": -i})
                    s.append_history(row(i, "lost"))
            assert s._db.journals.get("r1") is before and s.get().get("n", 0) == max(i - 1, 0)
            broken["at"] = None
        with s.transaction():
            s.set({"n": i})
            s.append_history(row(i))
    expected = [row(i) for i in range(sqlite_file.JOURNAL_ROWS + 20)]
    assert s.load_history() == expected and SqliteStore(db, "r1").load_history() == expected
    factory.close()
    assert SqliteStore(db, "r1").load_history() == expected


def test_two_connections_writing_one_run_lose_no_row(tmp_path):
    """One writer per run is the rule (the lease); still, a journal written by another connection is never
    overwritten with a stale one: the commit notices its crc changed and goes on from the stored journal."""
    db = tmp_path / "runs.sqlite"
    a, b = SqliteStore(db, "r1"), SqliteStore(db, "r1")
    for i in range(100):
        (a if i % 3 else b).append_history(row(i))
    expected = [row(i) for i in range(100)]
    assert a.load_history() == expected and b.load_history() == expected
    a._db.close()
    b._db.close()
    assert SqliteStore(db, "r1").load_history() == expected


def test_a_big_row_goes_to_the_table_at_once_with_the_journal(tmp_path):
    db = tmp_path / "runs.sqlite"
    s = SqliteStore(db, "r1")
    s.append_history(row(0))
    s.append_history(row(1, patches=({"blob": b"\0" * 100_000},)))
    assert table_seqs(db) == [0, 1] and committed_seqs(db) == [0, 1]
    s.append_history(row(2))
    assert table_seqs(db) == [0, 1] and committed_seqs(db) == [0, 1, 2]
    assert SqliteStore(db, "r1").load_history()[1][4][0]["blob"] == b"\0" * 100_000


def test_clear_removes_the_journal(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    for i in range(100):
        s.append_history(row(i))
    s.clear()
    assert committed_seqs(db) == [] and s.load_history() == [] and factory.run_ids() == []
    s.append_history(row(5))  # the journal in memory was emptied too
    assert SqliteStore(db, "r1").load_history() == [row(5)]
    factory.close()
    assert table_seqs(db) == [5]


V3_SCHEMA = V1_SCHEMA + ";" + """
CREATE TABLE pipenb_history (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    row    BLOB NOT NULL,
    crc    INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE pipenb_lease (
    run_id  TEXT PRIMARY KEY,
    epoch   INTEGER NOT NULL,
    token   TEXT NOT NULL,
    pid     INTEGER NOT NULL,
    host    TEXT NOT NULL,
    since   REAL NOT NULL,
    running INTEGER NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 3;
"""


def v3_file(db, extra_key=None):
    con = raw(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(V3_SCHEMA)
    for seq in range(3):
        blob = pickle.dumps(row(seq), protocol=pickle.HIGHEST_PROTOCOL)
        con.execute("INSERT INTO pipenb_history VALUES ('r1', ?, ?, ?)", (seq, blob, zlib.crc32(blob)))
    for key in ("n", extra_key) if extra_key else ("n",):
        blob = pickle.dumps(2)
        con.execute("INSERT INTO pipenb_state VALUES ('r1', ?, ?, 0, ?)", (key, blob, zlib.crc32(blob)))
    con.close()


def test_schema_3_file_opens_its_history_rows_stay_valid(tmp_path):
    db = tmp_path / "v3.sqlite"
    v3_file(db)
    factory = SqliteStore.factory(db)
    s = factory("r1")
    assert s.get() == {"n": 2} and s.load_history() == [row(0), row(1), row(2)]
    with s.transaction():
        s.set({"n": 3})
        s.append_history(row(3))
    s.append_history(row(1, "replaced"))
    expected = [row(0), row(1, "replaced"), row(2), row(3)]
    assert SqliteStore(db, "r1").load_history() == expected
    factory.close()
    con = raw(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    con.close()
    assert SqliteStore(db, "r1").load_history() == expected and table_seqs(db) == [0, 1, 2, 3]


def test_schema_3_file_with_a_reserved_key_is_refused_naming_it(tmp_path):
    db = tmp_path / "v3.sqlite"
    v3_file(db, extra_key="\U0010ffffold")
    with pytest.raises(StoreError) as info:
        SqliteStore(db, "r1")
    assert repr("\U0010ffffold") in str(info.value) and "run r1" in str(info.value)
    con = raw(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 3  # nothing was changed
    con.close()

"""``history_next_seq``: one past the highest stored history seq (0 when none), read by SqliteStore without
unpickling a row, from the table's ``MAX(seq)`` and the journal's row headers."""

import pickle
import sqlite3

import pytest

from pipenb.core.store import InMemoryStore, StoreBase
from pipenb.stores import SqliteStore
from pipenb.stores.sqlite.file import JOURNAL_KEY, JOURNAL_ROWS


def row(seq, address="a"):
    return (seq, address, f"stage{seq}", f"label {seq}", ({"x": seq},), None, 1000.0 + seq, 0.5)


def table_and_journal(db, run_id="r1"):
    con = sqlite3.connect(str(db))
    try:
        table = [r[0] for r in con.execute("SELECT seq FROM pipenb_history WHERE run_id = ? ORDER BY seq", (run_id,))]
        journal = con.execute("SELECT count(*) FROM pipenb_state WHERE run_id = ? AND key = ?",
                              (run_id, JOURNAL_KEY)).fetchone()[0]
    finally:
        con.close()
    return table, journal


def check(store, expected):
    """The store's answer, the default's (through load_history) and a fresh connection's agree."""
    assert store.history_next_seq() == expected
    assert StoreBase.history_next_seq(store) == expected
    assert SqliteStore(store.path, store.run_id).history_next_seq() == expected


class Rows(StoreBase):
    def __init__(self, rows):
        self.rows = rows

    def load_history(self):
        return self.rows


@pytest.mark.parametrize("seqs, expected", [([], 0), ([-1], 0), ([-1, 0], 1), ([-1, 0, 1, 5], 6), ([3], 4)])
def test_the_default_is_one_past_the_highest_seq_and_at_least_0(seqs, expected):
    assert Rows([row(s) for s in seqs]).history_next_seq() == expected


def test_a_store_that_keeps_no_history_gives_0():
    assert InMemoryStore().history_next_seq() == 0


def test_an_empty_run_gives_0(tmp_path):
    s = SqliteStore(tmp_path / "runs.sqlite", "r1")
    check(s, 0)
    s.set({"x": 1})  # state but no history
    check(s, 0)


def test_only_the_initial_row_gives_0(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    s.append_history(row(-1))
    assert table_and_journal(db) == ([], 1)  # in the journal
    check(s, 0)
    factory.close()
    assert table_and_journal(db) == ([-1], 0)  # in the table
    check(SqliteStore(db, "r1"), 0)


def test_journal_rows_only(tmp_path):
    db = tmp_path / "runs.sqlite"
    s = SqliteStore(db, "r1")
    for i in range(-1, 5):
        s.append_history(row(i))
    assert table_and_journal(db) == ([], 1)
    check(s, 5)


def test_after_a_journal_move_and_with_the_table_and_a_journal(tmp_path):
    db = tmp_path / "runs.sqlite"
    s = SqliteStore(db, "r1")
    for i in range(-1, JOURNAL_ROWS - 1):  # the JOURNAL_ROWS-th row moves the journal into the table
        s.append_history(row(i))
    assert table_and_journal(db) == (list(range(-1, JOURNAL_ROWS - 1)), 0)
    check(s, JOURNAL_ROWS - 1)
    s.append_history(row(JOURNAL_ROWS - 1))
    s.append_history(row(JOURNAL_ROWS))
    assert table_and_journal(db)[1] == 1
    check(s, JOURNAL_ROWS + 1)
    s.append_history(row(3, "again"))  # a journal row below the table's highest seq replaces its row
    check(s, JOURNAL_ROWS + 1)


def test_a_journal_written_by_another_connection_is_counted(tmp_path):
    db = tmp_path / "runs.sqlite"
    a, b = SqliteStore(db, "r1"), SqliteStore(db, "r1")
    a.append_history(row(0))
    assert a.history_next_seq() == b.history_next_seq() == 1
    b.append_history(row(1))  # a's journal in memory is now stale: the stored one is read
    assert a.history_next_seq() == b.history_next_seq() == 2


def test_rows_pending_in_a_transaction_count_and_clear_starts_again(tmp_path):
    s = SqliteStore(tmp_path / "runs.sqlite", "r1")
    s.append_history(row(0))
    with s.transaction():
        s.append_history(row(1))
        assert s.history_next_seq() == 2 == StoreBase.history_next_seq(s)
    check(s, 2)
    s.clear()
    check(s, 0)


def test_no_row_is_unpickled(tmp_path, monkeypatch):
    db = tmp_path / "runs.sqlite"
    factory = SqliteStore.factory(db)
    s = factory("r1")
    for i in range(10):
        s.append_history(row(i))
    factory.close()  # rows 0..9 in the table
    s = SqliteStore(db, "r1")
    s.append_history(row(10))  # and one in the journal
    fresh = SqliteStore(db, "r1")

    def refuse(*args, **kwargs):
        raise AssertionError("history_next_seq unpickled a row")

    monkeypatch.setattr(pickle, "loads", refuse)
    assert s.history_next_seq() == fresh.history_next_seq() == 11

"""SPEC 14 ``History.blame`` over random histories: the same answer as reading every record's whole state.

``blame`` carries a key's value from record to record and reads only what
each record's link changed (issue #19: 100,000 records in well under 100 ms).
These tests check it against the plain definition: for each record whose
patch names the key, the key's value in the state before it and after it
(the states rebuilt whole), reported when they differ. Histories mix stage
records and edits, deletes, nested key paths, numpy arrays, records with no
patch, records made on a state the history did not lead to (a rebased or
forked past: the link stays whole), limited histories, histories read back
from a real SQLite file, and real runs forked part-way.
"""

import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipenb import DELETE, PipelineFactory, PipelineRegistry
from pipenb.core.diff import diff_states, same
from pipenb.core.history import History, StageRecord, replay, rows_of
from pipenb.core.state import EMPTY, is_mapping, merge
from pipenb.stores import SqliteStore

from .test_lookback import define

KEYS = ["a", "model", ("model", "coef"), ("model", "kind"), ("a", "x"), "arr", "never", ("never", "x")]
ABSENT = object()
SHARED = np.arange(3)  # one array object written again: no change; an equal fresh array: a change (SPEC 14)


def reference(history, key) -> list[tuple]:
    """``blame`` as its definition reads: every record's whole state before and after it."""
    path = key if isinstance(key, tuple) else (key,)
    out, before = [], history.base
    for r in history:
        patch = r.patch
        if patch is not None and (not is_mapping(patch) or path[0] in patch):
            old, new = at(before, path), at(r.state, path)
            if old is not new and (old is ABSENT or new is ABSENT or not equal(old, new)):
                out.append(
                    (
                        r.seq,
                        "(edit)" if r.is_edit else r.address,
                        None if old is ABSENT else old,
                        None if new is ABSENT else new,
                    )
                )
        before = r.state
    return out


def at(state, path):
    for key in path:
        if not is_mapping(state) or key not in state:
            return ABSENT
        state = state[key]
    return state


def equal(a, b) -> bool:
    return not diff_states(a, b) if is_mapping(a) and is_mapping(b) else same(a, b)


def assert_same_blame(history, key):
    got, want = history.blame(key), reference(history, key)
    assert [(s, a) for s, a, _, _ in got] == [(s, a) for s, a, _, _ in want], key
    for (_, _, old, new), (_, _, old2, new2) in zip(got, want, strict=True):
        assert old is old2 and new is new2, key  # the very values the run's states held


values = st.one_of(
    st.integers(0, 3),
    st.none(),
    st.sampled_from(["x", "y"]),
    st.just(DELETE),
    st.just(SHARED),
    st.builds(lambda: np.arange(3)),
    st.fixed_dictionaries(
        {},
        optional={"coef": st.one_of(st.integers(0, 2), st.just(DELETE)), "kind": st.sampled_from(["linear", "tree"])},
    ),
)
patches = st.dictionaries(st.sampled_from(["a", "b", "model", "arr"]), values, max_size=3)
steps = st.one_of(
    st.tuples(st.just("stage"), st.sampled_from(["load", "check", "train/fit"]), patches),
    st.tuples(st.just("edit"), st.just("load"), patches),
    st.tuples(st.just("nothing"), st.just("check"), st.none()),  # a stage that wrote nothing
    st.tuples(st.just("jump"), st.just("load"), patches),  # the state moved without a record
    st.tuples(st.just("whole"), st.just("check"), patches),  # no base given: the link is kept whole
)


def build(initial, plan, limit):
    history, state, base = History(initial, limit), initial, initial
    for kind, address, patch in plan:
        if kind == "jump":
            state = base = merge(state, patch)
            continue
        new = merge(state, patch) if patch is not None else state
        edit = kind == "edit"
        history.add(
            StageRecord(
                0,
                address + " (edit)" if edit else address,
                None if edit else address,
                address,
                patch,
                None,
                0.0,
                0.0,
                new,
            ),
            None if kind == "whole" else base,
        )
        state = base = new
    return history


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=patches, plan=st.lists(steps, max_size=40), limit=st.sampled_from([None, None, 3, 10]))
def test_blame_is_the_plain_definition_over_random_histories(initial, plan, limit):
    history = build(merge(EMPTY, initial), plan, limit)
    for key in KEYS:
        assert_same_blame(history, key)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=patches, plan=st.lists(steps, min_size=1, max_size=25))
def test_blame_of_a_history_read_back_from_a_sqlite_file(initial, plan):
    history = build(merge(EMPTY, initial), plan, None)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(f"{tmp}/runs.sqlite", "r1")
        for row in rows_of(history):
            store.append_history(tuple(row))
        loaded = replay(SqliteStore(f"{tmp}/runs.sqlite", "r1").load_history(), None)
    assert len(loaded) == len(history)
    for key in KEYS:
        assert_same_blame(loaded, key)
        # Without moves the history did not record, the file's patches are the run's; arrays come back from the
        # file as equal copies, not the object written again, so those are changes there.
        if not any(kind in ("jump", "whole") for kind, _, _ in plan) and "array" not in repr((initial, plan)):
            assert [b[:2] for b in loaded.blame(key)] == [b[:2] for b in history.blame(key)]


def test_blame_of_real_forked_runs_and_a_limited_history():
    registry = PipelineRegistry()
    factory = PipelineFactory(define(loops=4), registry=registry)
    ctx = factory.prepare_sync(initial_state={"n": 0}).unwrap()
    ctx.run_sync().unwrap()
    fork = factory.fork_sync(ctx.run_id, 3).unwrap()  # its past is the source's first 3 records, shared
    fork.update_state({"n": 7, "model": {"coef": DELETE}})  # an edit before it runs on
    fork.run_sync().unwrap()
    short = PipelineFactory(define(loops=4), history=3, registry=registry).prepare_sync().unwrap()
    short.run_sync().unwrap()
    for history in (ctx.history, fork.history, short.history):
        for key in KEYS + ["n"]:
            assert_same_blame(history, key)
    # The edit's link is made on the paused run's state (kept whole); the records after it chain on it again.
    assert fork.history.address_list() == ["load", "check", "load", "check (edit)", "check", "train/fit", "report"]
    assert fork.history.blame("n") == [(0, "load", 0, 1), (2, "load", 1, 2), (3, "(edit)", 2, 7)]
    assert fork.history.blame(("model", "coef")) == [
        (1, "check", None, 10),
        (3, "(edit)", 10, None),
        (4, "check", None, 70),
    ]

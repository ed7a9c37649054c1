"""Issue 18, races 2 and 3: two processes on one SQLite file (SPEC 6, 11). Real processes, real files.

Race 2: two processes creating the same new file at the same moment both
get a working store (one creates it, the other waits for it), and a file
that stays locked is reported as locked, not as a directory problem.

Race 3: after another process took a run over, ``factory.resume`` in the
first never hands back its old live context (whose ``run()`` would be
refused, and whose refusal would send the user back to ``resume``: a loop);
it rebuilds the run from the file, with the other process's changes.
"""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.core.errors import StoreError
from pipenb.core.state import user_view
from pipenb.stores import SqliteStore

from ..conftest import wait_for

PAIRS = 60


def _open_each(paths, go, ready, results) -> None:
    """In a spawned process: for each path, spin until the test says go (both processes start within
    microseconds of each other, which a sleeping barrier does not give), then open the store there."""
    with ready.get_lock():
        ready.value += 1
    for i, path in enumerate(paths):
        while go.value <= i:
            pass
        try:
            SqliteStore.factory(path).close()
            results.put((path, None))
        except Exception as exc:  # reported to the test, which names it
            results.put((path, f"{type(exc).__name__}: {exc}"))


def _burst_writer(paths, turn, started) -> None:
    """In a spawned process: create each new file and keep taking its write lock in short bursts (as a process
    creating the file does: its schema transaction), until the test moves on to the next path."""
    import sqlite3 as sq
    import time as t

    for i, path in enumerate(paths):
        conn = sq.connect(path, isolation_level=None, timeout=5)
        started.value = i + 1
        while turn.value <= i:
            conn.execute("BEGIN IMMEDIATE")
            end = t.perf_counter() + 0.002
            while t.perf_counter() < end:
                pass
            conn.execute("COMMIT")
            t.sleep(0.0005)
        conn.close()


def _stop(procs) -> None:
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join(10)


def _usable(path) -> None:
    """The file is a whole, working store."""
    store = SqliteStore(path, "r")
    store.set({"x": 1})
    assert SqliteStore(path, "r").get() == {"x": 1}


def test_two_processes_creating_the_same_new_file_both_get_a_store(tmp_path):
    """Many pairs of processes each create the same new file at the same moment. No CPU hog here: on two
    cores a hog only keeps the pair from running at the same moment, which is the point of this test."""
    spawn = multiprocessing.get_context("spawn")
    paths = [str(tmp_path / f"new-{i}.sqlite") for i in range(PAIRS)]
    go = spawn.Value("i", 0, lock=False)
    ready = spawn.Value("i", 0)
    results = spawn.Queue()
    procs = [spawn.Process(target=_open_each, args=(paths, go, ready, results), daemon=True) for _ in range(2)]
    for p in procs:
        p.start()
    outcomes = []
    try:
        wait_for(lambda: ready.value == 2, "both processes started", timeout=60)
        for i in range(PAIRS):
            go.value = i + 1
            outcomes += [results.get(timeout=60) for _ in range(2)]
    finally:
        go.value = PAIRS + 1
        _stop(procs)
    failed = [(path, err) for path, err in outcomes if err is not None]
    assert not failed, f"{len(failed)} of {2 * PAIRS} opens failed, e.g. {failed[0]}"
    for path in paths:
        _usable(path)


def test_opening_a_new_file_another_process_is_writing_waits_for_it(tmp_path, cpu_hog):
    """A real second process creates each new file and keeps taking its write lock in short bursts while this
    process opens it: the open waits for a gap (as SQLite's busy timeout does) instead of failing at once."""
    spawn = multiprocessing.get_context("spawn")
    paths = [str(tmp_path / f"busy-{i}.sqlite") for i in range(10)]
    turn = spawn.Value("i", 0, lock=False)
    started = spawn.Value("i", 0, lock=False)
    writer = spawn.Process(target=_burst_writer, args=(paths, turn, started), daemon=True)
    writer.start()
    failed = []
    try:
        for i, path in enumerate(paths):
            wait_for(lambda: started.value > i, f"the writer process created {path}", timeout=60)
            try:
                SqliteStore(path, "r")
            except StoreError as exc:
                failed.append(str(exc))
            turn.value = i + 1
    finally:
        turn.value = len(paths) + 1
        _stop([writer])
    assert not failed, f"{len(failed)} of {len(paths)} opens failed, e.g. {failed[0]}"
    for path in paths:
        _usable(path)


def test_a_new_file_that_stays_locked_says_so_and_what_to_do(tmp_path):
    """Another connection holds the new file's lock for longer than the store's timeout: the error says the file
    is locked by another connection and how to wait longer; it does not blame the directory."""
    path = str(tmp_path / "held.sqlite")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # creates the file and keeps every other connection out
        with pytest.raises(StoreError) as caught:
            SqliteStore(path, "r", timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    msg = str(caught.value)
    assert path in msg and "locked" in msg and "timeout=" in msg, msg
    assert "cannot create the database file" not in msg, msg
    SqliteStore.factory(path).close()  # once released, the same path opens


# -- race 3: resume after another process took the run over ------------------------------------------


def _add(key):
    def step(state):
        return {key: state.get(key, 0) + 1}

    return step


def _gate_router(state, results):
    """Pause before the gate again (each resume runs it once more) until the state says ``ok``."""
    return None if state.get("ok") else Pause("gate", timeout=300.0)


def _nothing(state):
    return None


GATE = Pipeline(
    "race-gate",
    stages=[
        Stage("a", steps=[Step("a", _add("a"))]),
        Stage("gate", steps=[Step("check", _nothing)], router=_gate_router, routes=["gate"]),
        Stage("finish", steps=[Step("finish", _add("finish"))]),
    ],
)


def _take_over(db, requests, replies) -> None:
    """Process B: for each run id it is sent, resume the run (taking it over), edit it and run it to its next
    pause; reply with None, or what went wrong."""
    factory = PipelineFactory(GATE, store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    while True:
        run_id = requests.get(timeout=120)
        if run_id is None:
            return
        res = factory.resume_sync(run_id)
        if res.is_err:
            replies.put(f"resume: {res.error}")
            continue
        res.value.update_state({"by": "B"})
        ran = res.value.run_sync()
        replies.put(None if ran.is_ok and ran.value.status == "paused" else f"run: {ran}")


def test_resume_after_another_process_took_the_run_over_rebuilds_it_and_never_loops(tmp_path, cpu_hog):
    db = str(tmp_path / "runs.sqlite")
    registry = PipelineRegistry(default_timeout=300)
    factory = PipelineFactory(GATE, store_factory=SqliteStore.factory(db), registry=registry)
    spawn = multiprocessing.get_context("spawn")
    requests, replies = spawn.Queue(), spawn.Queue()
    b = spawn.Process(target=_take_over, args=(db, requests, replies), daemon=True)
    b.start()
    try:
        for i in range(6):
            old = factory.prepare_sync(initial_state={"i": i}).unwrap()
            assert old.run_sync().unwrap().status == "paused"
            requests.put(old.run_id)
            assert replies.get(timeout=120) is None  # B took the run over and paused it again, with its edit
            refused = old.run_sync()  # A's old object: out of date
            assert refused.is_err and old.run_id in str(refused.error)
            assert "factory.resume(run_id) returns" in str(refused.error), str(refused.error)
            res = factory.resume_sync(old.run_id)  # ... which is what the refusal says to do
            assert res.is_ok, f"resume after the take-over: {res.error}"
            ctx = res.value
            assert ctx is not old, "resume handed back the stale context whose run() was just refused (a loop)"
            assert ctx.state == {"i": i, "a": 1, "by": "B"}
            again = old.run_sync()  # still refused, and still sent to the current one
            assert again.is_err and "factory.resume(run_id) returns" in str(again.error), str(again.error)
            assert factory.resume_sync(old.run_id).unwrap() is ctx  # the current one, from now on
            ctx.update_state({"ok": True})
            assert ctx.run_sync().unwrap().status == "completed"
            stored = SqliteStore(db, old.run_id).get()
            assert stored["__pipeline_data__"]["status"] == "completed"  # its note: how it ended (no checkpoint)
            assert user_view(stored) == {"i": i, "a": 1, "by": "B", "ok": True, "finish": 1}
    finally:
        requests.put(None)
        b.join(30)
        if b.is_alive():
            b.kill()
            b.join(10)
        registry.close()

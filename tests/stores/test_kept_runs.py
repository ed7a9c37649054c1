"""SPEC 14 "Completed runs stay in view" and SPEC 10 forks, over every store: a finished run stays listed with its
status (after a restart too, in a store that outlives the process), is opened to look at and never resumed, and is
removed from the lists for good without losing its data; a fork records the run and record it came from."""

import asyncio
import json
import os
import subprocess
import sys
import textwrap

import pytest

from pipenb import END, Pause, Pipeline, PipelineFactory, PipelineRegistry, ResumeError, Stage, Step
from pipenb.core.kept import ForkSource
from pipenb.core.store import MemoryStoreProvider
from pipenb.stores import SqliteStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLD: dict = {}  # run id -> its context, for a step that aborts its own run


async def _maybe_stop(state, ctx):
    if state.get("stop"):
        HOLD[ctx.run_id].abort("stopped by the test")
        await asyncio.sleep(30)  # cancelled by the abort
    return {"c": state["n"] * 10}


def _b(state):
    if state.get("fail"):
        raise ValueError("b failed on purpose")
    return {"b": state["n"] + 1}


PIPE = Pipeline(
    "kept",
    stages=[
        Stage("a", steps=[Step("a", lambda s: {"n": s.get("n", 0) + 1})]),
        Stage(
            "b",
            steps=[Step("b", _b)],
            router=lambda s: END if s.get("end") else Pause("c", timeout=float("inf")) if s.get("hold") else None,
        ),
        Stage("c", steps=[Step("c", _maybe_stop)]),
    ],
)


@pytest.fixture(params=["memory", "sqlite"])
def kind(request, tmp_path):
    """(store_factory, reopen): ``reopen()`` is a new store_factory over the same runs, as a new process would open
    it, or None for a store that does not outlive the process."""
    if request.param == "memory":
        yield MemoryStoreProvider(), None
        return
    path = tmp_path / "runs.sqlite"
    opened = [SqliteStore.factory(path)]

    def reopen():
        opened.append(SqliteStore.factory(path))
        return opened[-1]

    yield opened[0], reopen
    for factory in opened:
        factory.close()


def run(factory: PipelineFactory, run_id: str, **initial) -> object:
    ctx = factory.prepare_sync(run_id=run_id, initial_state={"n": 0, **initial}).unwrap()
    HOLD[run_id] = ctx
    ctx.run_sync()
    return ctx


def four_runs(factory: PipelineFactory) -> dict:
    """A completed, a terminated, a failed and an aborted run."""
    ctxs = {
        "done": run(factory, "done"),
        "ended": run(factory, "ended", end=True),
        "bad": run(factory, "bad", fail=True),
        "stop": run(factory, "stop", stop=True),
    }
    assert {k: c.status for k, c in ctxs.items()} == {
        "done": "completed",
        "ended": "terminated",
        "bad": "failed",
        "stop": "aborted",
    }
    return ctxs


def statuses(factory: PipelineFactory) -> dict:
    return {r.run_id: r.status for r in factory.runs()}


def check_refused(factory: PipelineFactory, run_id: str, status: str) -> None:
    res = factory.resume_sync(run_id)
    assert res.is_err and isinstance(res.error, ResumeError)
    assert f"run {run_id} {status}" in str(res.error) and "never resumed" in str(res.error)


def test_finished_runs_stay_listed_with_their_status_and_are_never_resumed(kind):
    provider, reopen = kind
    factory = PipelineFactory(PIPE, provider, registry=PipelineRegistry())
    four_runs(factory)
    expected = {"done": "completed", "ended": "terminated", "bad": "failed", "stop": "aborted"}
    assert statuses(factory) == expected
    check_refused(factory, "done", "completed")
    check_refused(factory, "ended", "terminated")
    if reopen is None:
        return
    # A new process: a new registry, a new connection to the same file.
    later = PipelineFactory(PIPE, reopen(), registry=PipelineRegistry())
    assert statuses(later) == expected
    done = next(r for r in later.runs() if r.run_id == "done")
    assert not done.live and done.ended is not None and done.paused_at is None
    check_refused(later, "done", "completed")
    check_refused(later, "ended", "terminated")
    opened = later.open_sync("done").unwrap()  # looked at, never run
    assert opened.status == "completed" and opened.state == {"n": 1, "b": 2, "c": 10}
    assert [rec.address for rec in opened.history] == ["a", "b", "c"]
    refused = opened.run_sync()
    assert refused.is_err and "completed" in str(refused.error)
    assert later.open_sync("bad").is_err  # a run that can continue is resumed, not opened
    assert later.resume_sync("bad").unwrap().status == "failed"  # and it still resumes


def test_a_fork_records_its_source_and_keeps_it_when_it_finishes(kind):
    provider, reopen = kind
    factory = PipelineFactory(PIPE, provider, registry=PipelineRegistry())
    source = run(factory, "done")
    fork = factory.fork_sync("done", at=1, new_run_id="fork").unwrap()  # made in code, not in a dashboard
    assert fork.forked_from == ForkSource("done", 1, source.history[1].seq)
    assert source.forked_from is None
    assert next(r for r in factory.runs() if r.run_id == "fork").forked_from == ("done", 1, 1)
    fork.update_state({"n": 5, "hold": True})  # the fork goes its own way from the fork point
    assert fork.run_sync().unwrap().status == "paused"  # a router's pause writes a new checkpoint: the source stays
    assert fork.forked_from == ("done", 1, 1)
    assert fork.run_sync().unwrap().status == "completed"
    assert fork.forked_from.run_id == "done"
    assert next(r for r in factory.runs() if r.run_id == "fork").forked_from.run_id == "done"
    assert fork.history.compare(source.history).diverged_at == 1  # SPEC 14: at the fork point or later
    if reopen is None:
        return
    later = PipelineFactory(PIPE, reopen(), registry=PipelineRegistry())
    listed = {r.run_id: r for r in later.runs()}
    assert listed["fork"].status == "completed" and listed["fork"].forked_from == ("done", 1, 1)
    assert listed["done"].forked_from is None
    again = later.open_sync("fork").unwrap()
    assert again.forked_from == ("done", 1, 1)
    assert again.history.compare(later.open_sync("done").unwrap().history).diverged_at == 1


def test_a_fork_not_yet_run_is_listed_as_prepared_with_its_source_after_a_restart(kind):
    provider, reopen = kind
    factory = PipelineFactory(PIPE, provider, registry=PipelineRegistry())
    run(factory, "done")
    factory.fork_sync("done", at="c", new_run_id="fork")
    assert statuses(factory)["fork"] == "prepared"
    if reopen is None:
        return
    later = PipelineFactory(PIPE, reopen(), registry=PipelineRegistry())
    listed = {r.run_id: r for r in later.runs()}
    assert listed["fork"].status == "prepared" and listed["fork"].forked_from == ("done", 2, 2)
    resumed = later.resume_sync("fork").unwrap()  # it starts where it was forked, with the state before it
    assert resumed.forked_from == ("done", 2, 2) and resumed.position == "c"
    assert resumed.run_sync().unwrap().state == {"n": 1, "b": 2, "c": 10}


def test_remove_takes_a_finished_run_out_of_the_lists_for_good_and_keeps_its_data(kind):
    provider, reopen = kind
    factory = PipelineFactory(PIPE, provider, registry=PipelineRegistry())
    ctxs = four_runs(factory)
    assert factory.remove_sync("done") is True
    assert "done" not in statuses(factory)
    assert factory.remove_sync("bad") is False  # a run that can continue is discarded, never just hidden
    assert statuses(factory) == {"ended": "terminated", "bad": "failed", "stop": "aborted"}
    assert [rec.address for rec in ctxs["done"].history] == ["a", "b", "c"]  # the object the user holds is intact
    assert factory.registry.remove("ended") is True  # the registry's remove, while the run's context is held
    run(factory, "again")
    assert factory.registry.discard("again") is True  # discarding a finished run removes it the same way
    assert statuses(factory) == {"bad": "failed", "stop": "aborted"}
    if reopen is None:
        return
    later = PipelineFactory(PIPE, reopen(), registry=PipelineRegistry())
    assert statuses(later) == {"bad": "failed", "stop": "aborted"}
    # Nothing was deleted: the removed run is still read by its id (history, replay, report).
    assert [rec.address for rec in later.open_sync("done").unwrap().history] == ["a", "b", "c"]
    assert len(asyncio.run(later.run_history("done"))) == 3


READER = textwrap.dedent("""
    import json, sys
    from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
    from pipenb.stores import SqliteStore

    pipe = Pipeline("kept", stages=[Stage(s, steps=[Step(s, lambda st: {})]) for s in "abc"])
    factory = PipelineFactory(pipe, SqliteStore.factory(sys.argv[1]), registry=PipelineRegistry())
    runs = {r.run_id: [r.status, list(r.forked_from) if r.forked_from else None, r.ended is not None]
            for r in factory.runs()}
    refused = str(factory.resume_sync("done").error)
    print(json.dumps({"runs": runs, "refused": refused}))
""")


def test_another_process_lists_finished_failed_aborted_runs_and_a_forks_source(tmp_path):
    path = tmp_path / "runs.sqlite"
    provider = SqliteStore.factory(path)
    factory = PipelineFactory(PIPE, provider, registry=PipelineRegistry())
    four_runs(factory)
    fork = factory.fork_sync("done", at=1, new_run_id="fork").unwrap()
    fork.run_sync()
    provider.close()
    (tmp_path / "reader.py").write_text(READER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    out = subprocess.run(
        [sys.executable, str(tmp_path / "reader.py"), str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["runs"] == {
        "done": ["completed", None, True],
        "ended": ["terminated", None, True],
        "bad": ["failed", None, False],
        "stop": ["aborted", None, False],
        "fork": ["completed", ["done", 1, 1], True],
    }
    assert "run done completed" in seen["refused"] and "never resumed" in seen["refused"]


DIES = textwrap.dedent("""
    import os, sys
    from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
    from pipenb.stores import SqliteStore

    def put(name):
        return lambda state: {name: 1}

    pipe = Pipeline("kept", stages=[Stage(s, steps=[Step(s, put(s))]) for s in "abc"])
    factory = PipelineFactory(pipe, SqliteStore.factory(sys.argv[1]), registry=PipelineRegistry())
    ctx = factory.prepare_sync(run_id="cut", initial_state={"n": 0}).unwrap()
    # The process dies as soon as the last stage is committed, before the run's end is handled.
    ctx.on("stage:success", lambda e: os._exit(3) if e.stage_address == "c" else None)
    ctx.run_sync()
""")


def test_a_process_that_dies_right_after_the_last_commit_leaves_its_run_listed_as_completed(tmp_path):
    path = tmp_path / "runs.sqlite"
    (tmp_path / "dies.py").write_text(DIES)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    out = subprocess.run(
        [sys.executable, str(tmp_path / "dies.py"), str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 3, out.stderr
    provider = SqliteStore.factory(path)
    factory = PipelineFactory(PIPE, provider, registry=PipelineRegistry())
    assert statuses(factory) == {"cut": "completed"}  # the last commit wrote how it ended, in its own transaction
    check_refused(factory, "cut", "completed")
    provider.close()


def test_a_schema_5_file_without_finished_notes_opens_and_keeps_its_schema(tmp_path):
    """The finished notes live in the state rows a schema 5 file already has: no migration, an older pipenb still
    opens the file; a run an older pipenb finished left no note (nothing says how it ended), so it is not listed."""
    import sqlite3

    path = tmp_path / "runs.sqlite"
    provider = SqliteStore.factory(path)
    factory = PipelineFactory(PIPE, provider, registry=PipelineRegistry())
    run(factory, "old")
    run(factory, "bad", fail=True)
    provider.close()
    conn = sqlite3.connect(path)
    with conn:  # what a schema 5 pipenb left of a completed run: its state and history, no note
        conn.execute("DELETE FROM pipenb_state WHERE run_id = 'old' AND key = '__pipeline_data__'")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    conn.close()
    provider = SqliteStore.factory(path)
    factory = PipelineFactory(PIPE, provider, registry=PipelineRegistry())
    assert statuses(factory) == {"bad": "failed"}
    assert len(asyncio.run(factory.run_history("old"))) == 3  # still read by its id
    run(factory, "new")
    assert statuses(factory) == {"bad": "failed", "new": "completed"}
    provider.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    conn.close()


def test_open_and_remove_leave_a_released_paused_run_resumable(kind):
    provider, _ = kind
    registry = PipelineRegistry()
    factory = PipelineFactory(PIPE, provider, registry=registry)
    ctx = run(factory, "held", hold=True)
    assert ctx.status == "paused" and registry.expire("held")  # let go: only its store has it now
    assert factory.open_sync("held").is_err  # not finished: it is resumed, never opened
    assert factory.remove_sync("held") is False  # nor removed (discard it to drop it)
    again = factory.resume_sync("held").unwrap()
    again.update_state({"hold": False})
    assert again.run_sync().unwrap().state == {"n": 1, "b": 2, "c": 10, "hold": False}


def test_a_run_aborted_while_it_waited_is_listed_aborted_by_another_process_and_still_resumes(tmp_path):
    path = tmp_path / "runs.sqlite"
    provider = SqliteStore.factory(path)
    factory = PipelineFactory(PIPE, provider, registry=PipelineRegistry())
    waits, dropped = run(factory, "waits", hold=True), run(factory, "dropped", hold=True)
    assert waits.status == dropped.status == "paused"
    dropped.abort("changed my mind")  # no drive to interrupt: only its status changes, in memory and in the file
    assert dropped.status == "aborted"
    provider.close()
    (tmp_path / "reader.py").write_text(READER.replace('factory.resume_sync("done")', 'factory.resume_sync("dropped")'))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    out = subprocess.run(
        [sys.executable, str(tmp_path / "reader.py"), str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["runs"] == {"waits": ["paused", None, False], "dropped": ["aborted", None, False]}
    assert seen["refused"] == "None"  # an aborted run resumes
    again = PipelineFactory(PIPE, SqliteStore.factory(path), registry=PipelineRegistry())
    resumed = again.resume_sync("dropped").unwrap()
    assert resumed.status == "aborted" and resumed.position == "c"
    assert resumed.run_sync().unwrap().status == "completed"

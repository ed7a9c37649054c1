"""Property tests: interrupting a run anywhere, resuming it any way, changes nothing.

Random pipelines (stages, routers from a finite table, bounded loops,
sub-pipelines) are paused at random stages (breakpoints) and resumed by the
fast path, the slow path (expired registry entry, rebuilt context), or from
SQLite in a new process; the final state must equal the uninterrupted run's.
Fault injection: failing steps and aborts at random times.
"""

import asyncio
import json
import os
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipenb import AbortedError, InMemoryStore, PipelineFactory, PipelineRegistry, StepError
from pipenb.stores import SqliteStore

from ..pipegen import build, check_stage_events, leaf_addresses, pipeline_specs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_store():
    """A store factory handing out a single fresh store (the run id does not matter)."""
    store = InMemoryStore()
    return lambda run_id: store


def reference(spec):
    """The uninterrupted run: router pauses are resumed at once on the same context."""
    f = PipelineFactory(build(spec), store_factory=one_store(), registry=None)
    ctx = f.prepare_sync(run_id="ref").unwrap()
    events = []
    ctx.on("*", events.append)
    for _ in range(500):
        res = ctx.run_sync().unwrap()
        if res.status != "paused":
            break
    check_stage_events(events)
    return res.status, dict(res.state)


@st.composite
def interrupted_runs(draw):
    spec = draw(pipeline_specs())
    leaves = leaf_addresses(spec)
    bps = draw(st.lists(st.sampled_from(leaves), unique=True, max_size=len(leaves)))
    modes = draw(st.lists(st.sampled_from(["fast", "slow", "slow-sqlite"]), min_size=1, max_size=6))
    return spec, bps, modes


@SETTINGS
@given(interrupted_runs())
def test_pause_anywhere_resume_any_way_reaches_the_same_state(tmp_path_factory, case):
    spec, bps, modes = case
    expected = reference(spec)
    registry = PipelineRegistry(default_timeout=60)
    sqlite = SqliteStore.factory(tmp_path_factory.mktemp("prop") / "runs.sqlite")
    memory: dict = {}

    def store_factory(run_id):
        return memory.setdefault(run_id, InMemoryStore())

    pipeline = build(spec)
    factories = {
        "memory": PipelineFactory(pipeline, store_factory=store_factory, registry=registry),
        "sqlite": PipelineFactory(pipeline, store_factory=sqlite, registry=registry),
    }
    for backend, factory in factories.items():
        ctx = factory.prepare_sync(run_id=f"run-{backend}").unwrap()
        ctx.breakpoints.update(bps)
        events: list = []
        ctx.on("*", events.append)
        for i in range(500):
            res = ctx.run_sync().unwrap()
            if res.status != "paused":
                break
            mode = modes[i % len(modes)]
            if mode == "fast":
                again = factory.resume_sync(ctx.run_id).unwrap()
                assert again is ctx
            else:
                registry.expire(ctx.run_id)
                if mode == "slow-sqlite" and backend == "sqlite":
                    # A fresh store object: everything must come back from the file.
                    factory = PipelineFactory(pipeline, store_factory=SqliteStore.factory(sqlite.path),
                                              registry=registry)
                again = factory.resume_sync(ctx.run_id).unwrap()
                assert again is not ctx
                again.breakpoints.update(bps)
                again.on("*", events.append)
                ctx = again
        check_stage_events(events)
        assert (res.status, dict(res.state)) == expected, backend
    registry.close()
    sqlite.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interrupted_runs())
def test_resume_from_sqlite_in_a_new_process(tmp_path_factory, case):
    spec, bps, _ = case
    expected = reference(spec)
    db = str(tmp_path_factory.mktemp("proc") / "runs.sqlite")
    f = PipelineFactory(build(spec), store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    ctx = f.prepare_sync(run_id="proc-run").unwrap()
    ctx.breakpoints.update(bps)
    status = ctx.run_sync().unwrap().status
    f.store_factory.close()
    for _ in range(100):
        if status != "paused":
            break
        out = subprocess.run(
            [sys.executable, "-m", "tests.pipegen", json.dumps(spec), db, "proc-run", json.dumps(bps)],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )
        assert out.returncode == 0, out.stderr
        status = out.stdout.strip()
    state = SqliteStore(db, "proc-run").get()
    assert (status, {k: v for k, v in state.items() if k != "__pipeline_data__"}) == expected


@SETTINGS
@given(pipeline_specs(), st.data())
def test_a_failing_step_commits_nothing_of_its_stage(spec, data):
    expected = reference(spec)
    steps = [(a, f"t{i}") for a in leaf_addresses(spec) for i in range(3)]
    target = data.draw(st.sampled_from(steps))
    fault = {"on": True}
    pipeline = build(spec)
    # Make that step raise while the fault is on.
    stage = pipeline.resolve(tuple(target[0].split("/")))[-1]
    for step in stage.steps:
        if step.id == target[1]:
            original = step.action

            def flaky(state, original=original):
                if fault["on"]:
                    raise RuntimeError("injected")
                return original(state)

            step.action = flaky
    f = PipelineFactory(pipeline, store_factory=one_store(), registry=None)
    ctx = f.prepare_sync().unwrap()
    before_stage = {}
    events = []
    ctx.on("*", events.append)
    ctx.on("stage:start", lambda e: before_stage.__setitem__(e.stage_address, dict(ctx.state)))
    for _ in range(500):
        res = ctx.run_sync()
        if res.is_err or res.value.status != "paused":
            break
    if res.is_err:
        assert isinstance(res.error, StepError) and res.error.step_id == target[1]
        assert dict(ctx.state) == before_stage[target[0]]
        assert ctx.checkpoint.resume_at == tuple(target[0].split("/"))
        fault["on"] = False
        for _ in range(500):
            res = ctx.run_sync()
            if res.value.status != "paused":
                break
    check_stage_events(events)
    assert (res.value.status, dict(res.value.state)) == expected


def slow_build(spec):
    pipeline = build(spec)

    def slow(action):
        async def wrapped(state):
            await asyncio.sleep(0.0005)
            return action(state)

        return wrapped

    for addr in leaf_addresses(spec):
        for step in pipeline.resolve(tuple(addr.split("/")))[-1].steps:
            step.action, step.is_async = slow(step.action), True
    return pipeline


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipeline_specs(), st.floats(0, 0.01))
def test_abort_at_random_times_keeps_last_commit_and_resumes(spec, delay):
    expected = reference(spec)
    f = PipelineFactory(slow_build(spec), store_factory=one_store(), registry=None)
    ctx = f.prepare_sync().unwrap()
    events = []
    ctx.on("*", events.append)
    commits = []
    ctx.store.subscribe(lambda state: commits.append(state))

    async def run_and_abort():
        task = ctx.start()
        await asyncio.sleep(delay)
        ctx.abort("random")
        return await task

    res = asyncio.run(run_and_abort())
    if res.is_err:
        assert isinstance(res.error, AbortedError) and ctx.status == "aborted"
        last = commits[-1] if commits else {}
        assert dict(ctx.state) == {k: v for k, v in last.items() if k != "__pipeline_data__"}
    for _ in range(500):
        if res.is_ok and res.value.status != "paused":
            break
        res = ctx.run_sync()
    check_stage_events(events)
    assert (res.value.status, dict(res.value.state)) == expected


class _Crash(BaseException):
    """Stands for the process dying right after a commit reached the file."""


def crashing_factory(path, after_commits: int):
    base = SqliteStore.factory(path)
    count = {"n": 0}

    def store_factory(run_id):
        store = base(run_id)
        inner = store.transaction

        class Tx:
            def __enter__(self):
                self._tx = inner()
                return self._tx.__enter__()

            def __exit__(self, et, e, tb):
                out = self._tx.__exit__(et, e, tb)
                if et is None:
                    count["n"] += 1
                    if count["n"] == after_commits:
                        raise _Crash()
                return out

        store.transaction = Tx
        return store

    store_factory.close = base.close
    return store_factory


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipeline_specs(), st.integers(1, 12))
def test_crash_after_any_commit_resumes_to_the_same_state(tmp_path_factory, spec, k):
    expected = reference(spec)
    db = tmp_path_factory.mktemp("crash") / "runs.sqlite"
    crashing = crashing_factory(db, k)
    ctx = PipelineFactory(build(spec), store_factory=crashing, registry=None).prepare_sync(run_id="c").unwrap()
    try:
        for _ in range(500):
            res = ctx.run_sync().unwrap()
            if res.status != "paused":
                break
        crashed = False
    except _Crash:
        crashed = True
    crashing.close()
    if not crashed:
        assert (res.status, dict(res.state)) == expected
        return
    # A new process would see only the file: a fresh factory, a fresh store, a fresh registry.
    fresh = PipelineFactory(build(spec), store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    again = fresh.resume_sync("c")
    if again.is_err:
        # No checkpoint: the crash came with the commit that finished the run.
        state = SqliteStore(db, "c").get()
        assert expected[1] == {k: v for k, v in state.items() if k != "__pipeline_data__"}
        return
    ctx = again.value
    for _ in range(500):
        res = ctx.run_sync().unwrap()
        if res.status != "paused":
            break
    assert (res.status, dict(res.state)) == expected

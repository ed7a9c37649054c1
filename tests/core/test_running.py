"""SPEC 1-2: running pipelines — routers, atomic stages, sub-pipelines, failures, results."""

import asyncio
import logging
import re

import pytest

from pipenb import (
    DELETE, END, PIPELINE_DATA_KEY, AbortedError, Pause, Pipeline, PipelineError, PipelineFactory,
    PipelineRunResult, Result, ResumeError, RoutingError, Stage, Step, StepError, run_sync,
)
from pipenb.stores.memory import default_provider

from ..conftest import Recorder, add, arun, linear, stage

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_run_completes_with_merged_state(make):
    _, ctx, _ = make(linear(n=3), initial_state={"n": 10, "keep": {"a": 1}})
    res = ctx.run_sync().unwrap()
    assert isinstance(res, PipelineRunResult)
    assert (res.status, res.state, res.checkpoint) == ("completed", {"n": 13, "keep": {"a": 1}}, None)
    assert ctx.status == "completed" and ctx.state == res.state and ctx.checkpoint is None


def test_run_ids_are_uuid7_and_time_ordered(make):
    ids = [make(linear())[1].run_id for _ in range(5)]
    assert all(UUID7.match(i) for i in ids)
    assert ids == sorted(ids)


def test_step_receives_working_state_and_context(make):
    seen = {}

    def first(state):
        return {"x": 1, "nested": {"a": 1}}

    def second(state, ctx):
        seen["state"] = dict(state)
        seen["ids"] = (ctx.run_id, ctx.stage_id, ctx.step_id, ctx.signal.aborted)
        seen["path"] = ctx.path
        ctx.artifacts.put("model", "M")
        ctx.logger.info("hello")
        return {"nested": {"b": 2}}

    p = Pipeline("p", stages=[Stage("s", steps=[Step("first", first), Step("second", second)])])
    _, ctx, _ = make(p, initial_state={"y": 0})
    state = ctx.run_sync().unwrap().state
    assert seen["state"] == {"y": 0, "x": 1, "nested": {"a": 1}}
    assert seen["ids"] == (ctx.run_id, "s", "second", False)
    assert seen["path"][-1] == ("p", "s")
    assert state == {"y": 0, "x": 1, "nested": {"a": 1, "b": 2}}
    assert ctx.artifacts.get("model") == "M"
    assert ctx.artifacts.get("s/second") == {"nested": {"b": 2}}


def test_async_steps_and_routers(make):
    async def step(state):
        await asyncio.sleep(0)
        return {"v": state.get("v", 0) + 1}

    async def router(state, results):
        await asyncio.sleep(0)
        return "a" if state["v"] < 3 else None

    p = Pipeline("p", stages=[Stage("a", steps=[Step("inc", step)], router=router, routes=["a"])])
    _, ctx, rec = make(p)
    assert ctx.run_sync().unwrap().state == {"v": 3}
    assert [e.next for e in rec.where("stage:success")] == ["a", "a", None]


def test_delete_removes_keys(make):
    p = Pipeline("p", steps=[Step("drop", lambda s: {"gone": DELETE, "nest": {"x": DELETE}})])
    _, ctx, _ = make(p, initial_state={"gone": 1, "stay": 2, "nest": {"x": 1, "y": 2}})
    assert ctx.run_sync().unwrap().state == {"stay": 2, "nest": {"y": 2}}


def test_router_jump_end_and_advance(make):
    order = []

    def rec(name):
        def action(state):
            order.append(name)
            return {name: True}

        return action

    p = Pipeline("p", stages=[
        stage("a", rec("a")),
        stage("b", rec("b"), router=lambda s, r: "d"),
        stage("c", rec("c")),
        stage("d", rec("d"), router=lambda s, r: END),
        stage("e", rec("e")),
    ])
    _, ctx, rec_ = make(p)
    res = ctx.run_sync().unwrap()
    assert order == ["a", "b", "d"]
    assert res.status == "terminated" and ctx.status == "terminated"
    assert rec_.where("pipeline:success")[0].status == "terminated"


def test_router_receives_stage_state_and_results(make):
    got = {}

    def router(state, results):
        got["state"], got["results"] = dict(state), dict(results)
        return None

    p = Pipeline("p", stages=[Stage("s", steps=[Step("a", lambda s: {"a": 1}), Step("b", lambda s: None)], router=router)])
    make(p, initial_state={"z": 0})[1].run_sync()
    assert got["state"] == {"z": 0, "a": 1}
    assert got["results"] == {"a": {"a": 1}, "b": {}}


@pytest.mark.parametrize("value, fragment", [
    (42, "int 42"), ("nowhere", "no stage 'nowhere'"), (Pause("ghost"), "no stage 'ghost'"), ([1], "list [1]"),
])
def test_bad_router_values_fail_the_stage_with_routing_error(make, value, fragment):
    p = Pipeline("pp", stages=[stage("a", add("n")), stage("b", add("n"), router=lambda s, r: value)])
    _, ctx, rec = make(p)
    res = ctx.run_sync()
    assert res.is_err and isinstance(res.error, RoutingError)
    msg = str(res.error)
    assert "'b'" in msg and "'pp'" in msg and fragment in msg
    assert res.error.stage_id == "b"
    # Stage b committed nothing; stage a did.
    assert ctx.state == {"n": 1} and ctx.status == "failed"
    assert rec.where("stage:failure")[0].stage_id == "b"


def test_undeclared_but_existing_route_is_allowed(make):
    p = Pipeline("p", stages=[stage("a", add("n"), router=lambda s, r: "c" if s["n"] == 1 else None), stage("b", add("b")),
                              stage("c", add("c"))])
    assert make(p)[1].run_sync().unwrap().state == {"n": 1, "c": 1}


def test_router_that_raises_is_a_routing_error_with_cause(make):
    def boom(state, results):
        raise ValueError("bad route")

    p = Pipeline("p", stages=[stage("a", add("n"), router=boom)])
    _, ctx, _ = make(p)
    err = ctx.run_sync().error
    assert isinstance(err, RoutingError) and isinstance(err.__cause__, ValueError) and "bad route" in str(err)
    assert ctx.state == {}


def test_max_transitions_fails_the_run(make):
    p = Pipeline("loop", stages=[stage("a", add("n"), router=lambda s, r: "a")], max_transitions=50)
    _, ctx, _ = make(p)
    err = ctx.run_sync().error
    assert isinstance(err, RoutingError) and "max_transitions=50" in str(err) and "'loop'" in str(err)
    assert ctx.state == {"n": 50}


def test_failing_step_commits_nothing_of_its_stage(make):
    def boom(state):
        raise RuntimeError("kaput")

    p = Pipeline("p", stages=[
        stage("ok", add("n")),
        Stage("bad", steps=[Step("first", lambda s: {"half": "written"}), Step("second", boom)]),
    ])
    _, ctx, rec = make(p)
    res = ctx.run_sync()
    err = res.error
    assert isinstance(err, StepError) and (err.stage_id, err.step_id) == ("bad", "second")
    assert isinstance(err.__cause__, RuntimeError) and "kaput" in str(err) and "'second'" in str(err)
    assert ctx.state == {"n": 1}
    assert "half" not in ctx.state
    assert rec.names[-3:] == ["step:failure", "stage:failure", "pipeline:failure"]
    assert rec.where("step:failure")[0].step_id == "second"


@pytest.mark.parametrize("bad", [42, "patch", [("a", 1)], {PIPELINE_DATA_KEY: 1}])
def test_bad_step_return_values_fail_with_step_error(make, bad):
    p = Pipeline("p", stages=[stage("s", lambda s: bad)])
    _, ctx, _ = make(p)
    err = ctx.run_sync().error
    assert isinstance(err, StepError) and "'s0'" in str(err) and "'s'" in str(err)
    assert ctx.state == {}


def test_step_cannot_mutate_committed_state(make):
    def sneaky(state):
        state["nested"]["x"] = 99

    p = Pipeline("p", steps=[Step("sneaky", sneaky)])
    _, ctx, _ = make(p, initial_state={"nested": {"x": 1}})
    err = ctx.run_sync().error
    assert isinstance(err, StepError) and "read-only" in str(err)
    assert ctx.state == {"nested": {"x": 1}}


def test_failed_run_keeps_checkpoint_and_resume_retries(make):
    flaky = {"fail": True}

    def sometimes(state):
        if flaky["fail"]:
            raise RuntimeError("not yet")
        return {"done": True}

    p = Pipeline("p", stages=[stage("a", add("n")), stage("b", sometimes), stage("c", add("n"))])
    factory, ctx, _ = make(p)
    assert ctx.run_sync().is_err and ctx.status == "failed"
    cp = ctx.checkpoint
    assert cp is not None and cp.resume_at == ("b",) and cp.paused_at_stage_id == "b"
    flaky["fail"] = False
    again = factory.resume_sync(ctx.run_id).unwrap()
    res = again.run_sync().unwrap()
    assert res.status == "completed" and res.state == {"n": 2, "done": True}
    assert again.checkpoint is None


def test_run_is_refused_while_running_and_after_finish(make):
    async def slow(state):
        await asyncio.sleep(0.05)

    p = Pipeline("p", steps=[Step("slow", slow)])
    _, ctx, _ = make(p)

    async def main():
        task = ctx.start()
        await asyncio.sleep(0.01)
        second = await ctx.run()
        first = await task
        return first, second

    first, second = arun(main())
    assert first.is_ok and second.is_err and "already running" in str(second.error) and ctx.run_id in str(second.error)
    third = ctx.run_sync()
    assert third.is_err and "completed" in str(third.error)


def test_start_needs_a_loop_and_returns_a_task(make):
    _, ctx, _ = make(linear())
    with pytest.raises(PipelineError, match="running event loop"):
        ctx.start()

    async def main():
        task = ctx.start()
        assert isinstance(task, asyncio.Task)
        assert ctx.status == "running"
        return await task

    assert arun(main()).unwrap().status == "completed"


def test_listener_that_raises_is_logged_and_changes_nothing(make, caplog):
    _, ctx, _ = make(linear())
    ctx.on("stage:success", lambda e: 1 / 0)

    async def bad_async(e):
        raise KeyError("async listener")

    ctx.on("pipeline:success", bad_async)
    with caplog.at_level(logging.ERROR, logger="pipenb"):
        res = ctx.run_sync()
    assert res.unwrap().state == {"n": 3}
    assert "ZeroDivisionError" in caplog.text and "async listener" in caplog.text


def test_custom_logger_gets_listener_errors():
    class Log:
        def __init__(self):
            self.errors = []

        def info(self, msg, ctx=None):
            pass

        def error(self, msg, ctx=None):
            self.errors.append(msg)

    log = Log()
    f = PipelineFactory(linear(), logger=log, registry=None)
    ctx = f.prepare_sync().unwrap()
    ctx.on("stage:start", lambda e: [][1])
    assert ctx.run_sync().is_ok
    assert len(log.errors) == 3 and "IndexError" in log.errors[0]


def test_unsubscribe_stops_delivery(make):
    _, ctx, _ = make(linear())
    seen = []
    off = ctx.on("stage:start", seen.append)
    off()
    ctx.run_sync()
    assert seen == []


def test_unknown_event_name_is_rejected(make):
    _, ctx, _ = make(linear())
    with pytest.raises(ValueError, match="stage:begin"):
        ctx.on("stage:begin", print)


def test_prepare_entry_initial_state_and_errors(make, registry):
    p = linear(n=4)
    factory = PipelineFactory(p, initial_state_factory=lambda: {"n": 100}, registry=registry)
    ctx = factory.prepare_sync(entry="s2").unwrap()
    assert ctx.run_sync().unwrap().state == {"n": 102}
    ctx2 = factory.prepare_sync(initial_state={"n": 0}).unwrap()
    assert ctx2.run_sync().unwrap().state == {"n": 4}
    bad = factory.prepare_sync(entry="nope")
    assert bad.is_err and "nope" in str(bad.error) and "'lin'" in str(bad.error)
    assert factory.prepare_sync(initial_state=[1, 2]).is_err
    assert PIPELINE_DATA_KEY in str(factory.prepare_sync(initial_state={PIPELINE_DATA_KEY: 1}).error)


def test_prepare_refuses_a_run_id_that_has_state(make, registry):
    factory = PipelineFactory(linear(), registry=registry)
    ctx = factory.prepare_sync(run_id="fixed-id").unwrap()
    ctx.run_sync()
    ctx_again = factory.prepare_sync(run_id="fixed-id")
    assert ctx_again.is_ok  # completed runs release their store: the id is free again
    p = factory.prepare_sync(run_id="paused-id", initial_state={"a": 1}).unwrap()
    dup = factory.prepare_sync(run_id="paused-id")
    assert dup.is_err and "paused-id" in str(dup.error)
    del p


def test_resume_unknown_run_is_an_error_naming_it(registry):
    factory = PipelineFactory(linear(), registry=registry)
    res = factory.resume_sync("no-such-run")
    assert res.is_err and isinstance(res.error, ResumeError) and "no-such-run" in str(res.error)
    assert "no-such-run" not in default_provider


def test_resume_rejects_another_pipelines_run(registry):
    p = Pipeline("p1", stages=[stage("a", add("n"), router=lambda s, r: Pause("a") if s["n"] == 1 else None)])
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    ctx.run_sync()
    other = Pipeline("p2", stages=[stage("a", add("n"))])
    for reg in (registry, None):
        res = PipelineFactory(other, registry=reg).resume_sync(ctx.run_id)
        assert res.is_err and "'p1'" in str(res.error) and "'p2'" in str(res.error)


def test_sub_pipeline_shares_state_artifacts_and_bubbles_events(make):
    def fit(state, ctx):
        ctx.artifacts.put("model", {"w": state["rows"]})
        return {"fitted": True}

    training = Pipeline("training", steps=[Step("fit", fit), Step("score", lambda s: {"score": 0.9})])
    p = Pipeline("etl", stages=[stage("load", lambda s: {"rows": 5}), Stage("train", pipeline=training),
                                stage("report", lambda s: {"report": s["score"]})])
    _, ctx, rec = make(p)
    assert ctx.run_sync().unwrap().state == {"rows": 5, "fitted": True, "score": 0.9, "report": 0.9}
    assert ctx.artifacts.get("model") == {"w": 5}
    assert ctx.artifacts.get("train/fit/fit") == {"fitted": True}
    starts = [e for e in rec.where("stage:start")]
    assert [e.stage_address for e in starts] == ["load", "train", "train/fit", "train/score", "report"]
    fit_start = starts[2]
    assert fit_start.path == (("etl", "train"), ("training", "fit"))
    inner_start = rec.where("pipeline:start")[1]
    assert inner_start.path == (("etl", "train"), ("training", None)) and inner_start.pipeline_id == "training"


def test_entry_into_a_sub_pipeline(make):
    training = Pipeline("training", steps=[Step("fit", add("fit")), Step("score", add("score"))])
    p = Pipeline("etl", stages=[stage("load", add("load")), Stage("train", pipeline=training), stage("end", add("end"))])
    _, ctx, _ = make(p, entry=("train", "score"))
    assert ctx.run_sync().unwrap().state == {"score": 1, "end": 1}


def test_pause_inside_a_sub_pipeline_resumes_there(make):
    gate = {"open": False}
    training = Pipeline("training", stages=[
        stage("fit", add("fit"), router=lambda s, r: None if gate["open"] else Pause("fit")),
        stage("score", add("score")),
    ])
    p = Pipeline("etl", stages=[stage("load", add("load")), Stage("train", pipeline=training), stage("end", add("end"))])
    factory, ctx, rec = make(p)
    res = ctx.run_sync().unwrap()
    assert res.status == "paused" and res.checkpoint.resume_at == ("train", "fit")
    assert res.state == {"load": 1, "fit": 1}
    paused = rec.where("pipeline:paused")
    assert [len(e.path) for e in paused] == [2, 1]  # the sub-pipeline, then the root
    gate["open"] = True
    done = factory.resume_sync(ctx.run_id).unwrap().run_sync().unwrap()
    assert done.state == {"load": 1, "fit": 2, "score": 1, "end": 1}


def test_abort_cancels_an_async_step_and_keeps_last_commit(make):
    async def long(state, ctx):
        await asyncio.sleep(30)
        return {"never": True}

    p = Pipeline("p", stages=[stage("a", add("n")), Stage("b", steps=[Step("long", long)]), stage("c", add("n"))])
    factory, ctx, rec = make(p)

    async def main():
        task = ctx.start()
        while not rec.where("step:start") or rec.where("step:start")[-1].step_id != "long":
            await asyncio.sleep(0.001)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        ctx.abort("enough")
        res = await task
        return res, loop.time() - t0

    res, took = arun(main())
    assert took < 5.0  # cancelled at once, not after the step's 30 s
    assert isinstance(res.error, AbortedError) and res.error.reason == "enough"
    assert ctx.status == "aborted" and ctx.state == {"n": 1}
    assert ctx.checkpoint.resume_at == ("b",)
    assert rec.where("stage:failure")[0].stage_id == "b"


def test_abort_during_a_sync_step_does_not_commit_its_stage(make):
    holder = {}

    def sync_step(state):
        holder["ctx"].abort()
        return {"half": True}

    p = Pipeline("p", stages=[stage("a", add("n")), stage("b", sync_step), stage("c", add("n"))])
    factory, ctx, _ = make(p)
    holder["ctx"] = ctx
    res = ctx.run_sync()
    assert isinstance(res.error, AbortedError) and ctx.state == {"n": 1}
    # Aborted runs are resumable: the aborted stage is retried.
    holder["ctx"] = type("Dummy", (), {"abort": lambda self: None})()
    resumed = factory.resume_sync(ctx.run_id).unwrap()
    assert resumed is ctx
    assert resumed.run_sync().unwrap().state == {"n": 2, "half": True}


def test_steps_can_poll_the_abort_signal(make):
    polled = []

    async def polite(state, ctx):
        for _ in range(1000):
            if ctx.signal.aborted:
                polled.append(True)
                return {"stopped": True}
            await asyncio.sleep(0.001)

    p = Pipeline("p", steps=[Step("polite", polite)])
    _, ctx, rec = make(p)

    async def main():
        task = ctx.start()
        await asyncio.sleep(0.01)
        ctx.signal.aborted = True  # a step that shields itself still sees the flag
        return await task

    res = arun(main())
    assert polled and isinstance(res.error, AbortedError) and "stopped" not in ctx.state


def test_run_sync_helper_works_in_plain_scripts():
    async def seven():
        await asyncio.sleep(0)
        return 7

    assert run_sync(seven()) == 7


def test_run_sync_works_inside_a_running_loop(make):
    _, ctx, _ = make(linear())

    async def inside():
        return ctx.run_sync()  # what a Jupyter cell does

    assert arun(inside()).unwrap().status == "completed"


def test_result_api():
    ok, err = Result.ok(1), Result.err(ValueError("x"))
    assert ok.is_ok and not ok.is_err and ok.value == 1 and ok.unwrap() == 1 and ok.error is None
    assert err.is_err and isinstance(err.error, ValueError)
    with pytest.raises(ValueError):
        err.unwrap()


def test_state_view_hides_the_reserved_key(make):
    p = Pipeline("p", stages=[stage("a", add("n"), router=lambda s, r: Pause("a") if s["n"] < 2 else None)])
    _, ctx, rec = make(p)
    res = ctx.run_sync().unwrap()
    assert PIPELINE_DATA_KEY in ctx.store.get()
    assert PIPELINE_DATA_KEY not in ctx.state and PIPELINE_DATA_KEY not in res.state
    for e in rec.events:
        for field in ("state", "final_state"):
            if hasattr(e, field):
                assert PIPELINE_DATA_KEY not in getattr(e, field)


def test_sync_twins_from_a_plain_script_and_recorder():
    f = PipelineFactory(linear(), registry=None)
    ctx = f.prepare_sync().unwrap()
    rec = Recorder(ctx)
    assert ctx.run_sync().unwrap().state == {"n": 3}
    assert rec.names[0] == "pipeline:start" and rec.names[-1] == "pipeline:success"


def test_failed_router_of_a_sub_pipeline_stage_retries_only_the_router(make):
    flaky = {"fail": True}

    def router(state, results):
        if flaky["fail"]:
            raise RuntimeError("router not ready")
        return None

    training = Pipeline("training", steps=[Step("fit", add("fit")), Step("score", add("score"))])
    p = Pipeline("etl", stages=[Stage("train", pipeline=training, router=router), stage("end", add("end"))])
    factory, ctx, rec = make(p)
    assert isinstance(ctx.run_sync().error, RoutingError)
    assert ctx.state == {"fit": 1, "score": 1} and ctx.checkpoint.resume_at == ("train",)
    flaky["fail"] = False
    rec.events.clear()
    assert ctx.run_sync().unwrap().state == {"fit": 1, "score": 1, "end": 1}  # the sub-pipeline did not run again
    assert [e.stage_address for e in rec.where("stage:start")] == ["train", "end"]

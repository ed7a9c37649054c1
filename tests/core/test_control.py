"""SPEC 2 interactive control: pause requests, breakpoints, stepping, editing state."""

import asyncio

import pytest

from pipenb import Pause, Pipeline, PipelineError, Stage, Step

from ..conftest import add, arun, linear


def test_router_pause_writes_checkpoint_atomically_with_stage(make):
    p = Pipeline("p", stages=[
        Stage("a", steps=[Step("x", add("n"))], router=lambda s, r: Pause("b", timeout=2.5, persist=True)),
        Stage("b", steps=[Step("y", add("m"))]),
    ])
    factory, ctx, _ = make(p)
    res = ctx.run_sync().unwrap()
    assert res.status == "paused" and ctx.status == "paused" and res.state == {"n": 1}
    cp = res.checkpoint
    assert (cp.run_id, cp.pipeline_id, cp.resume_at, cp.paused_at_stage_id) == (ctx.run_id, "p", ("b",), "a")
    assert cp.paused_on.endswith("Z") and "T" in cp.paused_on
    from datetime import datetime, timezone

    when = datetime.fromisoformat(cp.paused_on.replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 5
    assert ctx.checkpoint == cp
    # persist=True: the registry wrote the artifacts into the checkpoint at pause time.
    assert cp.container_bundle == {"version": 1, "artifacts": {"a/x": {"n": 1}}}
    done = ctx.run_sync().unwrap()
    assert done.state == {"n": 1, "m": 1} and ctx.checkpoint is None


def test_request_pause_stops_at_the_next_boundary(make):
    holder = {}

    def ask(state):
        holder["ctx"].request_pause(timeout=7)
        return {"asked": True}

    p = Pipeline("p", steps=[Step("a", ask), Step("b", add("n")), Step("c", add("n"))])
    _, ctx, rec = make(p)
    holder["ctx"] = ctx
    res = ctx.run_sync().unwrap()
    assert res.status == "paused" and res.checkpoint.resume_at == ("b",) and res.state == {"asked": True}
    pp = rec.where("pipeline:paused")[0]
    assert (pp.reason, pp.pause_timeout) == ("request", 7)
    holder["ctx"] = type("X", (), {"request_pause": lambda self, timeout=None: None})()
    assert ctx.run_sync().unwrap().state == {"asked": True, "n": 2}


def test_request_pause_from_another_task_while_running(make):
    async def slow(state):
        await asyncio.sleep(0.02)
        return {"n": state.get("n", 0) + 1}

    p = Pipeline("p", steps=[Step(f"s{i}", slow) for i in range(20)])
    _, ctx, _ = make(p)

    async def main():
        task = ctx.start()
        await asyncio.sleep(0.05)
        ctx.request_pause()
        return await task

    res = arun(main()).unwrap()
    assert res.status == "paused" and 1 <= res.state["n"] < 20


def test_breakpoints_pause_before_a_stage_and_resume_past_it(make):
    training = Pipeline("training", steps=[Step("fit", add("fit")), Step("score", add("score"))])
    p = Pipeline("etl", stages=[Stage("load", steps=[Step("l", add("load"))]), Stage("train", pipeline=training),
                                Stage("end", steps=[Step("e", add("end"))])])
    _, ctx, rec = make(p)
    ctx.breakpoints.update({"train/score", "end"})
    first = ctx.run_sync().unwrap()
    assert first.status == "paused" and first.checkpoint.resume_at == ("train", "score")
    assert first.state == {"load": 1, "fit": 1}
    assert rec.where("pipeline:paused")[-1].reason == "breakpoint"
    second = ctx.run_sync().unwrap()
    assert second.checkpoint.resume_at == ("end",) and second.state == {"load": 1, "fit": 1, "score": 1}
    third = ctx.run_sync().unwrap()
    assert third.status == "completed" and third.state["end"] == 1


def test_step_runs_exactly_one_stage(make):
    _, ctx, rec = make(linear(n=3))
    r1 = arun(ctx.step()).unwrap()
    assert r1.status == "paused" and r1.state == {"n": 1} and r1.checkpoint.resume_at == ("s1",)
    assert rec.where("pipeline:paused")[-1].reason == "step"
    r2 = arun(ctx.step()).unwrap()
    assert r2.state == {"n": 2}
    r3 = arun(ctx.step()).unwrap()
    assert r3.status == "completed" and r3.state == {"n": 3}


def test_step_walks_into_sub_pipelines(make):
    training = Pipeline("training", steps=[Step("fit", add("fit")), Step("score", add("score"))])
    p = Pipeline("etl", stages=[Stage("load", steps=[Step("l", add("load"))]), Stage("train", pipeline=training)])
    _, ctx, _ = make(p)
    positions = []
    while True:
        res = arun(ctx.step()).unwrap()
        if res.status != "paused":
            break
        positions.append(ctx.position)
    assert positions == ["train/fit", "train/score"]
    assert ctx.state == {"load": 1, "fit": 1, "score": 1}


def test_update_state_edits_a_paused_run(make):
    p = Pipeline("p", stages=[
        Stage("a", steps=[Step("x", add("n"))], router=lambda s, r: Pause("b")),
        Stage("b", steps=[Step("y", lambda s: {"double": s["n"] * 2})]),
    ])
    _, ctx, _ = make(p)
    ctx.run_sync()
    ctx.update_state({"n": 21})
    assert ctx.state == {"n": 21}
    assert ctx.run_sync().unwrap().state == {"n": 21, "double": 42}
    with pytest.raises(PipelineError, match="completed"):
        ctx.update_state({"n": 1})


def test_update_state_is_refused_while_running_and_for_bad_patches(make):
    async def slow(state):
        await asyncio.sleep(0.05)

    _, ctx, _ = make(Pipeline("p", steps=[Step("s", slow)]))
    with pytest.raises(TypeError):
        ctx.update_state([1])
    with pytest.raises(PipelineError, match="__pipeline_data__"):
        ctx.update_state({"__pipeline_data__": 1})

    async def main():
        task = ctx.start()
        await asyncio.sleep(0.01)
        with pytest.raises(PipelineError, match="running"):
            ctx.update_state({"x": 1})
        return await task

    assert arun(main()).is_ok


def test_abort_while_paused_then_run_continues(make):
    p = Pipeline("p", stages=[Stage("a", steps=[Step("x", add("n"))], router=lambda s, r: Pause("b")),
                              Stage("b", steps=[Step("y", add("n"))])])
    _, ctx, _ = make(p)
    ctx.run_sync()
    ctx.abort("later")
    assert ctx.status == "aborted"
    assert ctx.run_sync().unwrap().state == {"n": 2}


def test_abort_from_another_thread(make):
    import threading

    async def long(state):
        await asyncio.sleep(30)

    _, ctx, rec = make(Pipeline("p", steps=[Step("long", long)]))

    async def main():
        task = ctx.start()
        while not rec.where("step:start"):
            await asyncio.sleep(0.001)
        threading.Thread(target=ctx.abort, args=("thread",)).start()
        return await asyncio.wait_for(task, 5)

    res = arun(main())
    assert res.is_err and res.error.reason == "thread" and ctx.status == "aborted"

"""SPEC 3: the twelve events, their fields, order, paths and delivery."""

import asyncio
import dataclasses
import json

import pytest

from pipenb import EVENT_NAMES, Pause, Pipeline, PipelineFactory, Stage, Step

from ..conftest import add, stage

FIELDS = {
    "pipeline:start": {"pipeline_id", "entry", "state", "resumed"},
    "pipeline:success": {"final_state", "status"},
    "pipeline:paused": {"checkpoint", "final_state", "pause_timeout", "reason"},
    "pipeline:failure": {"error", "state"},
    "stage:start": {"stage_id", "label"},
    "stage:success": {"stage_id", "results", "next", "duration"},
    "stage:failure": {"stage_id", "error", "duration"},
    "stage:paused": {"stage_id", "instruction", "duration"},
    "step:start": {"stage_id", "step_id"},
    "step:success": {"stage_id", "step_id", "patch", "duration"},
    "step:failure": {"stage_id", "step_id", "error", "duration"},
    "step:progress": {"stage_id", "step_id", "done", "total", "message"},
}


def all_events_pipeline():
    calls = {"n": 0}

    def flaky(state):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first try fails")
        return {"ok": True}

    return Pipeline("p", stages=[
        Stage("a", steps=[Step("x", add("n"))], label="Stage A", router=lambda s, r: Pause("b", timeout=5)),
        Stage("b", steps=[Step("f", flaky)]),
    ])


def test_every_event_has_exactly_the_spec_fields(make):
    factory, ctx, rec = make(all_events_pipeline())
    ctx.run_sync()          # pauses after a
    ctx.run_sync()          # b fails
    ctx.run_sync()          # b succeeds
    # step:progress (SPEC 8), from a step reporting progress in a later run under the same id
    q = Pipeline("q", steps=[Step("p", lambda s, c: c.progress(1, 2, "half"))])
    other = PipelineFactory(q, registry=None).prepare_sync(run_id=ctx.run_id).unwrap()
    other.on("step:progress", rec.events.append)
    other.run_sync()
    assert set(rec.names) == set(EVENT_NAMES) == set(FIELDS)
    for e in rec.events:
        names = {f.name for f in dataclasses.fields(e)}
        assert names == {"name", "run_id", "path", "time"} | FIELDS[e.name], e.name
        assert e.run_id == ctx.run_id
        with pytest.raises(dataclasses.FrozenInstanceError):
            e.name = "changed"
        d = e.to_dict()
        json.dumps(d)  # plain data
        assert d["name"] == e.name and set(d) == names


def test_emission_order_of_a_run(make):
    _, ctx, rec = make(all_events_pipeline())
    ctx.run_sync()
    assert rec.trace() == [
        ("pipeline:start", None), ("stage:start", "a"), ("step:start", "a"), ("step:success", "a"),
        ("stage:paused", "a"), ("pipeline:paused", None),
    ]
    rec.events.clear()
    ctx.run_sync()
    assert rec.names == ["pipeline:start", "stage:start", "step:start", "step:failure", "stage:failure",
                         "pipeline:failure"]
    rec.events.clear()
    ctx.run_sync()
    assert rec.names == ["pipeline:start", "stage:start", "step:start", "step:success", "stage:success",
                         "pipeline:success"]


def test_event_payloads(make):
    _, ctx, rec = make(all_events_pipeline(), initial_state={"n": 1})
    ctx.run_sync()
    start = rec.where("pipeline:start")[0]
    assert (start.pipeline_id, start.entry, start.state, start.resumed) == ("p", "a", {"n": 1}, False)
    assert rec.where("stage:start")[0].label == "Stage A"
    assert rec.where("step:success")[0].patch == {"n": 2}
    sp = rec.where("stage:paused")[0]
    assert sp.instruction == Pause("b", timeout=5) and sp.duration >= 0
    pp = rec.where("pipeline:paused")[0]
    assert pp.pause_timeout == 5 and pp.reason == "router" and pp.final_state == {"n": 2}
    assert pp.checkpoint.resume_at == ("b",) and pp.checkpoint.paused_at_stage_label == "Stage A"
    rec.events.clear()
    ctx.run_sync()
    again = rec.where("pipeline:start")[0]
    assert again.resumed is True and again.entry == "b"
    failure = rec.where("pipeline:failure")[0]
    assert "first try fails" in str(failure.error) and failure.state == {"n": 2}
    assert rec.where("step:failure")[0].step_id == "f"
    rec.events.clear()
    ctx.run_sync()
    ss = rec.where("stage:success")[0]
    assert ss.results == {"f": {"ok": True}} and ss.next is None and ss.duration >= 0
    ps = rec.where("pipeline:success")[0]
    assert ps.status == "completed" and ps.final_state == {"n": 2, "ok": True}
    assert all(isinstance(e.time, float) and e.time > 1.7e9 for e in rec.events)


def test_pausing_stage_never_emits_stage_success(make):
    p = Pipeline("p", stages=[stage("a", add("n"), router=lambda s, r: Pause("a") if s["n"] < 3 else None)])
    _, ctx, rec = make(p)
    while ctx.run_sync().unwrap().status == "paused":
        pass
    assert len(rec.where("stage:paused")) == 2 and len(rec.where("stage:success")) == 1


def test_async_handlers_are_awaited_in_emission_order(make):
    log = []

    async def slow(e):
        await asyncio.sleep(0.001)
        log.append(("async", e.name))

    def fast(e):
        log.append(("sync", e.name))

    p = Pipeline("p", steps=[Step("a", add("n"))])
    _, ctx, _ = make(p)
    ctx.on("*", slow)
    ctx.on("*", fast)
    ctx.run_sync()
    names = [n for _, n in log]
    # Each event reaches both handlers (async first, awaited) before the next event is emitted.
    assert names == [n for n in names[::2] for _ in range(2)]
    assert log[:2] == [("async", "pipeline:start"), ("sync", "pipeline:start")]


def test_named_and_wildcard_listeners(make):
    _, ctx, rec = make(Pipeline("p", steps=[Step("a", add("n")), Step("b", add("n"))]))
    only = []
    ctx.on("stage:success", only.append)
    ctx.run_sync()
    assert [e.stage_id for e in only] == ["a", "b"]
    assert len(rec.events) == 10


def test_paths_of_nested_events(make):
    inner = Pipeline("inner", steps=[Step("x", add("n"))])
    p = Pipeline("outer", stages=[Stage("sub", pipeline=inner)])
    _, ctx, rec = make(p)
    ctx.run_sync()
    assert [(e.name, e.path) for e in rec.events] == [
        ("pipeline:start", (("outer", None),)),
        ("stage:start", (("outer", "sub"),)),
        ("pipeline:start", (("outer", "sub"), ("inner", None))),
        ("stage:start", (("outer", "sub"), ("inner", "x"))),
        ("step:start", (("outer", "sub"), ("inner", "x"))),
        ("step:success", (("outer", "sub"), ("inner", "x"))),
        ("stage:success", (("outer", "sub"), ("inner", "x"))),
        ("pipeline:success", (("outer", "sub"), ("inner", None))),
        ("stage:success", (("outer", "sub"),)),
        ("pipeline:success", (("outer", None),)),
    ]
    assert rec.events[3].to_dict()["path"] == [
        {"pipeline_id": "outer", "stage_id": "sub"}, {"pipeline_id": "inner", "stage_id": "x"}
    ]

"""``ctx.record()``: an EventLog holds the same events a ``"*"`` listener hears, compactly."""

import dataclasses
import json
import gc
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings

from pipenb import EventLog, PathNode, Pause, Pipeline, PipelineFactory, Stage, Step

from ..conftest import add
from ..pipegen import build, pipeline_specs
from .test_events import all_events_pipeline


def comparable(event) -> str:
    """An event's content, minus what differs from one run to the next (clocks, the run id)."""
    d = event.to_dict()
    d.pop("time")
    d.pop("duration", None)
    if d.get("checkpoint"):
        d["checkpoint"].pop("paused_on")
    return json.dumps(d, sort_keys=True).replace(event.run_id, "<run>")


def test_a_log_holds_the_events_a_listener_hears(make):
    _, ctx, rec = make(all_events_pipeline())
    log = ctx.record()
    for _ in range(3):  # pause, failure, success: every kind of event
        ctx.run_sync()
    assert isinstance(log, EventLog) and len(log) == len(rec.events) > 15
    # A "*" listener is there: the log keeps the very objects it got.
    assert all(a is b for a, b in zip(log, rec.events, strict=True))
    assert log.names() == rec.names
    assert log.paths() == [e.path for e in rec.events]


def test_a_log_alone_builds_equal_frozen_events_on_read(make, registry):
    _, heard_ctx, rec = make(all_events_pipeline())
    ctx = PipelineFactory(all_events_pipeline(), registry=registry).prepare_sync().unwrap()
    log = ctx.record()  # nobody listens to this run: events are built only when read
    for c in (heard_ctx, ctx):
        for _ in range(3):
            c.run_sync()
    assert len(log) == len(rec.events)
    for built, heard in zip(log, rec.events, strict=True):
        assert type(built) is type(heard) and built is not heard
        assert dataclasses.fields(built) == dataclasses.fields(heard)
        assert built.run_id == ctx.run_id and built.time > 0
        assert comparable(built) == comparable(heard)
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.name = "changed"
    assert log[-1].name == "pipeline:success" and log[-1] == log[len(log) - 1]
    assert [e.name for e in log[2:5]] == log.names(2, 5)
    with pytest.raises(IndexError, match=ctx.run_id):
        log[len(log)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipeline_specs())
def test_logged_events_equal_heard_events_for_random_pipelines(spec):
    def run(listen: bool):
        f = PipelineFactory(build(spec), registry=None)
        ctx = f.prepare_sync(run_id="r").unwrap()
        heard = []
        if listen:
            ctx.on("*", heard.append)
        log = ctx.record()
        for _ in range(200):
            if ctx.run_sync().unwrap().status != "paused":
                break
        return heard, list(log)

    heard, _ = run(listen=True)
    _, logged = run(listen=False)
    assert [comparable(e) for e in logged] == [comparable(e) for e in heard]


def test_a_log_records_from_when_it_opens_until_it_closes(make):
    p = Pipeline("p", stages=[Stage(s, steps=[Step("x", add("n"))]) for s in "abc"])
    _, ctx, rec = make(p)
    opened = {}

    def at_start(event):  # open a log when b starts, close it when c starts
        if event.stage_id == "b":
            opened["b"] = ctx.record()
        if event.stage_id == "c":
            opened["b"].close()

    ctx.on("stage:start", at_start)
    with ctx.record() as whole:
        ctx.run_sync()
    b = opened["b"]
    assert whole.closed and b.closed
    assert whole.names() == rec.names
    # b's own stage:start was already recorded when its listener opened the log.
    assert b.names() == ["step:start", "step:success", "stage:success", "stage:start"]
    assert {e.stage_id for e in b} == {"b", "c"}
    whole.clear()
    assert len(whole) == 0 and list(whole) == [] and whole.names() == []
    assert "closed" in repr(whole) and ctx.run_id in repr(whole)


def test_a_run_records_only_while_a_log_is_open(make):
    p = Pipeline("p", stages=[Stage("a", steps=[Step("x", add("n"))], router=lambda s, r: Pause("a"))])
    _, ctx, rec = make(p)
    log = ctx.record()
    assert ctx.run_sync().unwrap().status == "paused"
    n = len(log)
    assert n == len(rec.events) and log[-1].name == "pipeline:paused"
    log.clear()  # an open log forgets, and goes on recording
    ctx.run_sync()
    assert len(log) == n and log[0].name == "pipeline:start" and log[0].resumed
    log.close()
    ctx.run_sync()
    assert len(log) == n  # closed: the third run is not in it
    later = ctx.record()
    ctx.run_sync()
    assert len(later) == n and later[0].run_id == ctx.run_id
    del later, log  # nobody holds a log any more: the run stops recording
    assert not ctx.recording
    ctx.record()    # dropped at once
    assert not ctx.recording


def test_last_by_path_finds_where_each_stage_is(make):
    sub = Pipeline("sub", stages=[Stage("fit", steps=[Step("x", add("n"))])])
    p = Pipeline("p", stages=[Stage("a", steps=[Step("x", add("n"))]), Stage("train", pipeline=sub),
                             Stage("b", steps=[Step("x", add("n"))])])
    _, ctx, rec = make(p)
    log = ctx.record()
    ctx.run_sync()
    closing = ("stage:start", "stage:success")
    last = log.last_by_path(closing)
    fit = (PathNode("p", "train"), PathNode("sub", "fit"))
    assert set(last) == {(PathNode("p", "a"),), (PathNode("p", "train"),), (PathNode("p", "b"),), fit}
    assert all(log[i].name == "stage:success" for i in last.values())
    assert log[last[fit]].stage_address == "train/fit"
    # Only some paths, and only part of the log: the newest match before `stop`.
    stop = log.names().index("stage:success") + 1  # a's success
    assert log.last_by_path(closing, 0, stop) == {(PathNode("p", "a"),): stop - 1}
    only = log.last_by_path(["stage:start"], paths=[fit, (PathNode("p", "nope"),)])
    assert list(only) == [fit] and log[only[fit]].name == "stage:start"
    with pytest.raises(ValueError, match="stage:begin"):
        log.last_by_path(["stage:begin"])


def test_recording_costs_far_less_memory_than_keeping_events():
    p = Pipeline("p", stages=[Stage(f"s{i}", steps=[Step("x", add("n"))]) for i in range(2000)])

    def grown(keep) -> float:
        # history=False: this measures what recording events costs, not the stage history
        ctx = PipelineFactory(p, registry=None, history=False).prepare_sync().unwrap()
        held = keep(ctx)
        gc.collect()  # garbage of earlier tests freed now, not counted against this run
        tracemalloc.start()
        ctx.run_sync()
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert held
        return size / (2000 * 4)

    def listener(ctx):
        events = []
        ctx.on("*", events.append)
        return [events]

    # What the run keeps anyway (its state, the context's per-stage event paths) is no cost of either way.
    kept_anyway = grown(lambda ctx: [ctx])
    per_event_logged = grown(lambda ctx: [ctx.record()]) - kept_anyway
    per_event_heard = grown(listener) - kept_anyway
    # Four kept events per stage: the log keeps rows of references, the listener objects.
    assert per_event_logged < per_event_heard / 2, (per_event_logged, per_event_heard, kept_anyway)

"""Lifecycle bugs a user would notice, each pinned by one test through the public API.

Interrupts, aborts from other threads and from the loop, pauses that expire
or never do, a context that lost its run to a newer one, bad values given to
prepare, and the stage graph following a run.
"""

import asyncio
import threading
import time

import pytest

from pipenb import (
    AbortedError, DefinitionError, Pause, Pipeline, PipelineFactory, PrepareError, Stage, Step, StepError,
)

from ..conftest import add, arun, wait_for


def counted(key, calls):
    """``add(key)`` that also counts its calls in ``calls[key]``."""
    inner = add(key)

    def action(state):
        calls[key] = calls.get(key, 0) + 1
        return inner(state)

    action.__name__ = f"counted_{key}"
    return action


def record_of(registry, run_id):
    return [r for r in registry.runs() if r.run_id == run_id][0]


# -- 1. KeyboardInterrupt inside a sync step ---------------------------------------------


def _interruptible():
    calls = {}
    broken = {"on": True}

    def b(state):
        calls["b"] = calls.get("b", 0) + 1
        if broken["on"]:
            raise KeyboardInterrupt
        return {"b": state.get("b", 0) + 1}

    p = Pipeline("ki", stages=[
        Stage("a", steps=[Step("a0", counted("a", calls))]),
        Stage("b", steps=[Step("b0", b)]),
        Stage("c", steps=[Step("c0", counted("c", calls))]),
    ])
    return p, calls, broken


def _check_interrupted(ctx):
    assert ctx.status == "aborted"
    assert ctx.state.get("a") == 1
    assert "b" not in ctx.state
    assert "c" not in ctx.state
    assert tuple(ctx.checkpoint.resume_at) == ("b",)


def test_keyboard_interrupt_in_sync_step_aborts_and_retry_applies_stage_once(make):
    p, calls, broken = _interruptible()
    _, ctx, _ = make(p)
    with pytest.raises(KeyboardInterrupt):
        ctx.run_sync()
    _check_interrupted(ctx)

    broken["on"] = False
    res = ctx.run_sync()
    assert res.is_ok, res
    assert res.value.status == "completed"
    assert ctx.status == "completed"
    assert dict(ctx.state) == {"a": 1, "b": 1, "c": 1}
    assert calls == {"a": 1, "b": 2, "c": 1}  # b: the interrupted call and the retry


@pytest.mark.parametrize("expired", [False, True], ids=["live", "rebuilt"])
def test_keyboard_interrupt_then_resume_by_run_id(make, registry, expired):
    p, calls, broken = _interruptible()
    factory, ctx, _ = make(p)
    with pytest.raises(KeyboardInterrupt):
        ctx.run_sync()
    _check_interrupted(ctx)
    if expired:
        assert registry.expire(ctx.run_id)

    broken["on"] = False
    again = factory.resume_sync(ctx.run_id).unwrap()
    assert (again is ctx) is not expired
    res = again.run_sync()
    assert res.is_ok, res
    assert res.value.status == "completed"
    assert dict(again.state) == {"a": 1, "b": 1, "c": 1}
    assert calls == {"a": 1, "b": 2, "c": 1}


# -- 2. patches that cannot be merged ------------------------------------------------------


def _self_referencing(state):
    d = {}
    d["me"] = d
    return {"x": d}


def _deep(state):
    d = {}
    for _ in range(5000):
        d = {"k": d}
    return {"x": d}


@pytest.mark.parametrize("bad", [_self_referencing, _deep], ids=["self-referencing", "5000-deep"])
def test_unmergeable_patch_is_a_step_error_and_resumable(make, bad):
    fixed = {"on": False}

    def b(state):
        return {"x": 1} if fixed["on"] else bad(state)

    p = Pipeline("deep", stages=[
        Stage("a", steps=[Step("a0", add("a"))]),
        Stage("b", steps=[Step("evil_step", b)]),
        Stage("c", steps=[Step("c0", add("c"))]),
    ])
    _, ctx, _ = make(p)
    res = ctx.run_sync()
    assert res.is_err
    err = res.error
    assert isinstance(err, StepError), repr(err)
    assert err.step_id == "evil_step"
    assert "evil_step" in str(err)
    assert ctx.status == "failed"
    assert "x" not in ctx.state
    assert tuple(ctx.checkpoint.resume_at) == ("b",)

    fixed["on"] = True
    res = ctx.run_sync()
    assert res.is_ok, res
    assert res.value.status == "completed"
    assert dict(ctx.state) == {"a": 1, "x": 1, "c": 1}


# -- 3. abort from another thread while a sync step runs ----------------------------------


def _blocking_pipeline(calls, gate):
    """Stage b's step blocks (inline, on the loop) until ``gate["release"]`` is set, unless open."""

    def b(state):
        calls["b"] = calls.get("b", 0) + 1
        if gate["block"]:
            gate["started"].set()
            assert gate["release"].wait(5), "the test never released the step"
        return {"b": state.get("b", 0) + 1}

    async def c(state):
        await asyncio.sleep(0.05)  # an awaited step: where a leaked cancellation would land
        calls["c"] = calls.get("c", 0) + 1
        return {"c": state.get("c", 0) + 1}

    return Pipeline("blk", stages=[
        Stage("a", steps=[Step("a0", counted("a", calls))]),
        Stage("b", steps=[Step("b0", b)]),
        Stage("c", steps=[Step("c0", c)]),
    ])


def _gate():
    return {"block": True, "started": threading.Event(), "release": threading.Event()}


def _abort_from_thread(ctx, gate):
    def other():
        assert gate["started"].wait(5)
        ctx.abort("from a thread")
        gate["release"].set()

    t = threading.Thread(target=other)
    t.start()
    return t


def _check_aborted(res, ctx):
    assert res.is_err
    assert isinstance(res.error, AbortedError), repr(res.error)
    assert ctx.status == "aborted"
    assert "b" not in ctx.state
    assert tuple(ctx.checkpoint.resume_at) == ("b",)


def test_abort_from_thread_during_sync_step_then_retry_run_sync(make):
    calls, gate = {}, _gate()
    _, ctx, _ = make(_blocking_pipeline(calls, gate))
    t = _abort_from_thread(ctx, gate)
    res = ctx.run_sync()
    t.join(5)
    _check_aborted(res, ctx)

    gate["block"] = False
    res = ctx.run_sync()
    assert res.is_ok, res
    assert res.value.status == "completed"
    assert dict(ctx.state) == {"a": 1, "b": 1, "c": 1}
    assert calls == {"a": 1, "b": 2, "c": 1}


def test_abort_from_thread_during_sync_step_then_retry_in_same_loop(make):
    calls, gate = {}, _gate()
    _, ctx, _ = make(_blocking_pipeline(calls, gate))

    async def main():
        t = _abort_from_thread(ctx, gate)
        first = await ctx.run()
        t.join(5)
        _check_aborted(first, ctx)
        gate["block"] = False
        second = await ctx.run()  # must not receive the first attempt's queued cancellation
        await asyncio.sleep(0.05)  # and nothing is left to cancel the loop's main task afterwards
        return first, second

    first, second = arun(main())
    assert second.is_ok, second
    assert second.value.status == "completed"
    assert ctx.status == "completed"
    assert dict(ctx.state) == {"a": 1, "b": 1, "c": 1}
    assert calls == {"a": 1, "b": 2, "c": 1}


# -- 4. abort while an async listener is awaited --------------------------------------------


def test_abort_interrupts_awaited_async_listener_promptly(make):
    p = Pipeline("lis", stages=[
        Stage("a", steps=[Step("a0", add("a"))]),
        Stage("b", steps=[Step("b0", add("b"))]),
    ])
    _, ctx, _ = make(p)

    async def slow(event):
        await asyncio.sleep(2)

    ctx.on("stage:success", slow)

    async def main():
        loop = asyncio.get_running_loop()
        task = ctx.start()
        loop.call_later(0.1, ctx.abort)
        t0 = time.monotonic()
        res = await task
        return res, time.monotonic() - t0

    res, elapsed = arun(main())
    assert elapsed < 0.5, f"abort took {elapsed:.2f} s to land"
    assert res.is_err and isinstance(res.error, AbortedError), res
    assert ctx.status == "aborted"


# -- 5. a paused run that is then aborted is still released by its timer -----------------


def test_paused_then_aborted_run_is_released_when_timer_fires(make, registry):
    p = Pipeline("pa", stages=[
        Stage("a", steps=[Step("a0", add("a"))], router=lambda s: Pause("b", timeout=0.3), routes=["b"]),
        Stage("b", steps=[Step("b0", add("b"))]),
    ])
    _, ctx, _ = make(p)
    res = ctx.run_sync()
    assert res.is_ok and res.value.status == "paused", res
    assert record_of(registry, ctx.run_id).live is True
    ctx.abort()
    assert ctx.status == "aborted"
    wait_for(lambda: record_of(registry, ctx.run_id).live is False, timeout=3.0)


# -- 6. an old context of a run resumed after expiry is not its driver anymore ------------


def test_old_context_refuses_after_expiry_and_resume(make, registry):
    calls = {}
    p = Pipeline("gen", stages=[
        Stage("a", steps=[Step("a0", counted("a", calls))], router=lambda s: Pause("b"), routes=["b"]),
        Stage("b", steps=[Step("b0", counted("b", calls))]),
        Stage("c", steps=[Step("c0", counted("c", calls))]),
    ])
    factory, old, _ = make(p)
    res = old.run_sync()
    assert res.is_ok and res.value.status == "paused", res
    assert registry.expire(old.run_id)

    new = factory.resume_sync(old.run_id).unwrap()
    assert new is not old

    stale = old.run_sync()
    assert stale.is_err
    assert old.run_id in str(stale.error)

    res = new.run_sync()
    assert res.is_ok, res
    assert res.value.status == "completed"
    assert dict(new.state) == {"a": 1, "b": 1, "c": 1}

    stale = old.run_sync()  # still refused once the run has ended
    assert stale.is_err
    assert old.run_id in str(stale.error)
    assert calls == {"a": 1, "b": 1, "c": 1}


# -- 7. pause timeouts: infinite, huge, nan -------------------------------------------------


def _pausing(pid, timeout):
    return Pipeline(pid, stages=[
        Stage("a", steps=[Step("a0", add("a"))], router=lambda s: Pause("b", timeout=timeout), routes=["b"]),
        Stage("b", steps=[Step("b0", add("b"))]),
    ])


@pytest.mark.parametrize("timeout", [float("inf"), 1e12], ids=["inf", "1e12"])
def test_endless_pause_is_held_and_timers_keep_working(make, registry, timeout):
    _, ctx, _ = make(_pausing("long", timeout))
    res = ctx.run_sync()
    assert res.is_ok and res.value.status == "paused", res
    rec = record_of(registry, ctx.run_id)
    assert rec.live is True
    if timeout == float("inf"):
        assert rec.expires_at is None

    _, short, _ = make(_pausing("short", 0.2))
    res = short.run_sync()
    assert res.is_ok and res.value.status == "paused", res
    wait_for(lambda: record_of(registry, short.run_id).live is False, timeout=3.0)
    assert record_of(registry, ctx.run_id).live is True  # the long one is still held


def test_nan_pause_timeouts_are_refused(make):
    with pytest.raises(Exception, match="nan"):
        Pause("b", timeout=float("nan"))
    _, ctx, _ = make(_pausing("nanp", None))
    with pytest.raises(ValueError, match="nan"):
        ctx.request_pause(float("nan"))


# -- 8. error classes --------------------------------------------------------------------------


def test_bad_routes_is_a_definition_error():
    with pytest.raises(DefinitionError):
        Stage("a", steps=[Step("a0", add("a"))], routes=5)


@pytest.mark.parametrize("kwargs, named", [
    ({"entry": "nope"}, "nope"),
    ({"run_id": 5}, "5"),
    ({"initial_state": [1, 2]}, "[1, 2]"),
], ids=["entry", "run_id", "initial_state"])
def test_bad_prepare_values_are_prepare_errors(registry, kwargs, named):
    factory = PipelineFactory(_pausing("prep", None), registry=registry)
    res = factory.prepare_sync(**kwargs)
    assert res.is_err
    assert isinstance(res.error, PrepareError), repr(res.error)
    assert named in str(res.error)


def test_raising_initial_state_factory_is_a_prepare_error(registry):
    def boom():
        raise RuntimeError("no state today")

    factory = PipelineFactory(_pausing("prep2", None), initial_state_factory=boom, registry=registry)
    res = factory.prepare_sync()  # does not raise
    assert res.is_err
    assert isinstance(res.error, PrepareError), repr(res.error)
    assert "RuntimeError" in str(res.error)
    assert "no state today" in str(res.error)


# -- 9 and 10. the stage graph ---------------------------------------------------------------


def _ab():
    return Pipeline("g", stages=[
        Stage("a", steps=[Step("a0", add("a"))]),
        Stage("b", steps=[Step("b0", add("b"))]),
    ])


def test_stage_graph_attach_keeps_breakpoints_set_in_code(make):
    from pipenb.widgets import StageGraph

    p = _ab()
    _, ctx, _ = make(p)
    ctx.breakpoints.add("b")
    graph = StageGraph(p).attach(ctx)
    assert "b" in ctx.breakpoints
    assert "b" in graph.breakpoints
    res = ctx.run_sync()
    assert res.is_ok, res
    assert ctx.status == "paused"
    assert ctx.position == "b"
    assert ctx.state.get("a") == 1 and "b" not in ctx.state
    graph.detach()


def test_artifact_named_like_a_stage_does_not_colour_it(make):
    from pipenb.widgets import StageGraph

    p = _ab()
    _, ctx, _ = make(p)
    ctx.artifacts.put("a/x", 1)
    graph = StageGraph(p).attach(ctx)
    assert graph.status.get("a") != "success"
    graph.detach()


def test_artifact_put_by_a_later_stage_does_not_colour_an_earlier_one(make):
    from pipenb.widgets import StageGraph

    def b(state, sc):
        sc.artifacts.put("a/x", 1)
        return {"b": 1}

    p = Pipeline("g2", stages=[
        Stage("a", steps=[Step("a0", add("a"))]),
        Stage("b", steps=[Step("b0", b)]),
    ])
    _, ctx, _ = make(p, entry="b")
    res = ctx.run_sync()
    assert res.is_ok and res.value.status == "completed", res
    assert "a/x" in ctx.artifacts
    graph = StageGraph(p).attach(ctx)
    assert graph.status.get("a") != "success"
    graph.detach()


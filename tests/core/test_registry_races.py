"""Issue 18, race 1: the registry letting a run go while the user starts it (SPEC 5, 11).

A run prepared (or paused) and left past the registry's timeout is let go
(its artifacts exported, the registry's strong reference dropped). The user
may start that very context object at the same moment, or minutes later (in
a notebook: prepare a run, run it five minutes later). Either way the run
must stay the registry's: its pause is listed as a live paused run and
``factory.resume`` finds it; a run finished through its old object leaves
the registry's list. Each race test repeats its scenario many times under a
CPU hog thread (``cpu_hog``), so the timer thread and the user's thread meet
at shifted points each time.
"""

from __future__ import annotations

import pytest

from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, ResumeError, Stage, Step

from ..conftest import add, wait_for

TRIES = 60


def gate(pid="gate", timeout=60.0):
    """Pauses at ``b`` (for ``timeout`` s) until the state says ``ok``."""
    return Pipeline(
        pid,
        stages=[
            Stage(
                "a",
                steps=[Step("a0", add("a"))],
                router=lambda s: None if s.get("ok") else Pause("b", timeout=timeout),
                routes=["b"],
            ),
            Stage("b", steps=[Step("b0", add("b"))]),
        ],
    )


def record(registry, run_id):
    found = [r for r in registry.runs() if r.run_id == run_id]
    return found[0] if found else None


def assert_held_paused(registry, factory, ctx):
    """What a person sees after a pause: the run listed live and paused, and ``resume`` hands back that run."""
    rec = record(registry, ctx.run_id)
    assert rec is not None and (rec.live, rec.status, rec.paused_at) == (True, "paused", "b"), (
        f"the registry lost the run it let go while it was started: {rec}"
    )
    again = factory.resume_sync(ctx.run_id)
    assert again.is_ok, f"resume of a paused run: {again.error}"
    assert again.value is ctx


# -- the race: the timer lets the prepared run go while the user starts it ---------------------


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "sqlite"])
def test_a_prepared_run_started_as_its_timeout_fires_stays_the_registrys(tmp_path, cpu_hog, durable):
    from pipenb.stores import SqliteStore

    # With SQLite, letting go writes the artifacts into the file: a wider window for a claim to slip into.
    store_factory = SqliteStore.factory(str(tmp_path / "runs.sqlite")) if durable else None
    for i in range(TRIES):
        # A fresh registry each try: its timer fires ~2 ms after prepare, about when run() claims the run.
        registry = PipelineRegistry(default_timeout=0.002)
        factory = PipelineFactory(gate(), store_factory=store_factory, registry=registry)
        try:
            ctx = factory.prepare_sync(initial_state={"i": i}).unwrap()
            res = ctx.run_sync()
            assert res.is_ok and res.value.status == "paused", (i, res)
            assert_held_paused(registry, factory, ctx)
            ctx.update_state({"ok": True})
            assert ctx.run_sync().unwrap().status == "completed"
            assert record(registry, ctx.run_id) is None, "a completed run stays listed"
        finally:
            registry.close()


# -- the same, minutes later: prepare a run, run it after the registry let it go ------------------


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "sqlite"])
def test_a_prepared_run_run_after_its_timeout_pauses_and_resumes(tmp_path, durable):
    from pipenb.stores import SqliteStore

    registry = PipelineRegistry(default_timeout=0.05)
    store_factory = SqliteStore.factory(str(tmp_path / "runs.sqlite")) if durable else None
    factory = PipelineFactory(gate(), store_factory=store_factory, registry=registry)
    try:
        ctx = factory.prepare_sync(initial_state={"x": 1}).unwrap()
        wait_for(lambda: not record(registry, ctx.run_id).live, "the prepared run let go after its timeout")
        res = ctx.run_sync()  # "five minutes later"
        assert res.is_ok and res.value.status == "paused", res
        assert res.value.state == {"x": 1, "a": 1}
        assert_held_paused(registry, factory, ctx)
        # Let go again at its pause's timeout: resume rebuilds it from its store (not "no checkpoint").
        assert registry.expire(ctx.run_id)
        rebuilt = factory.resume_sync(ctx.run_id)
        assert rebuilt.is_ok, f"resume after the second expiry: {rebuilt.error}"
        assert rebuilt.value.state == {"x": 1, "a": 1}
        rebuilt.value.update_state({"ok": True})
        assert rebuilt.value.run_sync().unwrap().status == "completed"
    finally:
        registry.close()


def test_a_paused_run_let_go_then_finished_through_its_old_object_leaves_the_list():
    registry = PipelineRegistry(default_timeout=60)
    factory = PipelineFactory(gate(timeout=0.05), registry=registry)
    try:
        ctx = factory.prepare_sync().unwrap()
        assert ctx.run_sync().unwrap().status == "paused"
        wait_for(lambda: not record(registry, ctx.run_id).live, "the paused run let go after its timeout")
        ctx.update_state({"ok": True})
        assert ctx.run_sync().unwrap().status == "completed"
        rec = record(registry, ctx.run_id)
        assert rec is None, f"a run finished through its old object is still listed: {rec}"
        res = factory.resume_sync(ctx.run_id)
        assert res.is_err and isinstance(res.error, ResumeError)
    finally:
        registry.close()


# -- several contexts of one run in one process ----------------------------------------------------


def test_an_old_context_superseded_in_this_process_says_so_and_resume_gives_the_current_one():
    """Two registries (two factories) in one process: resuming through the second builds a newer context.
    The old one's refusal must not claim it was released (nothing was), and ``resume`` through the first
    factory must not hand back the refused object."""
    first = PipelineFactory(gate(), registry=PipelineRegistry(default_timeout=60))
    second = PipelineFactory(gate(), registry=PipelineRegistry(default_timeout=60))
    try:
        old = first.prepare_sync().unwrap()
        assert old.run_sync().unwrap().status == "paused"
        newer = second.resume_sync(old.run_id).unwrap()
        assert newer is not old
        refused = old.run_sync()
        assert refused.is_err
        msg = str(refused.error)
        assert old.run_id in msg and "released" not in msg, msg
        assert "factory.resume" in msg, msg
        current = first.resume_sync(old.run_id).unwrap()
        assert current is not old, "resume handed back the object that was just refused (a loop)"
        current.update_state({"ok": True})
        assert current.run_sync().unwrap().status == "completed"
    finally:
        first.registry.close()
        second.registry.close()

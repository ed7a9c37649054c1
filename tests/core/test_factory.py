"""SPEC 2: the factory's statelessness, default store provider, atomic commits, display."""

import pytest

from pipenb import (
    InMemoryStore, Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step, StoreError,
)
from pipenb.stores import SqliteStore
from pipenb.stores.memory import default_provider

from ..conftest import add, linear, stage


def gated(pid="gated"):
    return Pipeline(pid, stages=[
        stage("a", add("n"), router=lambda s, r: Pause("b") if not s.get("go") else None),
        stage("b", add("m")),
    ])


def test_factory_holds_only_definition_store_factory_logger_registry():
    f = PipelineFactory(linear())
    # Settings (history) are configuration, not run state.
    assert set(vars(f)) == {"pipeline", "store_factory", "initial_state_factory", "logger", "registry", "history",
                            "executor"}
    ctx = f.prepare_sync().unwrap()
    ctx.run_sync()
    assert set(vars(f)) == {"pipeline", "store_factory", "initial_state_factory", "logger", "registry", "history",
                            "executor"}


def test_a_new_factory_resumes_a_paused_run_in_the_same_process():
    # Fast path through the default registry.
    ctx = PipelineFactory(gated()).prepare_sync().unwrap()
    ctx.run_sync()
    again = PipelineFactory(gated()).resume_sync(ctx.run_id).unwrap()
    assert again is ctx
    # Slow path: no registry at all, the default in-memory provider still has the store.
    ctx2 = PipelineFactory(gated(), registry=None).prepare_sync().unwrap()
    ctx2.run_sync()
    rebuilt = PipelineFactory(gated(), registry=None).resume_sync(ctx2.run_id).unwrap()
    assert rebuilt is not ctx2 and rebuilt.status == "paused" and rebuilt.state == {"n": 1}
    rebuilt.update_state({"go": True})
    assert rebuilt.run_sync().unwrap().state == {"n": 1, "go": True, "m": 1}


def test_default_provider_releases_completed_runs_only():
    f = PipelineFactory(gated(), registry=None)
    paused = f.prepare_sync().unwrap()
    paused.run_sync()
    done = f.prepare_sync(initial_state={"go": True}).unwrap()
    done.run_sync()
    assert paused.run_id in default_provider and done.run_id not in default_provider
    assert done.state == {"go": True, "n": 1, "m": 1}  # the context still shows its final state


def count_commits(store):
    commits = []
    store.subscribe(lambda state: commits.append(dict(state)))
    return commits


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_each_stage_commits_in_one_transaction(tmp_path, kind):
    stores = {}
    sqlite = SqliteStore.factory(tmp_path / "s.sqlite")

    def store_factory(run_id):
        if run_id not in stores:
            stores[run_id] = InMemoryStore() if kind == "memory" else sqlite(run_id)
        return stores[run_id]

    p = Pipeline("p", stages=[
        Stage("a", steps=[Step("x", add("x")), Step("y", add("y")), Step("z", add("z"))]),
        Stage("b", steps=[Step("x", add("x")), Step("y", add("y"))], router=lambda s, r: Pause("a")),
    ])
    ctx = PipelineFactory(p, store_factory=store_factory, registry=None).prepare_sync().unwrap()
    commits = count_commits(ctx.store)
    ctx.run_sync()
    user = [{k: v for k, v in c.items() if not k.startswith("__")} for c in commits]
    # One commit per stage: never a state with only part of a stage's patches.
    assert user == [{"x": 1, "y": 1, "z": 1}, {"x": 2, "y": 2, "z": 1}]
    assert "__pipeline_data__" in commits[-1]  # the pause checkpoint came with stage b
    sqlite.close()


class FailingStore(InMemoryStore):
    """Fails the commit of any transaction once armed (fault injection)."""

    armed = False

    def transaction(self):
        inner = super().transaction()
        store = self

        class Tx:
            def __enter__(self):
                return inner.__enter__()

            def __exit__(self, et, e, tb):
                if et is None and store.armed:
                    inner.__exit__(RuntimeError, RuntimeError("disk full"), None)
                    raise RuntimeError("disk full")
                return inner.__exit__(et, e, tb)

        return Tx()

    def compare_and_set(self, expected, new):  # declares "cannot swap": forces the transaction path
        return False


def test_store_failure_mid_commit_fails_the_run_and_keeps_previous_checkpoint():
    store = FailingStore()
    p = Pipeline("p", stages=[
        stage("a", add("n"), router=lambda s, r: Pause("b")),
        Stage("b", steps=[Step("x", add("n")), Step("y", add("m"))]),
    ])
    f = PipelineFactory(p, store_factory=lambda run_id: store, registry=None)
    ctx = f.prepare_sync().unwrap()
    first = ctx.run_sync().unwrap()
    assert first.status == "paused"
    store.armed = True
    res = ctx.run_sync()
    assert isinstance(res.error, StoreError) and "disk full" in str(res.error) and "'b'" in str(res.error)
    assert ctx.state == {"n": 1}
    assert ctx.checkpoint.resume_at == ("b",)
    store.armed = False
    assert ctx.run_sync().unwrap().state == {"n": 2, "m": 1}


def test_store_factory_errors_name_the_run():
    def broken(run_id):
        raise OSError("no disk")

    res = PipelineFactory(linear(), store_factory=broken, registry=None).prepare_sync(run_id="rid-1")
    assert isinstance(res.error, StoreError) and "rid-1" in str(res.error) and "no disk" in str(res.error)
    res = PipelineFactory(linear(), store_factory=lambda r: object(), registry=None).prepare_sync()
    assert isinstance(res.error, StoreError) and "get()" in str(res.error)


def test_async_store_factory_is_awaited():
    store = InMemoryStore()

    async def factory(run_id):
        return store

    ctx = PipelineFactory(linear(), store_factory=factory, registry=None).prepare_sync().unwrap()
    assert ctx.run_sync().unwrap().state == {"n": 3} and store.get() == {"n": 3}


def test_entry_path_errors_and_sub_pipeline_entry_defaults():
    training = Pipeline("training", steps=[Step("fit", add("fit"))])
    p = Pipeline("etl", stages=[stage("load", add("load")), Stage("train", pipeline=training)])
    f = PipelineFactory(p, registry=None)
    assert f.prepare_sync(entry="train").unwrap().position == "train/fit"
    for bad in (("train", "nope"), ("load", "deeper"), 5):
        res = f.prepare_sync(entry=bad)
        assert res.is_err and "'etl'" in str(res.error), bad


def test_rich_display_escapes_user_text():
    p = Pipeline("p<x>", stages=[stage("a", lambda s: {"<b>key</b>": "<script>"}, label="<i>A</i>")])
    ctx = PipelineFactory(p, registry=PipelineRegistry()).prepare_sync().unwrap()
    res = ctx.run_sync().unwrap()
    from pipenb.display import run_context_html, run_result_html

    for html in (run_context_html(ctx), run_result_html(res)):
        assert "<script>" not in html and "<b>key</b>" not in html and "&lt;script&gt;" in html
    assert "<i>A</i>" not in p._repr_svg_()

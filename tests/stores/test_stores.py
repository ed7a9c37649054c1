"""SPEC 6: one suite run over every DataStore implementation."""

import threading

import pytest

from pipenb import DELETE, FrozenDict, PIPELINE_DATA_KEY, InMemoryStore, StoreError
from pipenb.core.checkpoints import PipelineCheckpoint, clear_checkpoint, read_checkpoint, write_checkpoint
from pipenb.stores import DataStore, SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
def new_store(request, tmp_path):
    """new_store(run_id="r") -> an empty store of the parametrized kind."""
    if request.param == "memory":
        yield lambda run_id="r": InMemoryStore()
        return
    factory = SqliteStore.factory(tmp_path / "runs.sqlite")
    yield lambda run_id="r": factory(run_id)
    factory.close()


def test_store_satisfies_protocol(new_store):
    assert isinstance(new_store(), DataStore)


def test_get_is_a_shared_read_only_snapshot(new_store):
    s = new_store()
    s.set({"a": {"b": [1, 2]}, "big": b"x" * 1000})
    snap = s.get()
    assert s.get() is snap  # O(1): the same object, no copy
    assert isinstance(snap, FrozenDict) and isinstance(snap["a"], FrozenDict)
    with pytest.raises(TypeError, match="read-only"):
        snap["a"]["b"] = 3
    with pytest.raises(TypeError):
        snap["new"] = 1
    with pytest.raises(TypeError):
        snap.update({"x": 1})
    s.set({"c": 1})
    assert "c" not in snap and s.get()["c"] == 1
    assert s.get()["big"] is snap["big"]  # untouched values are shared, not copied


def test_set_deep_merges_and_delete_removes(new_store):
    s = new_store()
    s.set({"cfg": {"lr": 0.1, "layers": {"n": 2, "act": "relu"}}, "tags": [1], "gone": 1})
    s.set({"cfg": {"layers": {"n": 3, "act": DELETE}}, "tags": [2], "gone": DELETE, "new": {"x": DELETE, "y": 1}})
    assert s.get() == {"cfg": {"lr": 0.1, "layers": {"n": 3}}, "tags": [2], "new": {"y": 1}}
    s.set({"cfg": 5})
    assert s.get()["cfg"] == 5


def test_transaction_is_all_or_nothing(new_store):
    s = new_store()
    s.set({"a": 1})
    with pytest.raises(RuntimeError):
        with s.transaction():
            s.set({"a": 2})
            s.set({"b": 3})
            raise RuntimeError("midway")
    assert s.get() == {"a": 1}
    with s.transaction():
        s.set({"a": 2})
        s.set({"b": 3})
    assert s.get() == {"a": 2, "b": 3}


def test_subscribe_gets_one_call_per_commit(new_store):
    s = new_store()
    seen = []
    off = s.subscribe(lambda state: seen.append(dict(state)))
    s.set({"a": 1})
    with s.transaction():
        s.set({"b": 1})
        s.set({"c": 1})
    off()
    s.set({"d": 1})
    assert seen == [{"a": 1}, {"a": 1, "b": 1, "c": 1}]


def test_bad_patch_is_a_store_error(new_store):
    with pytest.raises(StoreError, match="mapping"):
        new_store().set([("a", 1)])


def test_checkpoint_round_trip_and_clear(new_store):
    s = new_store("run-1")
    s.set({"user": 1})
    cp = PipelineCheckpoint("run-1", "pipe", ("a", "b"), "a", "A", "2026-01-01T00:00:00.000Z")
    write_checkpoint(s, cp)
    assert read_checkpoint(s, "pipe", "run-1") == cp
    assert read_checkpoint(s, None, "run-1") == cp
    assert read_checkpoint(s, "other", "run-1") is None
    assert read_checkpoint(s, "pipe", "run-2") is None
    with_bundle = cp.with_bundle({"version": 1, "artifacts": {"m": 1}})
    write_checkpoint(s, with_bundle)
    assert read_checkpoint(s, "pipe", "run-1").container_bundle == {"version": 1, "artifacts": {"m": 1}}
    clear_checkpoint(s, "pipe", "run-1")
    assert read_checkpoint(s, "pipe", "run-1") is None and PIPELINE_DATA_KEY not in s.get()
    assert s.get() == {"user": 1}


def test_concurrent_sets_from_threads_lose_nothing(new_store):
    s = new_store()

    def writer(i):
        for j in range(50):
            s.set({f"t{i}": {str(j): j}})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(s.get()[f"t{i}"]) == 50 for i in range(4))


# -- artifacts (SPEC 15): stores that keep them write them with the commit; the others are asked nothing -------------


def test_artifacts_written_in_a_transaction_are_all_or_nothing(new_store):
    from pipenb.core.artifacts import NotSaved

    s = new_store()
    if not s.keeps_artifacts:  # the memory store: the container in memory is the only copy, nothing to write
        with pytest.raises(NotImplementedError, match="InMemoryStore"):
            s.write_artifacts(0, [("m", 1, True)])
        assert s.load_artifacts() == {}
        return
    with pytest.raises(RuntimeError):
        with s.transaction():
            s.set({"a": 1})
            s.write_artifacts(0, [("m", {"w": 1}, True)])
            raise RuntimeError("midway")
    assert s.load_artifacts() == {} and s.get() == {}
    with s.transaction():
        s.set({"a": 1})
        skipped = s.write_artifacts(0, [("m", {"w": 1}, True), ("lock", threading.Lock(), True), ("v", 2, False)])
    assert set(skipped) == {"lock", "v"} and "cannot be pickled" in skipped["lock"]
    got = s.load_artifacts()
    assert got["m"] == {"w": 1} and isinstance(got["lock"], NotSaved) and isinstance(got["v"], NotSaved)
    s.write_artifacts(3, [("m", {"w": 2}, True)])  # outside a transaction: at once
    assert s.load_artifacts()["m"] == {"w": 2} and s.load_artifacts(before=3)["m"] == {"w": 1}


@pytest.fixture(params=["memory", "sqlite"])
def provider(request, tmp_path):
    """A store_factory of the parametrized kind."""
    if request.param == "memory":
        from pipenb.core.store import MemoryStoreProvider

        yield MemoryStoreProvider()
        return
    factory = SqliteStore.factory(tmp_path / "runs.sqlite")
    yield factory
    factory.close()


def test_a_durable_false_artifact_is_there_when_its_run_resumes_in_the_same_kernel(provider):
    from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step

    def put(state, ctx):
        ctx.artifacts.put("scratch", [1, 2], durable=False)
        ctx.artifacts.put("model", {"w": 3})
        return {"a": 1}

    def use(state, ctx):
        return {"sum": sum(ctx.artifacts["scratch"]) + ctx.artifacts["model"]["w"]}

    pipe = Pipeline(
        "volatile",
        stages=[
            Stage("a", steps=[Step("a", put)]),
            Stage(
                "b",
                steps=[Step("b", lambda s: {"b": 1})],
                router=lambda s: None if s.get("go") else Pause("b", timeout=0),
            ),
            Stage("c", steps=[Step("c", use)]),
        ],
    )
    registry = PipelineRegistry()
    factory = PipelineFactory(pipe, store_factory=provider, registry=registry)
    ctx = factory.prepare_sync(run_id="r1").unwrap()
    assert ctx.run_sync().unwrap().status == "paused"
    # timeout=0 lets the context go at once, unless it holds the only copy of an artifact (SQLite: "scratch").
    again = factory.resume_sync("r1").unwrap()
    assert again.artifacts["scratch"] == [1, 2] and again.artifacts["model"] == {"w": 3}
    again.update_state({"go": True})
    assert again.run_sync().unwrap().status == "completed" and again.state["sum"] == 6
    registry.close()

"""SPEC 14: which stage last wrote each top-level key (``History.writers``), the answer the dashboard's state
view shows beside each key: live, after an edit, finished, and read back from a SQLite file."""

import asyncio

from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.stores import SqliteStore


def looping() -> Pipeline:
    return Pipeline(
        "writers",
        stages=[
            Stage(
                "load",
                steps=[Step("l", lambda s: {"n": s.get("n", 0) + 1, "data": [1, 2]})],
                router=lambda s, r: Pause("fit") if s.get("hold") and s["n"] == 1 else None,
            ),
            Stage(
                "fit",
                steps=[Step("f", lambda s: {"model": s["n"] * 10})],
                router=lambda s, r: "load" if s["n"] < 3 else None,
                routes=["load"],
            ),
            Stage("report", steps=[Step("r", lambda s: {"text": f"n={s['n']}", "n": s["n"]})]),
        ],
    )


def test_the_newest_writer_of_each_key_including_edits_and_a_limited_search():
    factory = PipelineFactory(looping(), registry=PipelineRegistry())
    ctx = factory.prepare_sync(initial_state={"hold": True, "seed": 7}).unwrap()
    assert ctx.run_sync().unwrap().status == "paused"
    assert ctx.history.writers() == {"n": "load", "data": "load"}  # live, paused after one stage
    ctx.update_state({"data": [9]})
    assert ctx.history.writers() == {"n": "load", "data": "(edit)"}
    assert ctx.run_sync().unwrap().status == "completed"
    h = ctx.history
    # "report" wrote n last although load wrote it later in no record; "seed" and "hold" came with the
    # initial state: no record wrote them, so they are absent.
    assert h.writers() == {"n": "report", "text": "report", "model": "fit", "data": "load"}
    assert h.writers(["model", "seed"]) == {"model": "fit"}
    assert h.writers([]) == {}


def test_writers_of_a_run_read_back_from_a_sqlite_file(tmp_path):
    db = tmp_path / "runs.sqlite"
    factory = PipelineFactory(looping(), store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    ctx = factory.prepare_sync(run_id="w1").unwrap()
    assert ctx.run_sync().unwrap().status == "completed"
    again = PipelineFactory(looping(), store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    h = asyncio.run(again.run_history("w1"))  # a new factory: the rows come from the file
    assert h.writers() == {"n": "report", "text": "report", "model": "fit", "data": "load"}

"""The dashboard's runs list (SPEC 11): the registry's runs and the store's, size and note, a stored run
picked after a kernel restart (its passed stages green) and resumed or discarded; the store read at most
about once a second; the "pipeline was redefined" notice without a click."""

import asyncio
import threading

from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.display import size_text
from pipenb.stores import SqliteStore
from pipenb.widgets import RunDashboard

from ..conftest import add, arun, eventually


def review(pid="review") -> Pipeline:
    """``load`` and ``check`` commit, ``check``'s router pauses before ``publish``."""
    return Pipeline(pid, stages=[
        Stage("load", steps=[Step("read", lambda s: {"rows": 3})]),
        Stage("check", steps=[Step("x", add("n"))], router=lambda s, r: Pause("publish", timeout=600)),
        Stage("publish", steps=[Step("y", lambda s: {"published": True})]),
    ])


def paused_in(db, pid="review") -> str:
    """A run paused in the SQLite file ``db`` by a kernel that is gone since: its run id."""
    old = PipelineRegistry(default_timeout=60)
    factory = PipelineFactory(review(pid), store_factory=SqliteStore.factory(db), registry=old)
    ctx = factory.prepare_sync().unwrap()
    ctx.run_sync()
    assert ctx.status == "paused" and ctx.position == "publish"
    old.close()
    return ctx.run_id


def restarted(db, pid="review"):
    """A new kernel's registry and factory on the same file."""
    registry = PipelineRegistry(default_timeout=60)
    return registry, PipelineFactory(review(pid), store_factory=SqliteStore.factory(db), registry=registry)


def test_size_text_is_short_and_decimal():
    assert [size_text(n) for n in (None, 0, 999, 640_000, 12_000_000, 1_500_000, 2 * 10**9)] == \
        ["", "0 B", "999 B", "640 kB", "12 MB", "1.5 MB", "2.0 GB"]


def test_a_stored_run_is_listed_picked_with_its_passed_stages_green_and_resumed(tmp_path):
    db = tmp_path / "runs.sqlite"
    run_id = paused_in(db)
    registry, factory = restarted(db)

    async def scenario():
        dash = RunDashboard(factory)
        assert [(r.run_id, r.live, r.status) for r in factory.runs()] == [(run_id, False, "paused")]
        cells = dash.runs.row(run_id)["cells"]
        assert cells[2:6] == ["paused", "publish", "in the store", ""]  # no size: not held in memory
        assert dash.runs.row(run_id)["actions"] == ["resume", "discard"]
        dash.runs.value = run_id  # a click on its row
        await eventually(lambda: dash.ctx is not None)
        ctx = dash.ctx
        assert ctx.run_id == run_id and ctx.status == "paused" and ctx.state["rows"] == 3
        assert registry.get_live_context(run_id) is ctx  # resumed through the factory: registered
        await eventually(lambda: dash.graph.status == {"load": "success", "check": "success", "publish": "paused"})
        assert [r["cells"][1] for r in dash.history.entries.rows] == ["load", "check"]  # the history rebuilt from the file
        await eventually(lambda: dash.runs.row(run_id)["cells"][5] != "")  # held now: it has a size
        dash.press("resume")
        await eventually(lambda: ctx.status == "completed")
        assert ctx.state["published"] is True
        await eventually(lambda: set(dash.graph.status.values()) == {"success"})
        dash.close()

    arun(scenario())
    registry.close()


def test_discarding_a_stored_only_run_clears_its_checkpoint(tmp_path):
    db = tmp_path / "runs.sqlite"
    run_id, other = paused_in(db), paused_in(db)
    registry, factory = restarted(db)

    async def scenario():
        dash = RunDashboard(factory)
        assert {run_id, other} <= set(dash.runs.ids) and dash.ctx is None
        dash.runs.act("discard", run_id)  # the row's discard button, for a run the registry never held
        await eventually(lambda: run_id not in dash.runs.ids)
        assert "discarded" in dash.message.value and dash.ctx is None
        assert run_id not in {r.run_id for r in registry.runs()}
        assert [r.run_id for r in factory.runs()] == [other]
        assert (await factory.resume(run_id)).is_err  # its checkpoint is gone from the file
        dash.close()

    arun(scenario())
    registry.close()
    _, again = restarted(db)  # a later kernel does not see it either
    assert [r.run_id for r in again.runs()] == [other]


def test_the_runs_table_shows_size_and_note(tmp_path):
    def keep_a_lock(state, ctx):
        ctx.artifacts.put("lock", threading.Lock())  # cannot be pickled into the checkpoint
        return {"blob": b"x" * 640_000}

    p = Pipeline("noted", stages=[
        Stage("a", steps=[Step("x", keep_a_lock)], router=lambda s, r: Pause("b", timeout=600)),
        Stage("b", steps=[Step("y", add("n"))]),
    ])
    registry = PipelineRegistry(default_timeout=60)
    factory = PipelineFactory(p, store_factory=SqliteStore.factory(tmp_path / "n.sqlite"), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "paused")
        run_id = dash.ctx.run_id
        await eventually(lambda: "cannot be saved" in dash.runs.row(run_id)["cells"][6])
        cells = dash.runs.row(run_id)["cells"]
        assert cells[5].endswith("kB") and 600 <= float(cells[5].split()[0]) <= 700, cells[5]
        assert "'lock'" in cells[6] and "stays live" in cells[6]
        assert "cannot be saved" in dash.run_row(run_id)
        dash.close()

    arun(scenario())
    registry.close()


def test_the_store_is_read_about_once_a_second_not_on_every_redraw(registry):
    async def slow(state):
        await asyncio.sleep(0.05)
        return {"n": state.get("n", 0) + 1}

    factory = PipelineFactory(Pipeline("reads", stages=[Stage(f"s{i}", steps=[Step("x", slow)])
                                                        for i in range(30)]), registry=registry)
    reads = []
    runs = factory.runs
    factory.runs = lambda: reads.append(1) or runs()

    async def scenario():
        dash = RunDashboard(factory)
        assert len(reads) == 1  # built: read once
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "completed", timeout=4)
        took = 30 * 0.05
        assert dash.follower.redraws >= 4  # redrawn 4 times a second while it went ...
        assert len(reads) <= 1 + took / 0.9 + 2, reads  # ... the store read at most about once a second
        dash.close()

    arun(scenario())


def test_the_redefined_notice_appears_without_a_click(registry):
    factory = PipelineFactory(review("redef"), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        assert dash.stale.value == ""
        same = review("redef")  # the cell defining the pipeline is run again as it was: nothing to say
        dash.refresh()
        assert same.superseded is False and factory.pipeline.superseded and dash.stale.value == ""
        newer = Pipeline("redef", stages=[Stage("load", steps=[Step("read", lambda s: {"rows": 4})])])  # edited
        await eventually(lambda: "redefined" in dash.stale.value, timeout=1.6)  # the 1 Hz clock, no click
        assert "redef" in dash.stale.value and newer.superseded is False
        dash.close()

    arun(scenario())

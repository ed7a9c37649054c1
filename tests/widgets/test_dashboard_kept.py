"""SPEC 14 in the dashboard for runs it did not make: a fork made with ``factory.fork`` in code, and the finished
runs and forks a SQLite file holds when a new kernel opens it (listed, opened, never resumed, removed for good)."""

from pipenb import PipelineFactory, PipelineRegistry
from pipenb.stores import SqliteStore
from pipenb.widgets import RunDashboard

from ..conftest import arun, eventually
from .test_dashboard_finished import shop


def ran_and_forked(factory: PipelineFactory):
    """A completed run, and a fork of it made in code before record 1 with another state, run to the end."""
    source = factory.prepare_sync().unwrap()
    assert source.run_sync().unwrap().status == "completed"
    fork = factory.fork_sync(source.run_id, at=1).unwrap()
    fork.update_state({"rows": 20})
    assert fork.run_sync().unwrap().status == "completed"
    return source, fork


def test_compare_with_source_is_offered_for_a_fork_made_in_code(registry):
    factory = PipelineFactory(shop(), registry=registry)
    source, fork = ran_and_forked(factory)

    async def scenario():
        dash = RunDashboard(factory)
        dash.show(fork)
        dash.refresh()
        assert dash.buttons["compare"].layout.display != "none"
        dash.press("compare")
        await eventually(lambda: dash.replay_slot.replay is not None and dash.replay_slot.replay.other is not None)
        assert dash.replay_slot.replay.run_id == fork.run_id
        assert dash.replay_slot.replay.diverged_at == 1  # the edit at the fork point
        dash.show(source)  # not a fork: no Compare with source
        dash.refresh()
        assert dash.buttons["compare"].layout.display == "none"
        dash.close()

    arun(scenario())


def test_a_new_kernel_lists_opens_compares_and_removes_the_finished_runs_of_a_sqlite_file(tmp_path):
    db = tmp_path / "runs.sqlite"
    first = SqliteStore.factory(db)
    source, fork = ran_and_forked(PipelineFactory(shop(), first, registry=PipelineRegistry()))
    first.close()
    # A new kernel: nothing of those runs in memory, only the file.
    files = [SqliteStore.factory(db)]
    factory = PipelineFactory(shop(), files[0], registry=PipelineRegistry())

    async def scenario():
        dash = RunDashboard(factory)
        dash.refresh(read_store=True)
        for run_id in (source.run_id, fork.run_id):
            assert dash.runs.row(run_id)["cells"][2] == "completed"
            assert dash.runs.row(run_id)["actions"] == ["remove"]
        dash.runs.value = source.run_id  # picked: opened as it is, never resumed
        await eventually(lambda: dash.ctx is not None and dash.ctx.run_id == source.run_id)
        dash.refresh()
        assert dash.ctx.status == "completed"
        assert [e["cells"][1] for e in dash.history.entries.rows] == ["load", "price", "report"]
        assert dash.buttons["resume"].disabled
        assert "completed" in dash.buttons["resume"].tooltip and "never resumed" in dash.buttons["resume"].tooltip
        assert dash.buttons["compare"].layout.display == "none"
        dash.press("resume")
        await eventually(lambda: "never resumed" in dash.message.value)
        dash.runs.value = fork.run_id  # the fork read back from the file knows its source
        await eventually(lambda: dash.ctx is not None and dash.ctx.run_id == fork.run_id)
        dash.refresh()
        assert dash.buttons["compare"].layout.display != "none"
        dash.press("compare")
        await eventually(lambda: dash.replay_slot.replay is not None and dash.replay_slot.replay.other is not None)
        assert dash.replay_slot.replay.diverged_at == 1
        dash.runs.act("remove", source.run_id)
        await eventually(lambda: source.run_id not in dash.runs.ids)
        dash.close()

    arun(scenario())
    # Removed for good: a later kernel does not list it, but nothing of it was deleted.
    files.append(SqliteStore.factory(db))
    later = PipelineFactory(shop(), files[-1], registry=PipelineRegistry())
    assert [r.run_id for r in later.runs()] == [fork.run_id]
    assert len(later.open_sync(source.run_id).unwrap().history) == 3
    for f in files:
        f.close()

"""Finished runs in the dashboard (SPEC 14 "Completed runs stay in view"), "re-run from the first changed
stage" after a fix (SPEC 14 stale stages), and what a newcomer reads: the state editor after a pick,
prepared runs that never ran, the buttons' reasons."""

from pipenb import Pipeline, PipelineFactory, Stage, Step
from pipenb.widgets import RunDashboard

from ..conftest import arun, eventually


def shop(factor: float = 1.0) -> Pipeline:
    """Three stages; ``price`` multiplies by ``factor`` (its code changes when the factor does)."""
    if factor == 1.0:

        def price(state):
            return {"revenue": state["rows"] * 2.0}
    else:

        def price(state):
            return {"revenue": state["rows"] * 2.0 * 0.5}

    return Pipeline(
        "fin",
        stages=[
            Stage("load", steps=[Step("read", lambda s: {"rows": 10})]),
            Stage("price", steps=[Step("price", price)]),
            Stage("report", steps=[Step("say", lambda s: {"report": f"revenue {s['revenue']}"})]),
        ],
    )


def test_completed_runs_stay_listed_open_again_and_go_only_when_removed(registry):
    factory = PipelineFactory(shop(), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "completed")
        first = dash.ctx
        dash.press("run")  # showing another run used to drop the first from the list
        await eventually(lambda: dash.ctx is not first and dash.ctx.status == "completed")
        second = dash.ctx
        assert {r.run_id: r.status for r in factory.runs()} == {first.run_id: "completed", second.run_id: "completed"}
        assert dash.runs.row(first.run_id)["cells"][2] == "completed"
        assert dash.runs.row(first.run_id)["actions"] == ["remove"]
        # Picking it opens it as it is (it used to be a ResumeError), with its history.
        dash.runs.value = first.run_id
        await eventually(lambda: dash.ctx is first)
        assert "ResumeError" not in dash.message.value
        dash.refresh()
        assert [e["cells"][1] for e in dash.history.entries.rows] == ["load", "price", "report"]
        # Never resumed: Resume is greyed out and its tooltip says why.
        assert dash.buttons["resume"].disabled
        assert "completed" in dash.buttons["resume"].tooltip and "never resumed" in dash.buttons["resume"].tooltip
        dash.press("resume")
        await eventually(lambda: "never resumed" in dash.message.value)
        # The user removes it: the list, factory.runs() and the registry forget it; the other stays.
        dash.runs.act("remove", first.run_id)
        await eventually(lambda: first.run_id not in dash.runs.ids)
        assert [r.run_id for r in factory.runs()] == [second.run_id]
        assert second.run_id in dash.runs.ids and dash.ctx is None
        dash.close()

    arun(scenario())


def test_a_completed_runs_row_reads_the_same_picked_or_not(registry):
    # A newcomer saw the picked completed run's stage cell say "report" and go blank when another run was picked.
    factory = PipelineFactory(shop(), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "completed")
        first = dash.ctx
        dash.refresh()
        picked = dash.runs.row(first.run_id)["cells"]
        dash.press("run")
        await eventually(lambda: dash.ctx is not first and dash.ctx.status == "completed")
        dash.refresh()
        assert dash.runs.row(first.run_id)["cells"] == picked
        assert picked[2:4] == ["completed", ""]

    arun(scenario())


def test_registry_lists_finished_runs_until_removed(registry):
    factory = PipelineFactory(shop(), registry=registry)
    ctx = factory.prepare_sync().unwrap()
    ctx.run_sync()
    [rec] = registry.finished()
    assert (rec.run_id, rec.status, rec.live, rec.expires_at) == (ctx.run_id, "completed", True, None)
    assert ctx.run_id not in {r.run_id for r in registry.runs()}  # runs(): what the registry holds
    assert (factory.resume_sync(ctx.run_id)).is_err  # finished: never resumed
    assert registry.remove("no-such-run") is False
    assert registry.remove(ctx.run_id) is True
    assert registry.finished() == [] and factory.runs() == []
    assert registry.remove(ctx.run_id) is False


def stale_nodes(svg: str) -> set[str]:
    """The stage addresses the graph's SVG marks stale."""
    import xml.etree.ElementTree as ET

    from pipenb import graph

    ids = {graph.node_id(a): a for a in ("load", "price", "report")}
    marked = set()
    for el in ET.fromstring(svg).iter():
        if "stale" in (el.get("class") or "").split() and el.get("id") in ids:
            marked.add(ids[el.get("id")])
    return marked


def test_rerun_from_the_first_changed_stage_forks_there_and_runs_the_new_code(registry):
    old = PipelineFactory(shop(1.0), registry=registry)
    ctx = old.prepare_sync().unwrap()
    ctx.run_sync()
    assert ctx.state["revenue"] == 20.0

    async def scenario():
        fixed = PipelineFactory(shop(0.5), registry=registry)  # the cell with the fix was run again
        dash = RunDashboard(fixed)
        assert dash.stale.button.layout.display == "none"  # no run picked: nothing to offer
        dash.show(ctx)
        dash.refresh()
        assert dash.stale.button.layout.display is None and not dash.stale.button.disabled
        assert "price" in dash.stale.value and "load" not in dash.stale.value
        # The graph (of the fixed pipeline) marks the same stage stale as the notice names.
        await eventually(lambda: 'class="stale' in dash.graph.svg or " stale" in dash.graph.svg, timeout=5)
        assert stale_nodes(dash.graph.svg) == {"price"}
        dash.stale.button.click()
        await eventually(lambda: dash.ctx is not ctx and dash.ctx.status == "completed", timeout=3)
        new = dash.ctx
        assert new.state["revenue"] == 10.0 and ctx.state["revenue"] == 20.0  # the source is unchanged
        # Forked before "price": "load" kept (not run again), "price" and "report" ran the new code.
        assert [r.address for r in new.history] == ["load", "price", "report"]
        assert new.history[0].started == ctx.history[0].started
        assert "forked" in dash.message.value
        dash.refresh()
        assert dash.stale.button.layout.display == "none"  # the new run ran today's code
        dash.close()

    arun(scenario())


def test_a_dashboard_built_before_the_fix_does_not_call_the_fixed_stage_older_code(registry):
    # The user's order: dashboard on the buggy factory, fix, resume and run with the fixed factory. The run
    # ran the NEWER code; the old dashboard used to say "ran older code in price" and offer to re-run it
    # with its own (buggy) definition.
    old = PipelineFactory(shop(1.0), registry=registry)
    ctx = old.prepare_sync().unwrap()

    async def scenario():
        dash = RunDashboard(old)
        fixed = PipelineFactory(shop(0.5), registry=registry)
        again = (await fixed.resume(ctx.run_id)).unwrap()
        assert (await again.run()).unwrap().state["revenue"] == 10.0
        dash.show(ctx)
        dash.refresh()
        await eventually(lambda: "redefined" in dash.stale.value, timeout=3)
        assert "older code" not in dash.stale.value
        assert dash.stale.button.layout.display == "none" and dash.stale.button.disabled
        await eventually(lambda: "×1" in dash.graph.svg, timeout=5)  # drawn with the run's marks (edges taken)
        assert stale_nodes(dash.graph.svg) == set()
        dash.close()

    arun(scenario())


def test_the_state_editor_forgets_the_key_typed_for_another_run(registry):
    factory = PipelineFactory(shop(), registry=registry)
    a = factory.prepare_sync().unwrap()
    b = factory.prepare_sync().unwrap()
    dash = RunDashboard(factory)
    dash.show(a)
    dash.editor.key.value, dash.editor.value.value = "approved", "True"
    dash.show(b)
    assert (dash.editor.key.value, dash.editor.value.value) == ("", "")
    dash.close()


def test_prepared_runs_that_never_ran_do_not_fill_the_runs_list(registry):
    factory = PipelineFactory(shop(), registry=registry)
    for _ in range(5):
        factory.prepare_sync().unwrap()  # cells that prepare a run and never start it
    shown = factory.prepare_sync().unwrap()
    dash = RunDashboard(factory)
    assert dash.runs.ids == []
    assert "6 prepared runs never started" in dash.runs_title.value
    dash.show(shown)
    dash.refresh()
    assert dash.runs.ids == [shown.run_id]  # the one picked is listed
    assert "5 prepared runs never started" in dash.runs_title.value
    dash.close()


def test_a_run_finished_by_another_registry_is_no_longer_offered_for_resume(tmp_path):
    """Notebook 02's pattern: a dashboard shows a paused run that its registry released; a second
    registry (a new kernel's) resumes the run from the SQLite file and completes it."""
    from pipenb import Pause, PipelineRegistry
    from pipenb.stores import SqliteStore

    def gate():
        return Pipeline(
            "gone",
            stages=[
                Stage(
                    "ask",
                    steps=[Step("x", lambda s: {"asked": True})],
                    router=lambda s, r: None if s.get("ok") else Pause("ask", timeout=600),
                ),
                Stage("done", steps=[Step("y", lambda s: {"done": True})]),
            ],
        )

    db = str(tmp_path / "runs.sqlite")
    first = PipelineRegistry(default_timeout=600)
    factory = PipelineFactory(gate(), store_factory=SqliteStore.factory(db), registry=first)
    ctx = factory.prepare_sync().unwrap()
    ctx.run_sync()
    first.expire(ctx.run_id)  # the pause window ended: released, resumable from the file

    async def scenario():
        dash = RunDashboard(factory)
        dash.show(ctx)
        dash.refresh(read_store=True)
        assert not dash.buttons["resume"].disabled and dash.runs.row(ctx.run_id)["actions"][0] == "resume"
        other = PipelineFactory(gate(), store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
        again = (await other.resume(ctx.run_id)).unwrap()
        again.update_state({"ok": True})
        assert (await again.run()).unwrap().status == "completed"
        await eventually(lambda: dash.buttons["resume"].disabled, timeout=3)  # the store read once a second
        assert "elsewhere" in dash.buttons["resume"].tooltip and "elsewhere" in dash.status.value
        assert dash.runs.row(ctx.run_id)["cells"][2] == "gone"
        # Not resumable here any more; the store says how it ended (SPEC 14: finished runs stay listed).
        assert {r.run_id: (r.status, r.live) for r in factory.runs()}[ctx.run_id] == ("completed", False)
        dash.close()

    arun(scenario())
    first.close()

"""RunDashboard's debugging loop (SPEC 7, 9, 10), kernel-free: history, diffs, forks, the state editor,
Retry, Discard, breakpoint validation and the time formats."""

import asyncio
import time
from html import unescape

import pytest

from pipenb import Pause, Pipeline, PipelineFactory, Stage, Step
from pipenb.display import clock, diff_html, duration_text, error_html, state_html, time_left
from pipenb.widgets import RunDashboard, StageGraph

from ..conftest import add, arun, eventually

EVIL = '<img src=x onerror="alert(1)">'


def chain() -> Pipeline:
    return Pipeline("chain", stages=[
        Stage("load", steps=[Step("read", lambda s: {"rows": 3, "name": EVIL})]),
        Stage("clean", steps=[Step("drop", lambda s: {"rows": s["rows"] - 1, "cleaned": True})]),
        Stage("score", steps=[Step("fit", lambda s: {"score": s["rows"] * 0.5})]),
    ])


def gate() -> Pipeline:
    """Stage ``ask`` pauses; stage ``go`` fails unless someone set ``approved``."""
    def go(state):
        if not state.get("approved"):
            raise RuntimeError("not approved: set approved = True on the paused run, then resume")
        return {"done": True}

    return Pipeline("gate", stages=[
        Stage("ask", steps=[Step("x", add("n"))], router=lambda s, r: Pause("go", timeout=600)),
        Stage("go", steps=[Step("y", go)]),
    ])


def test_history_entries_picking_shows_state_and_diff_and_fork_lists_the_new_run(registry):
    factory = PipelineFactory(chain(), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "completed")
        source = dash.ctx
        rows = dash.history.entries.rows
        assert [r["cells"][1] for r in rows] == ["load", "clean", "score"]
        assert rows[1]["cells"][0] == "1" and set(rows[1]["cells"][4].split(", ")) == {"rows", "cleaned"}
        assert ":" in rows[0]["cells"][2] and rows[0]["cells"][3].endswith(("ms", "s"))  # 14:03:12, "3 ms"
        dash.pick_record(1)
        await asyncio.sleep(0)
        view = dash.history.record_view.value
        assert "changed" in view and "cleaned" in view and "pipenb-changed" in view
        assert "<code class=\"pipenb-old\">3</code> → <code class=\"pipenb-new\">2</code>" in view  # rows: 3 → 2
        assert "<img" not in view and "&lt;img" in view
        assert not dash.history.fork_button.disabled
        dash.fork_here()
        await eventually(lambda: dash.ctx is not source)
        new = dash.ctx
        assert new.status == "prepared" and new.position == "clean" and new.state["rows"] == 3
        assert dash.runs.value == new.run_id and new.run_id in dash.runs.ids
        assert "forked" in dash.message.value
        dash.press("resume")
        await eventually(lambda: new.status == "completed")
        assert new.state["score"] == 1.0 and source.state["score"] == 1.0
        dash.close()

    arun(scenario())


def test_state_editor_approves_a_paused_run_and_refuses_bad_values_and_running_runs(registry):
    factory = PipelineFactory(gate(), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "paused")
        ctx = dash.ctx
        assert dash.editor.layout.display is None  # shown for a run that waits
        assert not dash.edit_state("approved", "Tru e")
        assert "'Tru e'" in unescape(dash.editor.message.value) and "not a Python literal" in unescape(dash.editor.message.value)
        assert "nothing applied" in unescape(dash.editor.message.value) and "approved" not in ctx.state
        assert not dash.edit_state("approved", "__import__('os').getcwd()")  # never eval
        assert "approved" not in ctx.state
        assert not dash.edit_state("", "1") and "key" in unescape(dash.editor.message.value)
        assert dash.edit_state("approved", "True")
        assert ctx.state["approved"] is True and "set approved = True" in unescape(dash.editor.message.value)
        assert dash.edit_state("limits", "{'rows': [1, 2], 'note': '<b>'}")
        assert dict(ctx.state["limits"]) == {"rows": [1, 2], "note": "<b>"}
        assert "&#x27;&lt;b&gt;&#x27;" in dash.state_view.value
        assert ctx.history[-1].address == "go (edit)"
        dash.press("resume")
        await eventually(lambda: ctx.status == "completed")
        assert ctx.state["done"] is True
        # the stage whose router paused committed: once the run went on, the graph shows it done
        await eventually(lambda: dash.graph.status.get("ask") == "success" and dash.graph.status.get("go") == "success")
        dash.close()

    arun(scenario())


def test_state_editor_refuses_a_running_run(registry):
    async def slow(state):
        await asyncio.sleep(0.3)
        return {"n": 1}

    factory = PipelineFactory(Pipeline("slow", stages=[Stage("a", steps=[Step("x", slow)])]), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "running")
        assert not dash.edit_state("n", "5")
        assert "running" in unescape(dash.editor.message.value) and "nothing applied" in unescape(dash.editor.message.value)
        await eventually(lambda: dash.ctx.status == "completed")
        assert dash.ctx.state["n"] == 1
        assert dash.editor.layout.display == "none"
        dash.close()

    arun(scenario())


def test_retry_resumes_a_failed_run_through_the_factory_and_the_full_error_is_shown(registry):
    long_words = " ".join(f"word{i}" for i in range(60)) + " LASTWORDS"

    def flaky(state):
        if not state.get("fixed"):
            try:
                raise KeyError("column <price> missing")
            except KeyError as exc:
                raise ValueError(long_words) from exc
        return {"ok": 1}

    factory = PipelineFactory(Pipeline("flaky", stages=[Stage("a", steps=[Step("x", add("n"))]),
                                                         Stage("b", steps=[Step("y", flaky)])]), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        assert dash.buttons["retry"].disabled and dash.buttons["retry"].layout.display == "none"
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "failed")
        ctx = dash.ctx
        await eventually(lambda: "LASTWORDS" in dash.error_banner.value)
        banner = dash.error_banner.value
        assert "ValueError" in banner and "KeyError" in banner and "column &lt;price&gt; missing" in banner
        assert long_words in banner  # the whole message, not cut
        assert "LASTWORDS" in dash.error_view.value and "traceback" in dash.error_view.value
        assert not dash.buttons["retry"].disabled and dash.buttons["retry"].layout.display is None
        assert dash.edit_state("fixed", "True")
        dash.press("retry")
        await eventually(lambda: ctx.status == "completed")
        assert ctx.state["ok"] == 1 and dash.error_banner.value == ""
        assert dash.buttons["retry"].disabled
        dash.close()

    arun(scenario())


async def two_paused_runs(dash):
    """Press Run twice on a gate pipeline: two runs paused at the gate, the second one shown."""
    dash.press("run")
    await eventually(lambda: dash.ctx is not None and dash.ctx.status == "paused")
    first = dash.ctx
    dash.press("run")
    await eventually(lambda: dash.ctx is not first and dash.ctx.status == "paused")
    return first, dash.ctx


def test_discard_aborts_forgets_and_unlists_the_run(registry):
    factory = PipelineFactory(gate(), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        first, second = await two_paused_runs(dash)
        assert {first.run_id, second.run_id} <= set(dash.runs.ids)
        dash.press("discard")
        await eventually(lambda: dash.ctx is None)
        assert second.status == "aborted" and second.run_id not in dash.runs.ids
        assert second.run_id not in {r.run_id for r in registry.runs()}
        assert (await factory.resume(second.run_id)).is_err  # its checkpoint is gone
        assert "discarded" in dash.status.value and dash.buttons["discard"].disabled
        dash.runs.act("discard", first.run_id)  # a row's discard button
        await eventually(lambda: first.run_id not in dash.runs.ids)
        assert registry.runs() == []
        dash.close()

    arun(scenario())


def test_clicking_a_row_picks_the_run(registry):
    factory = PipelineFactory(gate(), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        first, second = await two_paused_runs(dash)
        row = dash.runs.row(first.run_id)
        assert row["cells"][2] == "paused" and row["cells"][3] == "go" and row["cells"][4].endswith(" left")
        assert row["actions"] == ["resume", "discard"]
        dash.runs.value = first.run_id
        await eventually(lambda: dash.ctx is first)
        dash.runs.act("resume", first.run_id)
        await eventually(lambda: first.status == "failed")
        dash.close()

    arun(scenario())


def test_misspelled_breakpoints_are_refused_with_the_stages_that_exist():
    graph = StageGraph(chain())
    for set_it in (lambda: setattr(graph, "breakpoints", ["nope"]), lambda: graph.toggle_breakpoint("nope"),
                   lambda: graph.set_breakpoints(["load", "claen"])):
        with pytest.raises(ValueError, match="load, clean, score|clean, load, score") as info:
            set_it()
        assert "nope" in str(info.value) or "claen" in str(info.value)
        assert graph.breakpoints == []
    graph.set_breakpoints(["clean"])
    graph.toggle_breakpoint("score")
    assert graph.breakpoints == ["clean", "score"]


def test_times_are_local_clock_times_and_minutes_left():
    t = time.mktime((2026, 11, 25, 14, 3, 12, 0, 0, -1))
    assert clock(t) == "14:03:12"
    assert time_left(286.9) == "4:46 left" and time_left(0) == "0:00 left" and time_left(3725) == "1:02:05 left"
    assert duration_text(0.0123) == "12 ms" and duration_text(2.5) == "2.50 s" and duration_text(185) == "3:05 min"


def test_views_escape_and_do_not_run_words_together():
    words = _text(state_html({})).split()  # title and content are separate blocks
    assert "state" in words and "empty" in words
    try:
        try:
            raise KeyError(EVIL)
        except KeyError as exc:
            raise RuntimeError("outer " + EVIL) from exc
    except RuntimeError as exc:
        out = error_html(exc)
    assert "<img" not in out and out.count("&lt;img") == 2 and "KeyError" in out and "caused by" in out
    from pipenb.core.history import diff_states

    d = diff_html(diff_states({"a": EVIL, "gone": 1}, {"a": 2, "new": EVIL}))
    assert "<img" not in d and "added" in d and "removed" in d and "changed" in d


def _text(markup: str) -> str:
    """Rendered text, roughly: block elements start a new line."""
    import re

    markup = re.sub(r"<(div|tr|table|p)[^>]*>", "\n", markup)
    return re.sub(r"<[^>]+>", "", markup)


def test_the_state_view_names_the_stage_that_last_wrote_each_key(registry):
    """SPEC 14: per top-level key, the stage that last wrote it; an edit says "(edit)"; the snapshot too."""
    factory = PipelineFactory(gate(), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "paused")
        ctx = dash.ctx
        assert "by ask" in unescape(dash.state_view.value)
        assert dash.edit_state("approved", "True")
        await eventually(lambda: "by (edit)" in unescape(dash.state_view.value))
        dash.press("resume")
        await eventually(lambda: ctx.status == "completed" and "done" in dash.state_view.value)
        dash.refresh()
        view = unescape(dash.state_view.value)
        rows = {row.split("</th>")[0].split(" <span")[0]: row.split("</th>")[0] for row in view.split("<th>")[1:]}
        assert "by go" in rows["done"] and "by ask" in rows["n"] and "by (edit)" in rows["approved"]
        assert "by go" in unescape(dash.snapshot_html())
        dash.close()

    asyncio.run(scenario())

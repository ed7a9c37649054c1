"""SPEC 14: ``RunReplay`` scrubs through a run's records; nothing runs again.

Sources: a context, its history, and ``(factory, run_id)`` for a run another
process wrote to a SQLite file. Positions clamp; each position shows the
stages run so far, visits and moves up to it, the state after it with the
changed keys marked, and its stage's recorded events; ``compare=`` aligns a
fork with its source and marks where they part.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step, run_sync
from pipenb.stores import SqliteStore
from pipenb.widgets import RunReplay

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARMED = {"on": False}  # once True, every step raises: a replay that ran anything would fail loudly


def _guard():
    if ARMED["on"]:
        raise AssertionError("a step ran during a replay")


def load(state):
    _guard()
    return {"n": state.get("n", 0) + 1, "rows": [state.get("n", 0)] * 2}


def check(state):
    _guard()
    return {"ok": state["n"] >= 3}


def again(state, results):
    return "load" if not state["ok"] else None


def report(state):
    _guard()
    return {"report": f"n={state['n']}"}


def looping() -> Pipeline:
    """load -> check -> (load again while n < 3) -> report: 7 records."""
    return Pipeline(
        "replay-loop",
        stages=[
            Stage("load", steps=[Step("read", load)]),
            Stage("check", steps=[Step("look", check)], router=again),
            Stage("report", steps=[Step("write", report)]),
        ],
    )


@pytest.fixture
def finished():
    """A finished run of ``looping()`` with its events, and the steps armed to raise from then on."""
    factory = PipelineFactory(looping(), registry=PipelineRegistry())
    ctx = run_sync(factory.prepare()).unwrap()
    log = ctx.record()
    run_sync(ctx.run()).unwrap()
    ARMED["on"] = True
    yield factory, ctx, log
    ARMED["on"] = False


def test_positions_show_what_had_run_up_to_them(finished):
    factory, ctx, log = finished
    replay = RunReplay(ctx, events=log)
    assert len(replay) == 7
    assert [replay.frames.frame(i)["address"] for i in range(7)] == [
        "load",
        "check",
        "load",
        "check",
        "load",
        "check",
        "report",
    ]
    replay.position = 3  # the second check
    assert replay.record.address == "check" and replay.record.seq == 3
    assert replay.state == ctx.history[3].state and replay.state["n"] == 2
    frame = replay.frame
    assert frame["visits"] == {"load": 2, "check": 2}
    assert sorted(map(tuple, frame["edges"])) == [("check", "load", 1), ("load", "check", 2)]
    assert frame["current"] == "check" and "report" not in frame["ran"]
    assert frame["changed"] == [] == replay.changed_keys()  # n is still 2: "ok" stays False
    replay.position = 5  # the third check: n is 3, "ok" turns True
    frame = replay.frame
    assert frame["changed"] == ["ok"] == replay.changed_keys()
    # The changed key is marked in the state shown; the events are that stage's, while it ran.
    assert 'class="pipenb-changed"><th>ok' in frame["state_html"]
    assert "look" in frame["events_html"] and "read" not in frame["events_html"]
    # A loop runs its stages back to back: a record shows its own visit's events only.
    assert frame["events_html"].count("stage:start") == 1 and frame["events_html"].count("stage:success") == 1
    replay.position = 6
    assert replay.frame["visits"] == {"load": 3, "check": 3, "report": 1}
    assert ("check", "report", 1) in map(tuple, replay.frame["edges"])


def test_position_is_clamped_to_the_records(finished):
    _, ctx, _ = finished
    replay = RunReplay(ctx)
    replay.position = -4
    assert replay.position == 0 and replay.record.address == "load"
    replay.position = 10_000
    assert replay.position == 6 and replay.record.address == "report"
    assert replay.state["report"] == "n=3"


def test_a_history_replays_with_its_runs_graph(finished):
    _, ctx, _ = finished
    replay = RunReplay(ctx.history)
    replay.position = 1
    assert replay.record.address == "check"
    assert replay.pipeline is ctx.pipeline
    # The graph is laid out once, with every move of the run; the browser restyles the edge each move took.
    svg = ET.fromstring(replay.svg)
    drawn = {g.get("id") for g in svg.iter("{http://www.w3.org/2000/svg}g")}
    assert set(replay.edges) == {"load\0check", "check\0load", "check\0report"}
    assert set(replay.edges.values()) <= drawn
    assert replay.edges["check\0load"] != replay.edges["load\0check"]


WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from tests.widgets.test_replay import looping
from pipenb import PipelineFactory, PipelineRegistry
from pipenb.stores import SqliteStore
factory = PipelineFactory(looping(), store_factory=SqliteStore.factory(sys.argv[1]), registry=PipelineRegistry())
ctx = factory.prepare_sync().unwrap()
print(ctx.run_sync().unwrap().status, ctx.run_id)
"""


def test_a_run_in_a_sqlite_file_replays_in_another_process(tmp_path):
    db = str(tmp_path / "runs.sqlite")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", WRITER, db, str(ROOT)], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    status, run_id = out.stdout.split()
    assert status == "completed"
    ARMED["on"] = True
    try:
        factory = PipelineFactory(looping(), store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
        replay = RunReplay((factory, run_id))
        assert len(replay) == 7
        replay.position = 4
        assert replay.record.address == "load" and replay.state["n"] == 3
        assert replay.frame["visits"] == {"load": 3, "check": 2}
        replay.position = 99
        assert replay.state["report"] == "n=3"
        with pytest.raises(ValueError, match="no-such-run"):
            RunReplay((factory, "no-such-run"))
    finally:
        ARMED["on"] = False


def test_nothing_runs_again(finished):
    factory, ctx, log = finished
    before = (ctx.status, len(ctx.history), dict(ctx.state))
    replay = RunReplay(ctx, events=log, compare=ctx.history)
    for i in [*range(len(replay)), 3, 0, 6]:
        replay.position = i  # every step raises if called
    replay.playing = True
    replay.snapshot_html()
    assert (ctx.status, len(ctx.history), dict(ctx.state)) == before


def test_compare_marks_where_a_fork_parts(finished):
    factory, ctx, _ = finished
    ARMED["on"] = False
    fork = run_sync(factory.fork(ctx.run_id, at=4)).unwrap()  # before the third load
    fork.update_state({"n": 10})
    run_sync(fork.run()).unwrap()
    ARMED["on"] = True
    replay = RunReplay(ctx, compare=fork)
    # The fork's edit is a record of its own: shown at the stage it was made before, neither a visit nor a move.
    edit = RunReplay(fork).frames.frame(4)
    assert edit["edit"] and edit["address"] == "load (edit)" and edit["current"] == "load"
    assert edit["visits"] == {"load": 2, "check": 2} and edit["changed"] == ["n"]
    assert replay.diverged_at == ctx.history.compare(fork.history).diverged_at
    at = replay.diverged_at
    assert at is not None and at >= 4
    replay.position = at - 1
    assert "same so far" in replay.compare_html
    replay.position = at
    assert f"part at record #{at}" in replay.compare_html and "pipenb-diff" in replay.compare_html
    assert replay.frame_b["i"] == at
    replay.position = 6
    assert replay.frame_b["i"] == len(fork.history) - 1 if len(fork.history) < 7 else 6
    # The static snapshot (SPEC 12) names the second run and where the two part, as the widget does.
    replay.position = at
    page = replay.snapshot_html()
    assert "compared with" in page and f"run {fork.run_id[-8:]}" in page and f"part at record #{at}" in page
    assert "compared with" not in RunReplay(ctx).snapshot_html()


def test_bad_sources_are_named():
    with pytest.raises(TypeError, match="RunContext, a History or \\(factory, run_id\\)"):
        RunReplay("not a run")


def test_user_text_is_escaped_and_the_snapshot_needs_no_script(finished):
    _, ctx, _ = finished
    ARMED["on"] = False
    evil = Pipeline(
        "<script>p<\\script>",
        stages=[Stage("a<b>", label="<img src=x onerror=alert(1)>", steps=[Step("s", lambda s: {"<k>": "<v>"})])],
    )
    factory = PipelineFactory(evil, registry=PipelineRegistry())
    run = run_sync(factory.prepare()).unwrap()
    run_sync(run.run()).unwrap()
    replay = RunReplay(run)
    bundle = replay.mimebundle()
    page = bundle["text/html"]
    assert "<script" not in page and "<img" not in page and "a<b>" not in page
    assert "&lt;k&gt;" in page
    assert replay.snapshot_text().startswith("RunReplay")
    for svg in [replay.svg, replay.timeline]:
        ET.fromstring(svg)
    assert "<img" not in replay.frame["state_html"] and "<k>" not in replay.frame["state_html"]


def test_snapshot_shows_the_position(finished):
    _, ctx, _ = finished
    replay = RunReplay(ctx)
    replay.position = 5
    page = replay.snapshot_html()
    assert "record 6 of 7" in page and "#5" in page
    assert "<svg" in page and "pipenb-timeline" in page
    assert 'class="pipenb-changed"><th>ok' in page
    replay.position = 0
    assert "record 1 of 7" in replay.mimebundle()["text/html"]


def test_dashboard_replays_the_picked_run_and_compares_a_fork_with_its_source(registry):
    from pipenb.widgets import RunDashboard

    from ..conftest import arun, eventually

    factory = PipelineFactory(looping(), registry=registry)

    async def scenario():
        dash = RunDashboard(factory)
        assert dash.buttons["replay"].disabled  # no run picked yet
        assert dash.buttons["compare"].layout.display == "none"
        dash.press("run")
        await eventually(lambda: dash.ctx is not None and dash.ctx.status == "completed")
        source = dash.ctx
        assert not dash.buttons["replay"].disabled and dash.buttons["compare"].layout.display == "none"
        dash.press("replay")
        await eventually(lambda: dash.replay_slot.replay is not None)
        replay = dash.replay_slot.replay
        assert len(replay) == 7 and replay.other is None and dash.replay_slot.children == (replay,)
        replay.position = 5
        assert "look" in replay.frame["events_html"]  # the events the dashboard recorded for the run
        dash.press("compare")  # not a fork: says why, keeps the replay
        await eventually(lambda: "forked here" in dash.message.value)
        dash.pick_record(4)
        await asyncio.sleep(0)
        dash.fork_here()
        await eventually(lambda: dash.ctx is not source)
        fork = dash.ctx
        fork.update_state({"n": 10})
        dash.press("resume")
        await eventually(lambda: fork.status == "completed")
        # Nobody else holds the finished source now (a memory store keeps no history): the dashboard must.
        source_history, source_id = source.history, source.run_id
        source = replay = None
        gc.collect()
        assert dash.buttons["compare"].layout.display != "none"
        dash.press("compare")
        await eventually(lambda: dash.replay_slot.replay is not None and dash.replay_slot.replay.run_id == fork.run_id)
        assert dash.replay_slot.replay.other is not None and len(dash.replay_slot.replay.other) == 7, dash.message.value
        assert dash.replay_slot.replay.diverged_at == fork.history.compare(source_history).diverged_at >= 0
        assert dash.control.sources[fork.run_id].run_id == source_id
        dash.replay_slot.replay.position = 5
        assert (
            "look" in dash.replay_slot.replay.frame_b["events_html"]
        )  # the source's events, as the dashboard saw them
        dash.close()

    arun(scenario())


def test_a_run_without_records_and_a_history_without_its_pipeline(finished):
    factory, ctx, _ = finished
    fresh = run_sync(factory.prepare(initial_state={"n": 0})).unwrap()
    empty = RunReplay(fresh)
    assert len(empty) == 0 and empty.record is None and empty.state == {"n": 0}
    empty.position = 5
    assert empty.position == 0 and "record" in empty.snapshot_html()
    # A history cut off from its run (no definition): the stages it reached are drawn, in first-visit order.
    bare = ctx.history.head(len(ctx.history))
    assert bare.definition is None
    replay = RunReplay(bare)
    replay.position = 4
    assert replay.record.address == "load" and replay.frame["visits"] == {"load": 3, "check": 2}
    svg = ET.fromstring(replay.svg)
    ids = [g.get("id") for g in svg.iter("{http://www.w3.org/2000/svg}g")]
    assert ids == ["pipenb-stage-load", "pipenb-stage-check", "pipenb-stage-report"]
    ET.fromstring(replay.snapshot_svg())


def test_without_graphviz_the_builtin_layout_is_replayed(finished, tmp_path, monkeypatch):
    _, ctx, _ = finished
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` program: graph.py draws its own layout
    replay = RunReplay(ctx)
    svg = ET.fromstring(replay.svg)
    ids = {g.get("id") for g in svg.iter("{http://www.w3.org/2000/svg}g")}
    assert {"pipenb-stage-load", "pipenb-stage-check", "pipenb-stage-report"} <= ids
    replay.position = 6
    assert replay.frame["visits"] == {"load": 3, "check": 3, "report": 1}
    ET.fromstring(replay.snapshot_svg())


def test_the_snapshot_debounce_collapses_a_burst_into_one_call():
    from pipenb.widgets.throttle import Debounce

    from ..conftest import arun, eventually

    async def scenario():
        calls = []
        debounce = Debounce(lambda: calls.append(1), 0.05)
        for _ in range(5):  # a scrub: five positions in a row
            debounce()
        await eventually(lambda: calls == [1])
        assert debounce.handle is None  # nothing else pending: the burst was one call

    arun(scenario())
    later = []
    Debounce(lambda: later.append(1), 0.05)()  # no running loop (a script): called at once
    assert later == [1]


def test_a_move_from_another_thread_is_drawn_on_the_replays_loop(finished):
    """JupyterLab may deliver the scrubber's moves on a subshell thread: the frame is computed on the kernel's loop
    (the thread the replay was made on), never on the thread the message came on."""
    import threading

    from ..conftest import arun, eventually

    _, ctx, _ = finished

    async def scenario():
        replay = RunReplay(ctx)
        drawn_on = []
        replay.observe(lambda change: drawn_on.append(threading.get_ident()), names="frame")
        replay.position = 2  # from code, on the loop's thread: shown at once
        assert replay.frame["i"] == 2 and replay.record.seq == 2 and drawn_on == [threading.get_ident()]
        comm = threading.Thread(target=lambda: setattr(replay, "position", 5))
        comm.start()
        comm.join()  # the loop is held meanwhile: the thread could only hand the drawing over
        assert replay.position == 5 and replay.frame["i"] == 2 and len(drawn_on) == 1
        await eventually(lambda: replay.frame["i"] == 5)
        assert drawn_on == [threading.get_ident()] * 2
        assert replay.frame["address"] == replay.record.address == "check"
        assert "record 6 of 7" in replay.snapshot_html()
        replay.close()

    arun(scenario())

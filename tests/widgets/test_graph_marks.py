"""SPEC 14 on the StageGraph widget: what a run did, drawn on its graph, with real runs.

A looping pipeline (b's router jumps back to a twice; c's router once jumps to
b, which c does not declare) is followed live, attached after it finished,
and resumed from a SQLite file written by another process. The widget's
``svg`` trait is what the browser draws, so the tests read it back as XML.
"""

import asyncio
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from pipenb import PipelineFactory, PipelineRegistry
from pipenb import graph as pgraph
from pipenb.widgets import StageGraph

from ..conftest import arun, eventually, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Run in this process and, for the SQLite test, in another one: the same definition in both.
LOOP = """
import asyncio
from pipenb import Pipeline, Stage, Step

GATE = {}  # "d" -> an asyncio.Event stage d waits for, when a test holds the run there

def bump(key):
    async def action(state):
        if key == "d" and "d" in GATE:
            await GATE["d"].wait()
        return {key: state.get(key, 0) + 1}
    return action

def back_to_a(state, results):
    return "a" if state["b"] < 3 else None       # declared: b's routes name a

def once_to_b(state, results):
    return "b" if state["c"] == 1 else None      # undeclared: c declares no routes

def pipeline(b_action=None):
    return Pipeline("loop", stages=[
        Stage("a", steps=[Step("s", bump("a"))]),
        Stage("b", steps=[Step("s", b_action or bump("b"))], router=back_to_a, routes=["a"]),
        Stage("c", steps=[Step("s", bump("c"))], router=once_to_b),
        Stage("d", steps=[Step("s", bump("d"))]),
    ])
"""
# The run: a b a b a b c b c d.
VISITS = {"a": 3, "b": 4, "c": 2, "d": 1}
MOVES = {("a", "b"): 3, ("b", "a"): 2, ("b", "c"): 2, ("c", "b"): 1, ("c", "d"): 1}


def loop_module() -> dict:
    space: dict = {}
    exec(LOOP, space)
    return space


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def classed(root: ET.Element, name: str) -> list:
    return [el for el in root.iter() if name in (el.get("class") or "").split()]


def shown(el: ET.Element) -> str:
    return "".join("".join(t.itertext()) for t in el.iter("{http://www.w3.org/2000/svg}text"))


def node(root: ET.Element, address: str) -> ET.Element:
    return next(el for el in root.iter() if el.get("id") == pgraph.node_id(address))


def tip(el: ET.Element) -> str:
    return "\n".join(t.text or "" for t in el.iter("{http://www.w3.org/2000/svg}title"))


def drawn_counts(graph: StageGraph) -> tuple[dict, list, list]:
    """What the widget's SVG shows: the revisited stages' badges, the taken edges' counts, the undeclared ones."""
    root = parse(graph.svg)
    badges = {el.get("id"): shown(classed(el, "visits")[0]).removeprefix("×") for el in classed(root, "revisited")}
    taken = sorted(shown(el).split("×")[-1] for el in classed(root, "taken"))
    return badges, taken, [shown(el) for el in classed(root, "undeclared")]


def assert_whole_run_drawn(graph: StageGraph) -> None:
    badges, taken, undeclared = drawn_counts(graph)
    assert badges == {pgraph.node_id("a"): "3", pgraph.node_id("b"): "4", pgraph.node_id("c"): "2"}
    assert taken == ["1", "2", "2", "3"]  # c->d, b->a, b->c, a->b
    assert undeclared == ["undeclared ×1"]
    root = parse(graph.svg)
    assert "visited 4 times" in tip(node(root, "b")) and "visited" not in tip(node(root, "d")).replace(
        "visited 1 time", ""
    )


def test_a_looping_run_is_drawn_live_and_after_it_ends(registry):
    mod = loop_module()
    p = mod["pipeline"]()
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    graph = StageGraph(p, ctx)
    assert not classed(parse(graph.svg), "taken")

    async def main():
        gate = mod["GATE"]["d"] = asyncio.Event()
        task = ctx.start()
        # Held in stage d: everything before it is committed, and the run still goes.
        await eventually(lambda: drawn_counts(graph)[2] and len(drawn_counts(graph)[1]) == 3, timeout=10)
        live = drawn_counts(graph), task.done(), graph.status.get("d")
        gate.set()
        await task
        return live

    (badges, taken, undeclared), done_then, d_status = arun(main())
    assert not done_then and d_status == "running"
    assert badges == {pgraph.node_id("a"): "3", pgraph.node_id("b"): "4", pgraph.node_id("c"): "2"}
    assert taken == ["2", "2", "3"] and undeclared == ["undeclared ×1"]  # c->d not taken yet
    wait_for(lambda: len(drawn_counts(graph)[1]) == 4, "c->d drawn once the run ended")
    assert ctx.history.visits() == VISITS
    assert ctx.history.transitions() == MOVES
    assert_whole_run_drawn(graph)


def test_a_graph_attached_to_a_finished_run_draws_what_it_did(registry):
    p = loop_module()["pipeline"]()
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    assert ctx.run_sync().unwrap().status == "completed"
    graph = StageGraph(p)
    graph.attach(ctx)
    wait_for(lambda: classed(parse(graph.svg), "undeclared"), "the finished run's marks drawn")
    assert_whole_run_drawn(graph)
    assert "undeclared" in graph.snapshot_html() and "×4" in graph.snapshot_html()
    page = ctx.report()  # the HTML report draws the same graph
    assert "undeclared ×1" in page and 'class="visits"' in page and "edge next taken" in page


def test_stale_stages_and_conditional_breakpoints_are_marked(registry):
    mod = loop_module()
    p = mod["pipeline"]()
    factory = PipelineFactory(p, registry=registry)
    ctx = factory.prepare_sync().unwrap()
    ctx.breakpoints.add("d")
    assert ctx.run_sync().unwrap().status == "paused"
    graph = StageGraph(p, ctx)
    wait_for(lambda: classed(parse(graph.svg), "revisited"), "marks drawn")
    assert not classed(parse(graph.svg), "stale")

    async def double_b(state):
        return {"b": state.get("b", 0) + 2}  # b's code changed: its four records are stale

    def loss_is_high(state):
        return state.get("loss", 0) > 1

    fixed = mod["pipeline"](b_action=double_b)
    assert PipelineFactory(fixed, registry=registry).resume_sync(ctx.run_id).unwrap() is ctx  # rebound
    ctx.breakpoints.add("c", when=loss_is_high)
    graph.refresh()
    wait_for(lambda: classed(parse(graph.svg), "stale") and classed(parse(graph.svg), "conditional"), "marks")
    root = parse(graph.svg)
    assert [el.get("id") for el in classed(root, "stale")] == [pgraph.node_id("b")]
    assert "code changed" in tip(node(root, "b"))
    (cond,) = classed(root, "conditional")
    assert cond.get("id") == pgraph.node_id("c") and "when loss_is_high" in tip(cond) and "? c" in shown(cond)


def test_an_aborted_stage_is_drawn_aborted_not_failed(registry):
    mod = loop_module()
    p = mod["pipeline"]()
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    graph = StageGraph(p, ctx)

    async def main():
        mod["GATE"]["d"] = asyncio.Event()  # never set: d waits until aborted
        task = ctx.start()
        await eventually(lambda: graph.status.get("d") == "running", timeout=10)
        ctx.abort("enough")
        await task

    arun(main())
    assert ctx.status == "aborted" and graph.status["d"] == "aborted" and graph.status["c"] == "success"
    assert graph.caption.endswith("· aborted")
    again = StageGraph(p, ctx)  # attached afterwards: the same
    assert again.status["d"] == "aborted"
    assert pgraph.PALETTE["aborted"]["fill"] in ctx.report() and pgraph.PALETTE["failed"]["fill"] not in ctx.report()


SQLITE_RUN = (
    LOOP
    + """
import sys
from pipenb import PipelineFactory, PipelineRegistry
from pipenb.stores import SqliteStore
factory = PipelineFactory(pipeline(), store_factory=SqliteStore.factory(sys.argv[1]), registry=PipelineRegistry())
ctx = factory.prepare_sync().unwrap()
ctx.breakpoints.add("d")
print(ctx.run_sync().unwrap().status, ctx.run_id)
"""
)


def test_a_run_resumed_from_a_sqlite_file_in_a_new_process_draws_its_history(tmp_path):
    from pipenb.stores import SqliteStore

    db = str(tmp_path / "runs.sqlite")
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SQLITE_RUN), db], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    status, run_id = out.stdout.split()
    assert status == "paused"
    registry = PipelineRegistry(default_timeout=60)
    try:
        p = loop_module()["pipeline"]()
        ctx = PipelineFactory(p, store_factory=SqliteStore.factory(db), registry=registry).resume_sync(run_id).unwrap()
        assert ctx.history.visits() == {"a": 3, "b": 4, "c": 2}  # read from the file
        graph = StageGraph(p, ctx)
        wait_for(lambda: classed(parse(graph.svg), "undeclared"), "the file's history drawn")
        badges, taken, undeclared = drawn_counts(graph)
        assert badges == {pgraph.node_id("a"): "3", pgraph.node_id("b"): "4", pgraph.node_id("c"): "2"}
        assert taken == ["2", "2", "3"] and undeclared == ["undeclared ×1"]
        assert graph.status["d"] == "paused"
        ctx.run_sync()
        wait_for(lambda: "1" in drawn_counts(graph)[1], "c->d drawn once the run went on")
        assert drawn_counts(graph)[1] == ["1", "2", "2", "3"]
        graph.close()
    finally:
        registry.close()


@pytest.mark.parametrize("stages", [10, 34])
def test_redrawing_the_marks_keeps_the_stages_where_they_were(stages):
    """Counts and undeclared moves are drawn over the layout: a looping run's redraws (and a replay's steps) never
    move a stage under the user's pointer."""
    from pipenb import Pipeline, Stage, Step

    def noop(state):
        return None

    p = Pipeline(
        "long",
        stages=[
            Stage(f"s{i}", steps=[Step("x", noop)], routes=[f"s{max(i - 2, 0)}"], router=lambda s, r: None)
            for i in range(stages)
        ],
    )

    def boxes(svg: str) -> dict:
        root = parse(svg)
        return {
            el.get("id"): [
                (t.get("x"), t.get("y"))
                for t in el.iter("{http://www.w3.org/2000/svg}text")
                if t.get("class") != "visits"
            ]
            for el in classed(root, "node")
        }

    plain = pgraph.to_svg(p)
    counted = pgraph.to_svg(
        p,
        visits={f"s{i}": 12 for i in range(stages)},
        transitions={(f"s{i}", f"s{i + 1}"): 11 for i in range(stages - 1)}
        | {(f"s{i}", f"s{max(i - 2, 0)}"): 10 for i in range(2, stages)},
    )
    assert boxes(plain) == boxes(counted)
    jumps = pgraph.to_svg(p, transitions={("s7", "s1"): 1, ("s5", "s9"): 2, ("s3", "s3"): 1})  # none declared
    assert len(classed(parse(jumps), "undeclared")) == 3 and boxes(plain) == boxes(jumps)


def test_a_conditional_breakpoint_clicked_away_is_drawn_plain_again(registry):
    p = loop_module()["pipeline"]()
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    ctx.breakpoints.add("c", when=lambda state: state.get("b", 0) > 9)
    graph = StageGraph(p, ctx)
    wait_for(lambda: classed(parse(graph.svg), "conditional"), "the conditional breakpoint drawn")
    assert graph.breakpoints == ["c"]
    graph.toggle_breakpoint("c")  # what a click on it does
    assert "c" not in ctx.breakpoints
    wait_for(lambda: not classed(parse(graph.svg), "conditional"), "drawn as no breakpoint")
    assert "?" not in shown(node(parse(graph.svg), "c"))

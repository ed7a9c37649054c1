"""SPEC 1: what a Pipeline accepts, rejects, and how it orders and draws itself."""

import networkx as nx
import pytest

from pipenb import DefinitionError, Pipeline, Stage, Step

from ..conftest import add, stage


def noop(state):
    return None


@pytest.mark.parametrize(
    "build, names",
    [
        (lambda: Pipeline("empty", stages=[]), ["'empty'", "no stages"]),
        (lambda: Pipeline("p", stages=[stage("a", noop), stage("a", noop)]), ["'p'", "duplicate stage id 'a'"]),
        (lambda: Pipeline("p", stages=[Stage("a", steps=[Step("x", noop), Step("x", noop)])]),
         ["'p'", "'a'", "duplicate step id 'x'"]),
        (lambda: Pipeline("p", stages=[stage("a", noop, routes=["nowhere"])]), ["'p'", "'a'", "'nowhere'"]),
        (lambda: Pipeline("p", stages=[Stage("a", steps=[Step("x", noop)], pipeline=Pipeline("q", steps=[Step("y", noop)]))]),
         ["'p'", "'a'", "both steps and a pipeline"]),
        (lambda: Pipeline("p", stages=[Stage("a", steps=[Step("x", 42)])]), ["'p'", "'a'", "'x'", "callable", "42"]),
        (lambda: Pipeline("p", stages=[Stage("a")]), ["'p'", "'a'", "no steps and no pipeline"]),
        (lambda: Pipeline("p", stages=[stage("a", noop, router="nope")]), ["'p'", "'a'", "router", "callable"]),
        (lambda: Pipeline("p", stages=[Stage("a/b", steps=[Step("x", noop)])]), ["'a/b'", "'/'"]),
        (lambda: Pipeline("p", stages=[Stage("a", steps=[Step("x", lambda: None)])]), ["'x'", "state"]),
        (lambda: Pipeline("p", stages=[Stage("a", steps=[Step("x", lambda a, b, c: None)])]), ["'x'", "3 required"]),
        (lambda: Pipeline("p", steps=[Step("x", noop)], max_transitions=0), ["'p'", "max_transitions"]),
        (lambda: Pipeline("", steps=[Step("x", noop)]), ["id", "''"]),
        (lambda: Pipeline("p", stages=[stage("a", noop)], steps=[Step("x", noop)]), ["'p'", "not both"]),
    ],
)
def test_bad_definitions_raise_definition_error_naming_the_culprit(build, names):
    with pytest.raises(DefinitionError) as info:
        build()
    for name in names:
        assert name in str(info.value)


def test_self_reference_is_rejected():
    p = Pipeline("p", steps=[Step("x", noop)])
    bad = Stage("again", pipeline=p)
    p.stages = p.stages + (bad,)
    with pytest.raises(DefinitionError, match="'again'.*contains itself"):
        p._validate()


def test_stages_run_by_order_then_declaration():
    p = Pipeline("p", stages=[
        stage("c", noop, order=5), stage("a", noop), stage("b", noop, order=0), stage("d", noop, order=5),
    ])
    # a: default order 1 (its index), b: 0, c and d: 5 -> declaration order among equals.
    assert [s.id for s in p.ordered] == ["b", "a", "c", "d"]


def test_steps_shortcut_makes_one_stage_per_step():
    p = Pipeline("demo", steps=[Step("a", noop, label="First"), Step("b", noop)])
    assert [(s.id, s.label, [st.id for st in s.steps]) for s in p.ordered] == [
        ("a", "First", ["a"]), ("b", "b", ["b"])
    ]


def test_action_shapes_are_detected_once():
    async def two(state, ctx):
        return None

    class Callable:
        async def __call__(self, state):
            return None

    p = Pipeline("p", stages=[Stage("s", steps=[Step("one", noop), Step("two", two), Step("obj", Callable())])])
    one, two_, obj = p.ordered[0].steps
    assert (one.is_async, one.nargs) == (False, 1)
    assert (two_.is_async, two_.nargs) == (True, 2)
    assert (obj.is_async, obj.nargs) == (True, 1)


def test_to_networkx_nodes_edges_and_nesting():
    training = Pipeline("training", steps=[Step("fit", noop), Step("score", noop)])
    p = Pipeline("etl", stages=[
        stage("load", noop, label="Load data"),
        stage("check", noop, router=lambda s, r: None, routes=["load"]),
        Stage("train", pipeline=training),
    ])
    g = p.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert list(g.nodes) == ["load", "check", "train", "train/fit", "train/score"]
    assert g.nodes["load"]["label"] == "Load data"
    assert g.nodes["train"]["kind"] == "pipeline" and g.nodes["train/fit"]["kind"] == "steps"
    assert g.nodes["train/score"]["order"] == 1 and g.nodes["train/fit"]["parent"] == "train"
    assert g.edges["load", "check"]["kind"] == "next"
    assert g.edges["check", "load"]["kind"] == "route"
    assert g.edges["train/fit", "train/score"]["kind"] == "next"


def test_to_graphviz_draws_clusters_and_dashed_routes():
    import graphviz

    training = Pipeline("training", steps=[Step("fit", noop)])
    p = Pipeline("etl", stages=[stage("a", noop, routes=["a"], router=lambda s, r: None), Stage("t", pipeline=training)])
    dot = p.to_graphviz()
    assert isinstance(dot, graphviz.Digraph)
    src = dot.source
    assert "subgraph cluster_n1" in src and 'id="cluster-pipenb-stage-t"' in src
    assert "style=dashed" in src


def test_pipeline_repr_svg_escapes_user_text():
    p = Pipeline("p", stages=[stage("a", noop, label='<script>alert("x")</script> & co')])
    svg = p._repr_svg_()
    assert svg.lstrip().startswith("<?xml") or svg.lstrip().startswith("<svg")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_fallback_svg_without_dot(monkeypatch):
    import graphviz

    from pipenb import graph

    def missing(*a, **k):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    p = Pipeline("p", stages=[stage("a", noop, label="<b>"), stage("b", add("x"), routes=["a"], router=lambda s, r: None)])
    svg = graph.to_svg(p, status={"a": "success"})
    assert svg.startswith("<svg") and "&lt;b&gt;" in svg and "<b>" not in svg
    assert graph.node_id("a") in svg and "stroke-dasharray" in svg and 'class="edge next"' in svg


@pytest.mark.needs_dot
def test_odd_stage_ids_draw_in_graphviz():
    """Ids with ':' (a port in DOT), quotes, backslashes and markup still draw in `dot`, one node each."""
    import xml.etree.ElementTree as ET

    from pipenb import graph

    ids = ["a:b", 'q"uote', "back\\slash", "<x>&"]
    p = Pipeline("odd", stages=[stage(i, noop, routes=[ids[0]], router=lambda s, r: None) for i in ids])
    svg = graph.to_graphviz(p).pipe(format="svg").decode("utf-8")  # dot itself, not the fallback layout
    root = ET.fromstring(svg.split("?>", 1)[-1].split("]>", 1)[-1])
    found = {el.get("id") for el in root.iter()}
    for i in ids:
        assert graph.node_id(i) in found
    assert len(p.to_networkx().nodes) == 4

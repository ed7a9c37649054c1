"""``plan_stage``: where the run goes on after a stage and what its commit writes, as a table of cases."""

from __future__ import annotations

import pytest

from pipenb import END, Pause, Pipeline, Stage, Step
from pipenb.core.plan import HISTORY_MEMORY, HISTORY_OFF, HISTORY_ROWS, RouterOnly, plan_stage, sub_after


def _noop(state):
    return None


def _route(state, results):
    return None


inner = Pipeline("inner", stages=[Stage("i1", steps=[Step("t", _noop)]), Stage("i2", steps=[Step("t", _noop)])])
root = Pipeline("root", stages=[
    Stage("a", steps=[Step("t", _noop)]),
    Stage("b", steps=[Step("t", _noop)], router=_route, routes=["a"]),
    Stage("sub", pipeline=inner),                   # a sub-pipeline stage without a router
    Stage("subr", pipeline=inner, router=_route),   # ... and with one
    Stage("z", steps=[Step("t", _noop)]),
])
S = {s.id: s for s in root.ordered}
N = {s.id: s for s in inner.ordered}

# (name, pipeline, stage, address, decision, after, durable, history) ->
#   (goto, terminated, paused, resume_at, router_only, clear, status, row, record)
CASES = [
    ("advance to next, in memory", root, S["a"], ("a",), None, (), False, HISTORY_MEMORY,
     (1, False, False, None, False, False, "running", False, True)),
    ("advance to next, durable: the cursor moves on", root, S["a"], ("a",), None, (), True, HISTORY_ROWS,
     (1, False, False, ("b",), False, False, "running", True, True)),
    ("past the last stage completes, in memory", root, S["z"], ("z",), None, (), False, HISTORY_OFF,
     (None, False, False, None, False, False, "running", False, False)),
    ("past the last stage completes, durable: the checkpoint is cleared", root, S["z"], ("z",), None, (), True,
     HISTORY_ROWS, (None, False, False, None, False, True, "running", True, True)),
    ("jump", root, S["b"], ("b",), "a", (), False, HISTORY_MEMORY,
     (0, False, False, None, False, False, "running", False, True)),
    ("jump, durable", root, S["b"], ("b",), "a", (), True, HISTORY_ROWS,
     (0, False, False, ("a",), False, False, "running", True, True)),
    ("END at the root terminates", root, S["b"], ("b",), END, (), False, HISTORY_MEMORY,
     (None, True, False, None, False, False, "running", False, True)),
    ("END at the root, durable: the checkpoint is cleared", root, S["b"], ("b",), END, (), True, HISTORY_ROWS,
     (None, True, False, None, False, True, "running", True, True)),
    ("END inside a sub-pipeline ends it: the run goes on after its stage", inner, N["i1"], ("sub", "i1"), END,
     ("subr",), True, HISTORY_ROWS, (None, True, False, ("subr",), False, False, "running", True, True)),
    ("END inside a sub-pipeline whose stage has a router: back to that router", inner, N["i1"], ("subr", "i1"), END,
     RouterOnly(("subr",)), True, HISTORY_ROWS, (None, True, False, ("subr",), True, False, "running", True, True)),
    ("last stage of a sub-pipeline whose stage has a router, durable", inner, N["i2"], ("subr", "i2"), None,
     RouterOnly(("subr",)), True, HISTORY_MEMORY, (None, False, False, ("subr",), True, False, "running", False, True)),
    ("last stage of a sub-pipeline, in memory: nothing written", inner, N["i2"], ("sub", "i2"), None, ("subr",),
     False, HISTORY_MEMORY, (None, False, False, None, False, False, "running", False, True)),
    ("Pause: a checkpoint where it continues, paused", root, S["b"], ("b",), Pause("a"), (), False, HISTORY_MEMORY,
     (None, False, True, ("a",), False, False, "paused", False, True)),
    ("Pause, durable with rows", root, S["b"], ("b",), Pause("b", timeout=0), (), True, HISTORY_ROWS,
     (None, False, True, ("b",), False, False, "paused", True, True)),
    ("Pause inside a sub-pipeline continues at the same level", inner, N["i2"], ("sub", "i2"), Pause("i1"), ("subr",),
     True, HISTORY_OFF, (None, False, True, ("sub", "i1"), False, False, "paused", False, False)),
    ("sub-pipeline stage without a router writes nothing of its own, durable", root, S["sub"], ("sub",), None, (),
     True, HISTORY_ROWS, (3, False, False, None, False, False, "running", False, False)),
    ("sub-pipeline stage with a router: its decision moves the cursor, durable", root, S["subr"], ("subr",), None, (),
     True, HISTORY_ROWS, (4, False, False, ("z",), False, False, "running", False, False)),
    ("sub-pipeline stage with a router jumps, in memory", root, S["subr"], ("subr",), "a", (), False, HISTORY_MEMORY,
     (0, False, False, None, False, False, "running", False, False)),
    ("history rows on, in memory only: a record, no row", root, S["a"], ("a",), None, (), False, HISTORY_MEMORY,
     (1, False, False, None, False, False, "running", False, True)),
    ("history off: neither", root, S["a"], ("a",), None, (), True, HISTORY_OFF,
     (1, False, False, ("b",), False, False, "running", False, False)),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_plan(case):
    _, pipe, stage, addr, decision, after, durable, history, expected = case
    plan = plan_stage(pipe, stage, addr, decision, after, durable, history)
    assert plan.address == addr
    got = (plan.goto, plan.terminated, plan.paused, plan.resume_at, plan.router_only, plan.clear, plan.status,
           plan.row, plan.record)
    assert got == expected
    assert type(plan.resume_at) in (tuple, type(None))  # never a RouterOnly marker in a checkpoint


def test_where_a_sub_pipeline_goes_on_when_it_ends():
    assert sub_after(root, S["sub"], ("sub",), ()) == ("subr",)
    marker = sub_after(root, S["subr"], ("subr",), ())
    assert type(marker) is RouterOnly and marker == ("subr",)
    nested = sub_after(inner, N["i2"], ("x", "i2"), ("y",))
    assert nested == ("y",)


def test_plans_are_immutable_tuples():
    plan = plan_stage(root, S["a"], ("a",), None, (), False, HISTORY_OFF)
    with pytest.raises(AttributeError):
        plan.goto = 3
    assert not plan.writes and plan_stage(root, S["z"], ("z",), None, (), True, HISTORY_OFF).writes

"""SPEC 14: looking back at a run (visits, transitions, blame, compare, stale) and conditional breakpoints.

Live, finished, and read back from a SQLite file by a real second process.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from pipenb import (
    Breakpoints, PipelineFactory, PipelineRegistry, RunComparison, StateDiff,
)
from pipenb.core.history import replay
from pipenb.stores import SqliteStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The pipeline's code as source, so a test can build the same functions with other comments
# and blank lines (no change) or other code (a change), as a re-run notebook cell does.
SOURCE = '''
from pipenb import Pause, Pipeline, Stage, Step

def load(state):
    return {"n": state.get("n", 0) + 1}

def check(state):
    return {"model": {"coef": state["n"] * 10, "kind": "linear"}}

def route(state, results):
    if state.get("hold") and not state.get("released"):
        return Pause("load")
    return "load" if state["n"] < LOOPS else "report" if state.get("skip") else None

def fit(state):
    return {"fitted": True, "mode": state.get("mode") in {"a", "b", "c"}}  # a frozenset constant

def report(state):
    return {"report": "n=%d" % state["n"]}

def build(pid="look"):
    train = Pipeline(pid + "-train", stages=[Stage("fit", steps=[Step("f", fit)])])
    return Pipeline(pid, stages=[
        Stage("load", steps=[Step("l", load)]),
        Stage("check", steps=[Step("c", check)], router=route, routes=["load"]),
        Stage("train", pipeline=train),
        Stage("report", steps=[Step("r", report)]),
    ])
'''


def define(source=SOURCE, loops=3, name="lookdefs"):
    space = {"LOOPS": loops, "__name__": name}
    exec(compile(source, f"<{name}>", "exec"), space)
    return space["build"]()


def run(pipeline, initial=None, registry=None):
    factory = PipelineFactory(pipeline, registry=registry or PipelineRegistry())
    ctx = factory.prepare_sync(initial_state=initial).unwrap()
    return factory, ctx, ctx.run_sync().unwrap()


LOOP_VISITS = {"load": 3, "check": 3, "train/fit": 1, "report": 1}
LOOP_MOVES = {("load", "check"): 3, ("check", "load"): 2, ("check", "train/fit"): 1, ("train/fit", "report"): 1}


@pytest.mark.parametrize("loops, initial, visits, moves", [
    (3, None, LOOP_VISITS, LOOP_MOVES),
    (1, None, {"load": 1, "check": 1, "train/fit": 1, "report": 1},
     {("load", "check"): 1, ("check", "train/fit"): 1, ("train/fit", "report"): 1}),
    # The router jumps to "report", a stage its routes do not declare: still a move.
    (2, {"skip": True}, {"load": 2, "check": 2, "report": 1},
     {("load", "check"): 2, ("check", "load"): 1, ("check", "report"): 1}),
])
def test_visits_and_transitions(loops, initial, visits, moves):
    _, ctx, res = run(define(loops=loops), initial)
    assert res.status == "completed"
    assert ctx.history.visits() == visits
    assert ctx.history.transitions() == moves


def test_edits_are_not_visits_nor_moves_and_blame_names_them():
    _, ctx, res = run(define(), {"hold": True})
    assert res.status == "paused"
    ctx.update_state({"released": True, "n": 5})
    assert ctx.history[-1].address == "load (edit)"
    assert ctx.history.visits() == {"load": 1, "check": 1}   # live, paused, an edit last
    assert ctx.run_sync().unwrap().status == "completed"
    h = ctx.history
    assert h.visits() == {"load": 2, "check": 2, "train/fit": 1, "report": 1}
    # The move from check to load crosses the edit; the edit itself is no move.
    assert h.transitions() == {("load", "check"): 2, ("check", "load"): 1, ("check", "train/fit"): 1,
                               ("train/fit", "report"): 1}
    assert h.blame("n") == [(0, "load", None, 1), (2, "(edit)", 1, 5), (3, "load", 5, 6)]


def test_blame_top_level_key_and_key_path():
    _, ctx, _ = run(define())
    h = ctx.history
    coef = h.blame(("model", "coef"))
    assert [(a, old, new) for _, a, old, new in coef] == [("check", None, 10), ("check", 10, 20), ("check", 20, 30)]
    assert [r[0] for r in coef] == [1, 3, 5]  # seqs, oldest first
    whole = h.blame("model")
    assert len(whole) == 3 and whole[0][2] is None and dict(whole[0][3]) == {"coef": 10, "kind": "linear"}
    assert h.blame(("model", "kind")) == [(1, "check", None, "linear")]  # written once, then unchanged
    assert h.blame("never") == []
    with pytest.raises(ValueError):
        h.blame(())


def test_compare_same_runs_none_other_state_and_length_diverge():
    _, a, _ = run(define())
    _, b, _ = run(define())
    same = a.history.compare(b.history)
    assert isinstance(same, RunComparison) and same.diverged_at is None and len(same) == 8
    assert not same.diff(3)
    _, c, _ = run(define(loops=2))
    other = a.history.compare(c.history)
    assert other.diverged_at == 4  # both ran load, check, load, check; then "load" against "train/fit"
    diff = other.diff(4)
    assert isinstance(diff, StateDiff) and diff.keys  # a's state after load #3 vs c's after train/fit
    _, d, _ = run(define(), {"extra": 1})
    assert a.history.compare(d.history).diverged_at == 0  # other initial state
    with pytest.raises(IndexError):
        other.diff(99)


def test_a_fork_diverges_at_its_fork_point_or_later():
    factory, ctx, _ = run(define())
    fork = factory.fork_sync(ctx.run_id, at=4).unwrap()
    assert fork.history.compare(ctx.history).diverged_at == 4   # its history is the 4 records before
    fork.update_state({"n": 100})  # the fork takes another way from there
    fork.run_sync().unwrap()
    cmp = ctx.history.compare(fork.history)
    assert cmp.diverged_at == 4 and cmp.diff(4).changed


# Source edits: (name, old text, new text, stale addresses after rebinding).
EDITS = [
    ("comment and blank lines", "def check(state):\n", "def check(state):\n    # a comment\n\n", set()),
    ("moved down", "\ndef load(state):", "\n\n\n\ndef load(state):", set()),
    ("step code", "* 10", "* 11", {"check"}),
    ("router code", "< LOOPS", "<= LOOPS - 1 + 0 * 7", {"check"}),
    ("sub-pipeline step", '{"fitted": True,', '{"fitted": 1,', {"train/fit"}),
    ("a set constant", '{"a", "b", "c"}', '{"a", "b", "d"}', {"train/fit"}),
    ("nested function", "def fit(state):\n    return",
     "def fit(state):\n    inner = lambda: 1\n    return", {"train/fit"}),
]


@pytest.mark.parametrize("name, old, new, expected", EDITS, ids=[e[0] for e in EDITS])
def test_stale_after_rebinding(name, old, new, expected):
    assert old in SOURCE
    _, ctx, res = run(define())
    assert res.status == "completed" and ctx.history.stale() == []
    ctx.rebind(define(SOURCE.replace(old, new)))
    assert ctx.history.stale() == [r for r in ctx.history if r.address in expected]
    assert ctx.history.stale(define()) == []  # against the code that ran


def test_records_made_with_the_new_code_are_not_stale():
    _, ctx, res = run(define(), {"hold": True})
    assert res.status == "paused" and [r.address for r in ctx.history] == ["load", "check"]
    ctx.rebind(define(SOURCE.replace("* 10", "* 11")))
    assert [r.seq for r in ctx.history.stale()] == [1]
    ctx.update_state({"released": True})
    assert ctx.run_sync().unwrap().status == "completed"
    assert [r.seq for r in ctx.history.stale()] == [1]  # the edit (seq 2) and the new checks are not
    assert [r.seq for r in ctx.history.stale(define())] == [4, 6]  # the new checks, against the old code


def test_a_stage_the_new_definition_lost_is_stale():
    _, ctx, _ = run(define(loops=1))
    gone = define(SOURCE.replace('Stage("train", pipeline=train),', ""))
    assert [r.address for r in ctx.history.stale(gone)] == ["train/fit"]
    with pytest.raises(ValueError, match="stale"):
        replay([], None).stale()  # no context, no pipeline given


# -- conditional breakpoints ---------------------------------------------------------

def test_breakpoints_keep_their_set_behaviour():
    _, ctx, _ = run(define(loops=1), {"hold": True})
    bps = ctx.breakpoints
    assert isinstance(bps, Breakpoints) and bps == set() and len(bps) == 0
    bps.add("report")
    bps.add("train/fit", when=lambda s: True)
    assert "report" in bps and "load" not in bps and len(bps) == 2 and bps == {"report", "train/fit"}
    assert sorted(bps) == ["report", "train/fit"] and set(bps) | {"x"} == {"report", "train/fit", "x"}
    assert bps.conditional == {"train/fit"} and bps.condition("report") is None
    # What StageGraph does with them: update and difference_update keep the conditions of those kept.
    bps |= {"train/fit"}
    assert bps.conditional == {"train/fit"}
    bps.update({"report", "train/fit", "train"})
    bps.difference_update(bps - {"train/fit", "train"})
    assert bps == {"train/fit", "train"} and bps.conditional == {"train/fit"}
    bps.discard("train/fit")
    bps.discard("not there")
    assert bps == {"train"}
    bps.clear()
    assert len(bps) == 0 and not bps


@pytest.mark.parametrize("address, hint", [("chekc", "'check'"), ("train/fti", "'train/fit'"), ("zzz", "load")])
def test_a_breakpoint_on_no_stage_is_a_value_error_naming_it_and_the_closest(address, hint):
    _, ctx, _ = run(define(loops=1), {"hold": True})
    with pytest.raises(ValueError) as err:
        ctx.breakpoints.add(address)
    assert repr(address) in str(err.value) and hint in str(err.value)
    with pytest.raises(ValueError):
        ctx.breakpoints.update([address])
    assert address not in ctx.breakpoints


def test_a_condition_decides_before_the_stage_runs():
    factory = PipelineFactory(define(), registry=PipelineRegistry())
    ctx = factory.prepare_sync().unwrap()
    seen = []
    ctx.breakpoints.add("check", when=lambda s: seen.append(s["n"]) or s["n"] == 2)
    res = ctx.run_sync().unwrap()
    assert res.status == "paused" and ctx.position == "check" and ctx.state["n"] == 2
    assert seen == [1, 2] and ctx.history.visits() == {"load": 2, "check": 1}  # check #2 did not run yet
    assert ctx.run_sync().unwrap().status == "completed" and seen == [1, 2, 3]


def test_a_condition_that_raises_pauses_and_says_why():
    factory = PipelineFactory(define(), registry=PipelineRegistry())
    ctx = factory.prepare_sync().unwrap()
    reasons = []
    ctx.on("pipeline:paused", lambda e: reasons.append(e.reason))
    ctx.breakpoints.add("check", when=lambda s: s["loss"] > 1.0)
    res = ctx.run_sync().unwrap()
    assert res.status == "paused" and ctx.position == "check"
    assert "'check'" in reasons[-1] and "KeyError" in reasons[-1] and "loss" in reasons[-1]
    assert isinstance(ctx.breakpoints.errors["check"], KeyError)
    ctx.breakpoints.add("check", when=lambda s: False)  # fixed: replaces the condition
    assert ctx.run_sync().unwrap().status == "completed"


def test_rebinding_keeps_the_breakpoints_and_checks_new_ones_against_the_new_definition():
    factory, ctx, _ = run(define(), {"hold": True})
    ctx.breakpoints.add("report", when=lambda s: True)
    newer = define(SOURCE.replace('Stage("report"', 'Stage("summary"').replace('"n=%d"', '"n:%d"'))
    ctx.rebind(newer)
    assert "report" in ctx.breakpoints and ctx.breakpoints.conditional == {"report"}
    ctx.breakpoints.add("summary")
    with pytest.raises(ValueError):
        ctx.breakpoints.add("reportt")


# -- read back from a SQLite file by another process ------------------------------------

SCRIPT = textwrap.dedent('''
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from pipenb import PipelineFactory, PipelineRegistry
    from pipenb.core.history import replay
    from pipenb.stores import SqliteStore
    import lookmod
    db, run_id = sys.argv[2], sys.argv[3]
    newer = lookmod.define(lookmod.SOURCE.replace("* 10", "* 12"))
    factory = PipelineFactory(newer, store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    ctx = factory.resume_sync(run_id).unwrap()
    h = ctx.history
    plain = replay(SqliteStore(db, run_id).load_history(), None)  # no context: stale(pipeline)
    print(json.dumps({
        "visits": h.visits(), "moves": [list(k) + [v] for k, v in h.transitions().items()],
        "blame": [list(b) for b in h.blame(("model", "coef"))],
        "stale": [r.seq for r in h.stale()], "plain_stale": [r.seq for r in plain.stale(newer)],
        "same_stale": plain.stale(lookmod.define()), "diverged": h.compare(plain).diverged_at,
    }))
''')


def test_sqlite_history_looked_back_at_from_a_new_process(tmp_path):
    (tmp_path / "lookmod.py").write_text(
        "import sys\n" + f"sys.path.insert(0, {ROOT!r})\n"
        + f"SOURCE = {SOURCE!r}\n"
        + "def define(source=SOURCE, loops=3):\n"
        + "    space = {'LOOPS': loops, '__name__': 'lookdefs'}\n"
        + "    exec(compile(source, '<lookdefs>', 'exec'), space)\n"
        + "    return space['build']()\n")
    db = tmp_path / "runs.sqlite"
    factory = PipelineFactory(define(), store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    ctx = factory.prepare_sync(run_id="r1", initial_state={"hold": True}).unwrap()
    ctx.run_sync().unwrap()
    ctx.update_state({"released": True})
    ctx.breakpoints.add("report")
    assert ctx.run_sync().unwrap().status == "paused" and ctx.position == "report"
    # A row of an older pipenb (8 fields, no fingerprint): unknown, never stale.
    store = SqliteStore(db, "r1")
    store.append_history((99, "check", "check", "check", (), None, 0.0, 0.0))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(db), "r1"], capture_output=True,
                         text=True, timeout=60, env=env, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["visits"] == {"load": 3, "check": 4, "train/fit": 1}
    moves = {(a, b): n for a, b, n in seen["moves"]}
    assert moves == {("load", "check"): 3, ("check", "load"): 2, ("check", "train/fit"): 1, ("train/fit", "check"): 1}
    assert seen["blame"] == [[1, "check", None, 10], [4, "check", 10, 20], [6, "check", 20, 30]]
    checks = [r.seq for r in ctx.history if r.address == "check"]
    assert seen["stale"] == seen["plain_stale"] == checks and seen["same_stale"] == []
    assert seen["diverged"] is None
    assert replay(store.load_history(), None).code(-1) is None

"""Random pipelines for property tests, built from JSON-able specs.

A spec can cross a process boundary (the SQLite new-process test rebuilds the
same pipeline from it). Steps and routers are deterministic functions of the
state: steps append to a ``trace`` and count ``visits`` per stage, routers
come from a finite table (advance, end, bounded loop, pause on first visit).
"""

from __future__ import annotations

import json
import sys

from hypothesis import strategies as st

from pipenb import END, Pause, Pipeline, Stage, Step


def _step(addr: str, step_id: str, first: bool):
    tag = f"{addr}:{step_id}"

    def action(state):
        patch = {"trace": tuple(state.get("trace", ())) + (tag,)}
        if first:
            visits = state.get("visits", {})
            patch["visits"] = {addr: visits.get(addr, 0) + 1}
        return patch

    return action


def _router(kind, addr: str, stage_ids: list[str]):
    if kind == "none":
        return None
    if kind == "end":
        return lambda state, results: END
    op, target, limit = kind
    target_id = stage_ids[target % len(stage_ids)]
    if op == "loop":
        def loop(state, results):
            return target_id if state.get("visits", {}).get(addr, 0) < limit else None

        return loop
    if op == "pause":
        def pause(state, results):
            return Pause(target_id) if state.get("visits", {}).get(addr, 0) == 1 else None

        return pause
    raise ValueError(kind)


def build(spec: dict, prefix: str = "") -> Pipeline:
    stage_ids = [s["id"] for s in spec["stages"]]
    stages = []
    for s in spec["stages"]:
        addr = prefix + s["id"]
        router = _router(s["router"], addr, stage_ids) if "sub" not in s else None
        if "sub" in s:
            stages.append(Stage(s["id"], pipeline=build(s["sub"], addr + "/"),
                                router=(lambda st_, r: END) if s["router"] == "end" else None))
        else:
            steps = [Step(f"t{i}", _step(addr, f"t{i}", i == 0)) for i in range(s["steps"])]
            stages.append(Stage(s["id"], steps=steps, router=router))
    return Pipeline(spec["id"], stages=stages)


def leaf_addresses(spec: dict, prefix: str = "") -> list[str]:
    out = []
    for s in spec["stages"]:
        if "sub" in s:
            out += leaf_addresses(s["sub"], prefix + s["id"] + "/")
        else:
            out.append(prefix + s["id"])
    return out


ROUTERS = st.one_of(
    st.just("none"), st.just("none"), st.just("end"),
    st.tuples(st.just("loop"), st.integers(0, 5), st.integers(1, 2)),
    st.tuples(st.just("pause"), st.integers(0, 5), st.just(0)),
)


def pipeline_specs(depth: int = 2, pid: str = "gen"):
    def stage(i):
        leaf = st.fixed_dictionaries({"id": st.just(f"s{i}"), "steps": st.integers(1, 3), "router": ROUTERS})
        if depth == 0:
            return leaf
        sub = st.fixed_dictionaries({
            "id": st.just(f"s{i}"), "sub": pipeline_specs(depth - 1, f"{pid}{i}"),
            "router": st.sampled_from(["none", "none", "end"]),
        })
        return st.one_of(leaf, leaf, sub)

    return st.integers(1, 4).flatmap(
        lambda n: st.tuples(*[stage(i) for i in range(n)]).map(lambda stages: {"id": pid, "stages": list(stages)})
    )


def check_stage_events(events) -> None:
    """Every stage:start is closed by exactly one stage:success/paused/failure of the same path."""
    open_paths: list = []
    for e in events:
        if e.name == "stage:start":
            open_paths.append(e.path)
        elif e.name in ("stage:success", "stage:paused", "stage:failure"):
            assert open_paths and open_paths[-1] == e.path, (e.name, e.path, open_paths)
            open_paths.pop()
        elif e.name in ("pipeline:paused", "pipeline:success", "pipeline:failure") and len(e.path) == 1:
            assert not open_paths, f"{e.name} with open stages {open_paths}"
    assert not open_paths


if __name__ == "__main__":
    # python -m tests.pipegen SPEC_JSON DB RUN_ID BREAKPOINTS_JSON: resume once from SQLite,
    # run to the next pause or the end, print the status.
    from pipenb import PipelineFactory, PipelineRegistry
    from pipenb.stores import SqliteStore

    spec, db, run_id, bps = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    factory = PipelineFactory(build(spec), store_factory=SqliteStore.factory(db), registry=PipelineRegistry())
    ctx = factory.resume_sync(run_id).unwrap()
    ctx.breakpoints.update(bps)
    events = []
    ctx.on("*", events.append)
    res = ctx.run_sync().unwrap()
    check_stage_events(events)
    print(res.status)

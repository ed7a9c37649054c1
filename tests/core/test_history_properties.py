"""Property tests of SPEC 10 over random pipelines (tests/pipegen.py): sub-pipelines, jumps,
router pauses, and an injected failing step.

(a) each record's state is the state a ``stage:success``/``stage:paused``
listener saw right after that stage committed, in memory and with SQLite
(there also after rebuilding everything from the file);
(b) forking at any record and running the fork to its end (resuming through
pauses, retrying failures) reaches the original run's final state, in
memory, from SQLite through the live context, and from SQLite with a freshly
built factory and registry.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipenb import InMemoryStore, PipelineFactory, PipelineRegistry, StepError
from pipenb.core.history import replay
from pipenb.stores import SqliteStore

from ..pipegen import build, check_stage_events, leaf_addresses, pipeline_specs

RESERVED = "__pipeline_data__"


def user(state):
    return {k: v for k, v in state.items() if k != RESERVED}


def faulty_build(spec, fault):
    """``build(spec)`` whose step ``fault["at"]`` raises while ``fault["left"]`` > 0 (once per arming)."""
    pipeline = build(spec)
    if fault.get("at") is None:
        return pipeline
    addr, step_id = fault["at"]
    stage = pipeline.resolve(tuple(addr.split("/")))[-1]
    for step in stage.steps:
        if step.id == step_id:
            original = step.action

            def flaky(state, original=original):
                if fault["left"] > 0:
                    fault["left"] -= 1
                    raise RuntimeError("injected")
                return original(state)

            step.action = flaky
    return pipeline


def drive(ctx, fault, events=None):
    """Run to completed/terminated: resume through pauses, retry an injected failure."""
    failures = 0
    for _ in range(500):
        res = ctx.run_sync()
        if res.is_err:
            assert isinstance(res.error, StepError) and "injected" in str(res.error.__cause__), res.error
            failures += 1
            assert failures <= 1
            continue
        if res.value.status != "paused":
            return res.value.status, user(res.value.state)
    raise AssertionError("never finished")


def watch(ctx):
    """(events, committed): the state a listener saw right after each leaf stage committed."""
    events, committed = [], []
    ctx.on("*", events.append)

    def seen(e):
        committed.append((e.stage_address, dict(ctx.state)))

    ctx.on("stage:success", seen)
    ctx.on("stage:paused", seen)
    return events, committed


@st.composite
def cases(draw):
    spec = draw(pipeline_specs())
    steps = [(a, "t0") for a in leaf_addresses(spec)]
    at = draw(st.one_of(st.none(), st.sampled_from(steps)))
    picks = draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=3))
    return spec, at, picks


def records(h):
    return [(r.address, dict(r.state)) for r in h]


def check_records(h, committed, leaves):
    got = records(h)
    assert got == [c for c in committed if c[0] in leaves]
    assert all(RESERVED not in r.state for r in h)
    for i in range(len(h)):  # state_before chains the records
        assert dict(h.state_before(i)) == (got[i - 1][1] if i else dict(h.initial))


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(cases())
def test_records_match_what_listeners_saw_and_forks_reach_the_same_end(tmp_path_factory, case):
    spec, at, picks = case
    leaves = set(leaf_addresses(spec))
    fault = {"at": at, "left": 1}
    registry = PipelineRegistry(default_timeout=60)
    stores: dict = {}
    db = tmp_path_factory.mktemp("hprop") / "runs.sqlite"
    sqlite = SqliteStore.factory(db)
    opened = [sqlite]

    def from_file():
        """A freshly built factory and registry over the same file: what a new kernel would make."""
        sf = SqliteStore.factory(db)
        opened.append(sf)
        return PipelineFactory(faulty_build(spec, fault), registry=PipelineRegistry(default_timeout=60),
                               store_factory=sf)

    factories = {
        "memory": PipelineFactory(faulty_build(spec, fault), registry=registry,
                                  store_factory=lambda rid: stores.setdefault(rid, InMemoryStore())),
        "sqlite": PipelineFactory(faulty_build(spec, fault), registry=registry, store_factory=sqlite),
    }
    expected = None
    try:
        for backend, factory in factories.items():
            fault["left"] = 1
            ctx = factory.prepare_sync(run_id=f"src-{backend}").unwrap()
            events, committed = watch(ctx)
            end = drive(ctx, fault)
            check_stage_events(events)
            if expected is None:
                expected = end
            assert end == expected, backend
            h = ctx.history
            check_records(h, committed, leaves)
            n = len(h)
            assert n >= 1
            indices = sorted({0, n - 1} | {p % n for p in picks})
            # (b) fork at records and run each fork to its end: the same final state.
            sources = [("live", factory)]
            if backend == "sqlite":
                fresh = from_file()
                replayed = fresh.fork_sync(ctx.run_id, n - 1, new_run_id="probe").unwrap()
                # The history replayed from the file alone: the same records, states included.
                assert records(replayed.history) == records(h)[:-1]
                assert dict(replayed.state) == dict(h.state_before(n - 1))
                sources.append(("fresh", fresh))
            for how, f in sources:
                for i in indices:
                    fork = f.fork_sync(ctx.run_id, i, new_run_id=f"{backend}-{how}-{i}").unwrap()
                    assert fork.status == "prepared" and fork.position == h[i].address
                    assert dict(fork.state) == dict(h.state_before(i))
                    assert records(fork.history) == records(h)[:i]
                    fault["left"] = 1  # the fork meets the same failure if it runs that step
                    fevents, fcommitted = watch(fork)
                    assert drive(fork, fault) == expected, (backend, how, i)
                    check_stage_events(fevents)
                    check_records(fork.history, records(h)[:i] + fcommitted, leaves)
            # The source is unchanged by its forks.
            assert records(ctx.history) == records(h) and user(ctx.state) == expected[1]
        # (a) with SQLite after a restart: every record, the last included, comes back from the file.
        reader = SqliteStore.factory(db)
        opened.append(reader)
        from_disk = replay(reader("src-sqlite").load_history(), None)
        assert records(from_disk) == records(registry.get_context("src-sqlite").history)
        assert [r.seq for r in from_disk] == list(range(len(from_disk)))
    finally:
        registry.close()
        for sf in opened:
            sf.close()

"""Where steps run (SPEC 8), through the public API: Step/Stage/PipelineFactory ``executor=``,
``ctx.start()``/``run()``/``run_sync()``/``step()``, abort, out-of-process executors, progress.

``tests/core/test_executor.py`` tests ``pipenb.core.executors`` on its own; this file drives the engine.
"""

import asyncio
import concurrent.futures as cf
import multiprocessing
import pathlib
import threading
import time
import textwrap

import pytest

from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.core.errors import AbortedError, DefinitionError, StepError

from ..conftest import arun, eventually


def where_am_i():
    """(thread name, whether a loop runs on this thread)."""
    try:
        asyncio.get_running_loop()
        on_loop = True
    except RuntimeError:
        on_loop = False
    return threading.current_thread().name, on_loop


def recorder(seen, key="s"):
    def action(state):
        seen.append((key, *where_am_i(), threading.get_ident()))
        return {key: state.get(key, 0) + 1}

    action.__name__ = f"record_{key}"
    return action


# ---- defaults and nearest-wins -------------------------------------------------------------------------


def test_start_runs_sync_steps_on_pipenb_threads(make):
    seen = []
    _, ctx, _ = make(Pipeline("p", steps=[Step("a", recorder(seen))]))

    async def main():
        return (await ctx.start()).unwrap()

    res = arun(main())
    assert res.status == "completed" and res.state == {"s": 1}
    (_, name, on_loop, _), = seen
    assert name.startswith("pipenb-step-") and not on_loop


def test_run_run_sync_and_step_run_inline_on_the_loop_thread(make):
    seen = []
    p = Pipeline("p", steps=[Step("a", recorder(seen, "a")), Step("b", recorder(seen, "b"))])

    async def awaited():
        _, ctx, _ = make(p)
        assert (await ctx.run()).unwrap().status == "completed"
        return threading.get_ident()

    loop_thread = arun(awaited())
    _, ctx, _ = make(p)
    assert ctx.run_sync().unwrap().status == "completed"

    async def stepped():
        _, ctx, _ = make(p)
        assert (await ctx.step()).unwrap().status == "paused"
        assert (await ctx.step()).unwrap().status == "completed"

    arun(stepped())
    assert len(seen) == 6
    for _key, _name, on_loop, ident in seen:
        assert on_loop and ident == loop_thread == threading.get_ident()  # arun runs its loop right here


def test_inline_on_a_step_overrides_starts_default(make):
    seen = []
    p = Pipeline("p", stages=[Stage("s", steps=[Step("i", recorder(seen, "i"), executor="inline"),
                                                Step("t", recorder(seen, "t"))])])
    _, ctx, _ = make(p)

    async def main():
        res = (await ctx.start()).unwrap()
        return res, threading.get_ident()

    res, loop_thread = arun(main())
    assert res.state == {"i": 1, "t": 1}
    by_key = {k: (name, on_loop, ident) for k, name, on_loop, ident in seen}
    assert by_key["i"][1] and by_key["i"][2] == loop_thread
    assert by_key["t"][0].startswith("pipenb-step-") and not by_key["t"][1]


def test_nearest_executor_wins_step_over_stage_over_factory(make):
    pools = {name: cf.ThreadPoolExecutor(1, thread_name_prefix=name) for name in ("fac", "stg", "stp")}
    seen = []
    try:
        p = Pipeline("p", stages=[
            Stage("plain", steps=[Step("f", recorder(seen, "f"))]),
            Stage("staged", steps=[Step("g", recorder(seen, "g")),
                                   Step("h", recorder(seen, "h"), executor=pools["stp"]),
                                   Step("k", recorder(seen, "k"), executor="thread")],
                  executor=pools["stg"]),
        ])
        _, ctx, _ = make(p, executor=pools["fac"])
        res = arun(ctx.run()).unwrap()  # run(): default inline, but every step has a nearer setting
        assert res.state == {"f": 1, "g": 1, "h": 1, "k": 1}
        names = {k: name for k, name, _, _ in seen}
        assert names["f"].startswith("fac_")
        assert names["g"].startswith("stg_")
        assert names["h"].startswith("stp_")
        assert names["k"].startswith("pipenb-step-")
    finally:
        for pool in pools.values():
            pool.shutdown()


def test_five_step_stage_runs_on_one_pool_thread_in_one_hop(make):
    seen = []
    p = Pipeline("p", stages=[Stage("five", steps=[Step(f"t{i}", recorder(seen, f"t{i}")) for i in range(5)])])
    _, ctx, rec = make(p)

    async def main():
        return (await ctx.start()).unwrap()

    res = arun(main())
    assert res.state == {f"t{i}": 1 for i in range(5)}
    assert [k for k, *_ in seen] == [f"t{i}" for i in range(5)]
    assert len({ident for *_, ident in seen}) == 1
    assert seen[0][1].startswith("pipenb-step-")
    assert [e.step_id for e in rec.where("step:success")] == [f"t{i}" for i in range(5)]


# ---- the loop stays free --------------------------------------------------------------------------------


def test_loop_keeps_ticking_while_a_long_sync_step_runs(make):
    def slow(state):
        time.sleep(2.0)
        return {"slept": True}

    _, ctx, _ = make(Pipeline("p", steps=[Step("slow", slow)]))

    async def main():
        ticks = []
        stop = False

        async def ticker():
            while not stop:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.02)

        tick = asyncio.ensure_future(ticker())
        res = await ctx.start()
        stop = True
        await tick
        return res.unwrap(), ticks

    res, ticks = arun(main())
    assert res.state == {"slept": True}
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) > 40, len(ticks)  # 2 s at 20 ms: ~100 ticks on an idle machine
    assert max(gaps) <= 0.5, max(gaps)


# ---- abort ----------------------------------------------------------------------------------------------


def test_abort_during_a_threaded_sync_step(make):
    attempts = []
    started = threading.Event()
    finished = threading.Event()
    saw_abort_at = []

    def long_step(state, ctx):
        attempts.append(1)
        if len(attempts) > 1:
            return {"done": len(attempts)}
        started.set()
        deadline = time.perf_counter() + 5
        while not ctx.signal.aborted and time.perf_counter() < deadline:
            time.sleep(0.001)
        saw_abort_at.append(time.perf_counter())
        time.sleep(0.3)  # keeps running after the abort; its result must be dropped
        finished.set()
        return {"done": "late"}

    p = Pipeline("p", stages=[Stage("first", steps=[Step("one", lambda s: {"first": True})]),
                              Stage("long", steps=[Step("long", long_step)])])
    _, ctx, _ = make(p)

    async def main():
        loop = asyncio.get_running_loop()
        task = ctx.start()
        await eventually(started.is_set, 5)
        aborted_at = []
        loop.call_later(0.1, lambda: (aborted_at.append(time.perf_counter()), ctx.abort("enough")))
        res = await task
        returned_at = time.perf_counter()
        assert res.is_err and isinstance(res.error, AbortedError), res
        assert ctx.status == "aborted"
        assert returned_at - aborted_at[0] <= 0.3, returned_at - aborted_at[0]
        assert not finished.is_set()  # it did return before the thread
        await eventually(finished.is_set, 5)
        await asyncio.sleep(0.1)  # time for a late result to (wrongly) land
        assert ctx.status == "aborted"
        assert ctx.state == {"first": True}
        assert saw_abort_at[0] - aborted_at[0] <= 0.1  # the step saw signal.aborted at once
        retry = (await ctx.start()).unwrap()  # an aborted run resumes at the aborted stage
        return retry

    retry = arun(main())
    assert retry.status == "completed" and retry.state == {"first": True, "done": 2}


# ---- bad values -----------------------------------------------------------------------------------------


def f(state):
    return None


@pytest.mark.parametrize("value, shown", [("gpu", "'gpu'"), (5, "5")])
def test_bad_executor_values_are_definition_errors(value, shown):
    with pytest.raises(DefinitionError) as info:
        Step("x", f, executor=value)
    assert "'x'" in str(info.value) and shown in str(info.value)
    with pytest.raises(DefinitionError) as info:
        Stage("st", steps=[Step("x", f)], executor=value)
    assert "'st'" in str(info.value) and shown in str(info.value)
    with pytest.raises(DefinitionError) as info:
        PipelineFactory(Pipeline("pp", steps=[Step("x", f)]), executor=value)
    assert "'pp'" in str(info.value) and shown in str(info.value)


# ---- KeyboardInterrupt ----------------------------------------------------------------------------------


def test_keyboard_interrupt_in_a_thread_step_propagates_and_leaves_the_run_resumable(make):
    calls = []

    def interrupted(state):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return {"ok": True}

    p = Pipeline("p", stages=[Stage("a", steps=[Step("a", lambda s: {"a": 1})]),
                              Stage("b", steps=[Step("b", interrupted)])])
    _, ctx, _ = make(p)

    async def main():
        await ctx.start()

    with pytest.raises(KeyboardInterrupt):
        arun(main())
    assert calls[0].startswith("pipenb-step-")
    assert ctx.status == "aborted"
    assert ctx.state == {"a": 1} and ctx.position == "b"

    async def retry():
        return (await ctx.start()).unwrap()

    res = arun(retry())
    assert res.status == "completed" and res.state == {"a": 1, "ok": True}


# ---- progress -------------------------------------------------------------------------------------------


def test_progress_is_coalesced_and_delivered_on_the_loop_thread(make):
    span = []

    def busy(state, ctx):
        t0 = time.perf_counter()
        for i in range(1000):
            end = time.perf_counter() + 0.0004  # ~0.4 s in all
            while time.perf_counter() < end:
                pass
            ctx.progress(i + 1, 1000)
        span.append(time.perf_counter() - t0)
        return {"n": 1000}

    _, ctx, _ = make(Pipeline("p", steps=[Step("busy", busy)]))
    got = []
    ctx.on("step:progress", lambda e: got.append((e.done, e.total, e.step_id, threading.get_ident())))

    async def main():
        res = (await ctx.start()).unwrap()
        return res, threading.get_ident()

    res, loop_thread = arun(main())
    assert res.state == {"n": 1000}
    assert got, "no step:progress delivered"
    assert len(got) <= span[0] / 0.1 + 2, (len(got), span[0])
    assert got[-1][:3] == (1000, 1000, "busy")
    assert all(ident == loop_thread for *_, ident in got)


# ---- out of process: process pools and Dask -------------------------------------------------------------


@pytest.fixture(scope="module")
def procs():
    pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    yield pool
    pool.shutdown(cancel_futures=True)


def notebook_pipeline(pid="nb"):
    """Lambdas and locally defined functions, as a notebook would define them."""
    factor = 3

    def scale(state):
        return {"scaled": [v * factor for v in state["values"]]}

    def total(state, ctx):
        return {"total": sum(state["scaled"]), "where": (ctx.stage_id, ctx.step_id, ctx.signal.aborted)}

    return Pipeline(pid, stages=[
        Stage("load", steps=[Step("load", lambda s: {"values": [1, 2, 3]})]),
        Stage("work", steps=[Step("scale", scale), Step("total", total)]),
    ])


def check_notebook_result(res):
    assert res.status == "completed"
    assert res.state == {"values": [1, 2, 3], "scaled": [3, 6, 9], "total": 18,
                         "where": ("work", "total", False)}


def test_process_pool_runs_notebook_functions(make, procs):
    _, ctx, _ = make(notebook_pipeline(), executor=procs)
    check_notebook_result(arun(ctx.run()).unwrap())


def test_process_pool_on_a_stage_under_start(make, procs):
    p = notebook_pipeline()
    p2 = Pipeline("nb2", stages=[Stage("load", steps=[Step("load", lambda s: {"values": [1, 2, 3]})]),
                                 Stage("work", steps=list(p.ordered[1].steps), executor=procs)])
    _, ctx, _ = make(p2)

    async def main():
        return (await ctx.start()).unwrap()

    check_notebook_result(arun(main()))


def test_progress_and_track_work_in_a_process_step(make, procs):
    """The same step runs anywhere: out of process ``ctx.track`` yields the items, ``progress`` is a no-op."""

    def counting(state, ctx):
        n = 0
        for i, _ in enumerate(ctx.track(range(100), message="rows")):
            n += 1
            ctx.progress(i + 1, 100)
        return {"n": n}

    for executor in (procs, "thread"):
        _, ctx, _ = make(Pipeline("tr", steps=[Step("count", counting, executor=executor)]))
        assert arun(ctx.run()).unwrap().state == {"n": 100}


def artifacts_pipeline(executor):
    def uses_artifacts(state, ctx):
        ctx.artifacts.put("x", 1)
        return {"never": True}

    return Pipeline("art", steps=[Step("keep", uses_artifacts, executor=executor)])


def test_artifacts_in_a_process_step_is_a_step_error(make, procs):
    _, ctx, _ = make(artifacts_pipeline(procs))
    res = arun(ctx.run())
    assert res.is_err and isinstance(res.error, StepError)
    msg = str(res.error)
    assert "'keep'" in msg and "ProcessPoolExecutor" in msg and "artifacts" in msg
    assert res.error.step_id == "keep" and ctx.status == "failed"


def test_unpicklable_state_value_names_the_key(make, procs):
    p = Pipeline("lk", steps=[Step("send", lambda s: {"y": 1}, executor=procs)])
    _, ctx, _ = make(p, initial_state={"x": 1, "lock": threading.Lock()})
    res = arun(ctx.run())
    assert res.is_err and isinstance(res.error, StepError)
    msg = str(res.error)
    assert "'lock'" in msg and "'send'" in msg and "ProcessPoolExecutor" in msg


def test_shut_down_pool_is_a_step_error_and_the_run_resumes_with_a_working_one(make):
    dead = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    dead.shutdown()
    step = Step("double", lambda s: {"y": s["x"] * 2}, executor=dead)
    p = Pipeline("dead", stages=[Stage("a", steps=[Step("a", lambda s: {"x": 21})]),
                                 Stage("b", steps=[step])])
    _, ctx, _ = make(p)
    res = arun(ctx.run())
    assert res.is_err and isinstance(res.error, StepError)
    msg = str(res.error)
    assert "ProcessPoolExecutor" in msg and "'double'" in msg and "shut down" in msg
    assert ctx.status == "failed" and ctx.position == "b" and ctx.state == {"x": 21}
    fresh = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        step.executor = fresh  # Step.executor is a plain attribute; the next drive plans afresh
        res = arun(ctx.run()).unwrap()
        assert res.status == "completed" and res.state == {"x": 21, "y": 42}
    finally:
        fresh.shutdown()


def test_shut_down_factory_executor_resumes_through_a_new_factory(make):
    """The factory-level way: a new factory (own registry) with a fresh pool resumes from the checkpoint.

    Through the same registry, ``resume`` returns the live context, which keeps the executor of the
    factory that prepared it, so the retry would hit the dead pool again.
    """
    dead = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    dead.shutdown()
    p = Pipeline("dead2", stages=[Stage("a", steps=[Step("a", lambda s: {"x": 21}, executor="inline")]),
                                  Stage("b", steps=[Step("double", lambda s: {"y": s["x"] * 2})])])
    _, ctx, _ = make(p, executor=dead)
    res = arun(ctx.run())
    assert res.is_err and isinstance(res.error, StepError) and "ProcessPoolExecutor" in str(res.error)
    assert ctx.status == "failed"
    fresh = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    registry = PipelineRegistry(default_timeout=60)
    try:
        factory = PipelineFactory(p, executor=fresh, registry=registry)
        ctx2 = factory.resume_sync(ctx.run_id).unwrap()
        assert ctx2 is not ctx and ctx2.position == "b"
        res = arun(ctx2.run()).unwrap()
        assert res.status == "completed" and res.state == {"x": 21, "y": 42}
    finally:
        registry.close()
        fresh.shutdown()


def test_dask_client_and_its_executor_run_notebook_functions(make, dask_client):
    for executor in (dask_client, dask_client.get_executor()):
        _, ctx, _ = make(notebook_pipeline(), executor=executor)
        check_notebook_result(arun(ctx.run()).unwrap())
    _, ctx, _ = make(notebook_pipeline(), executor=dask_client)

    async def main():
        return (await ctx.start()).unwrap()

    check_notebook_result(arun(main()))


def test_artifacts_on_dask_is_a_step_error_naming_it(make, dask_client):
    _, ctx, _ = make(artifacts_pipeline(dask_client))
    res = arun(ctx.run())
    assert res.is_err and isinstance(res.error, StepError)
    assert "'keep'" in str(res.error) and "dask Client" in str(res.error)


def test_closed_dask_client_is_a_step_error_and_the_run_resumes(make, dask_client):
    import distributed

    other = distributed.Client(dask_client.scheduler.address)
    other.close()
    step = Step("double", lambda s: {"y": s["x"] * 2}, executor=other)
    p = Pipeline("closed", stages=[Stage("a", steps=[Step("a", lambda s: {"x": 21})]),
                                   Stage("b", steps=[step])])
    _, ctx, _ = make(p)
    res = arun(ctx.run())
    assert res.is_err and isinstance(res.error, StepError)
    assert "dask Client" in str(res.error) and "'double'" in str(res.error)
    assert ctx.status == "failed"
    step.executor = dask_client
    assert arun(ctx.run()).unwrap().state == {"x": 21, "y": 42}


def test_abort_of_a_running_dask_step_ends_the_run_at_once(make, dask_client, tmp_path):
    stop = tmp_path / "stop"
    path = str(stop)

    def sleepy(state):
        import os
        import time

        for _ in range(600):  # 30 s unless the test frees the worker
            if os.path.exists(path):
                return {"woke": True}
            time.sleep(0.05)
        return {"slept": True}

    def running_tasks(dask_scheduler=None):
        return [str(k) for k, t in dask_scheduler.tasks.items()
                if str(k).startswith("pipenb-sleepy") and t.state == "processing"]

    _, ctx, _ = make(Pipeline("dz", steps=[Step("sleepy", sleepy, executor=dask_client)]))

    async def main():
        task = ctx.start()
        for _ in range(200):
            await asyncio.sleep(0.05)
            if dask_client.run_on_scheduler(running_tasks):
                break
        assert dask_client.run_on_scheduler(running_tasks), (
            "the step never started on the worker", ctx.status, task.done() and task.result(),
            dask_client.run_on_scheduler(lambda dask_scheduler=None: {str(k): t.state for k, t in dask_scheduler.tasks.items()}))
        t0 = time.perf_counter()
        ctx.abort("stop")
        res = await task
        return res, time.perf_counter() - t0

    try:
        res, elapsed = arun(main())
        assert res.is_err and isinstance(res.error, AbortedError)
        assert ctx.status == "aborted" and elapsed < 1.0, elapsed
        assert "woke" not in ctx.state and "slept" not in ctx.state
    finally:
        stop.touch()


# ---- output of a thread step in a real kernel -----------------------------------------------------------


def test_thread_step_output_lands_in_the_cell_that_started_the_run(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from ..e2e.test_notebooks import this_checkout_first

    this_checkout_first(monkeypatch)

    class RoutingClient(nbclient.NotebookClient):
        """Routes every output to the cell its parent header names, as JupyterLab does
        (plain nbclient drops outputs of a cell that already finished)."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.cells_by_msg = {}

        async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
            self.cells_by_msg[parent_msg_id] = (cell, cell_index)
            while True:
                msg = await self.kc.iopub_channel.get_msg(timeout=None)
                parent = msg["parent_header"].get("msg_id")
                if parent == parent_msg_id:
                    try:
                        self.process_message(msg, cell, cell_index)
                    except nbclient.exceptions.CellExecutionComplete:
                        return
                elif parent in self.cells_by_msg and msg["msg_type"] == "stream":
                    earlier, index = self.cells_by_msg[parent]
                    self.output(earlier.outputs, msg, None, index)

    cells = [
        textwrap.dedent("""
            import time
            import pipenb
            from pipenb import Pipeline, PipelineFactory, Step

            def talk(state):
                time.sleep(0.5)  # the starting cell has long returned by now
                print("hello from the step")
                return {"said": True}

            ctx = PipelineFactory(Pipeline("talk", steps=[Step("talk", talk)])).prepare_sync().unwrap()
            task = ctx.start()
            print("started", pipenb.__file__)
        """),
        textwrap.dedent("""
            res = (await task).unwrap()
            print("finished", res.status)
        """),
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.strip()) for c in cells]
    RoutingClient(nb, timeout=60, kernel_name="python3",
                  resources={"metadata": {"path": str(tmp_path)}}).execute()

    def text(cell):
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    first, second = text(nb.cells[0]), text(nb.cells[1])
    assert "started" in first and "hello from the step" in first, (first, second)
    assert str(pathlib.Path(__file__).resolve().parents[2] / "pipenb") in first  # this checkout's pipenb ran
    assert "hello from the step" not in second and "finished completed" in second

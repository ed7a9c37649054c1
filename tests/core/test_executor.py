"""pipenb.core.executors tested directly (not through the engine): threads, process pools, Dask."""

import asyncio
import concurrent.futures as cf
import contextvars
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import time

import cloudpickle
import pytest

from pipenb.core import executors as ex
from pipenb.core.errors import AbortedError, DefinitionError, RoutingError, StepError

from ..conftest import arun, eventually

WHERE = dict(where="step 'fit' of stage 'train'", stage_id="train", step_id="fit")


class FakeClient:
    """Looks like a distributed.Client to the module (class name and module), without dask."""

    status = "running"


FakeClient.__name__ = FakeClient.__qualname__ = "Client"
FakeClient.__module__ = "distributed.client"


# ---- definitions ------------------------------------------------------------------------------------


def test_check_executor_accepts_valid_values():
    pool = cf.ThreadPoolExecutor(1)
    try:
        for value in (None, "inline", "thread", pool, ex.StepThreadPool(1), FakeClient()):
            ex.check_executor(value, "stage 'load'")
    finally:
        pool.shutdown()


@pytest.mark.parametrize("value, words", [
    ("threads", ["stage 'load'", "'threads'", "unknown executor"]),
    (42, ["stage 'load'", "42", "int"]),
    (cf.ThreadPoolExecutor, ["stage 'load'", "ThreadPoolExecutor", "instance"]),
    (print, ["stage 'load'", "print"]),
])
def test_check_executor_names_the_culprit(value, words):
    with pytest.raises(DefinitionError) as info:
        ex.check_executor(value, "stage 'load'")
    for w in words:
        assert w in str(info.value)


def test_resolve_nearest_wins():
    pool = cf.ThreadPoolExecutor(1)
    assert ex.resolve(None, None, None, "thread") == "thread"
    assert ex.resolve(None, None, None, "inline") == "inline"
    assert ex.resolve(None, None, pool, "inline") is pool
    assert ex.resolve(None, "inline", pool, "thread") == "inline"
    assert ex.resolve("thread", "inline", pool, "inline") == "thread"
    with pytest.raises(ValueError):
        ex.resolve(None, None, None, "process")
    pool.shutdown()


def test_describe_and_is_local():
    tpe, ppe = cf.ThreadPoolExecutor(1), cf.ProcessPoolExecutor(1)
    try:
        assert ex.describe("thread") == "thread" and ex.describe(ppe) == "ProcessPoolExecutor"
        assert ex.describe(FakeClient()) == "dask Client"
        assert ex.is_local("inline") and ex.is_local("thread") and ex.is_local(tpe)
        assert ex.is_local(ex.shared_pool())
        assert not ex.is_local(ppe) and not ex.is_local(FakeClient())
        assert ex.is_dask_client(FakeClient()) and not ex.is_dask_client(tpe)
    finally:
        tpe.shutdown()
        ppe.shutdown()


def test_import_is_light():
    code = ("import sys, pipenb.core.executors, threading; "
            "print([m for m in ('cloudpickle', 'distributed', 'dask') if m in sys.modules], "
            "[t.name for t in threading.enumerate() if t.name.startswith('pipenb')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.stdout.strip() == "[] []"


def test_shared_pool_is_lazy_and_named():
    pool = ex.SHARED_POOL
    assert isinstance(pool, ex.StepThreadPool) and pool is ex.shared_pool()
    assert pool.max_workers >= 1


# ---- local threads ----------------------------------------------------------------------------------

CELL = contextvars.ContextVar("cell", default=None)


def test_thread_sees_contextvars_and_is_named_pipenb():
    def action(state):
        return {"cell": CELL.get(), "thread": threading.current_thread().name, **state}

    async def main():
        CELL.set("cell-7")
        return await ex.call("thread", action, ({"x": 1},), **WHERE)

    out = arun(main())
    assert out["cell"] == "cell-7" and out["x"] == 1
    assert out["thread"].startswith("pipenb-step-")


def test_thread_pool_executor_gets_contextvars_too():
    pool = cf.ThreadPoolExecutor(1, thread_name_prefix="mine")

    async def main():
        CELL.set("cell-8")
        return await ex.call(pool, lambda: (CELL.get(), threading.current_thread().name), **WHERE)

    try:
        cell, name = arun(main())
    finally:
        pool.shutdown()
    assert cell == "cell-8" and name.startswith("mine")


def test_inline_runs_on_the_loop_thread_and_async_on_the_loop():
    async def coro_action(x):
        return threading.current_thread() is main_thread, x

    main_thread = threading.current_thread()

    async def main():
        a = await ex.call("inline", lambda: threading.current_thread() is main_thread)
        b = await ex.call("thread", coro_action, (5,))  # async actions never leave the loop
        return a, b

    assert arun(main()) == (True, (True, 5))


def test_exceptions_come_back_as_is():
    def boom():
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        arun(ex.call("thread", boom, **WHERE))


def test_call_batch_one_hop_in_order_stops_on_error():
    seen = []

    def rec(i):
        seen.append((i, threading.current_thread().name, CELL.get()))
        if i == 2:
            raise ValueError("two")
        return i * 10

    async def main():
        CELL.set("batch")
        calls = [ex.Call(rec, (i,), f"step {i}") for i in range(4)]
        return await ex.call_batch("thread", calls), await ex.call_batch("thread", calls, stop_on_error=False)

    first, second = arun(main())
    assert first[:2] == [(True, 0), (True, 10)] and len(first) == 3
    assert first[2][0] is False and isinstance(first[2][1], ValueError)
    assert len(second) == 4 and second[3] == (True, 30)
    threads = {name for _, name, _ in seen[:3]}
    assert len(threads) == 1 and threads.pop().startswith("pipenb-step-")  # one hop for the batch
    assert {cell for *_, cell in seen} == {"batch"}


def test_shut_down_pools_give_step_error_naming_the_executor():
    pool = cf.ThreadPoolExecutor(1)
    pool.shutdown()
    with pytest.raises(StepError) as info:
        arun(ex.call(pool, lambda: 1, **WHERE))
    assert "ThreadPoolExecutor" in str(info.value) and "step 'fit'" in str(info.value)
    assert (info.value.stage_id, info.value.step_id) == ("train", "fit")

    mine = ex.StepThreadPool(1)
    mine.shutdown()
    with pytest.raises(StepError, match="StepThreadPool"):
        arun(ex.call(mine, lambda: 1, **WHERE))


def test_abort_abandons_a_thread_step_at_once():
    release = threading.Event()

    def sleepy():
        release.wait(30)
        return {"late": True}

    async def main():
        abort = asyncio.Event()
        task = asyncio.ensure_future(ex.call("thread", sleepy, abort_event=abort, **WHERE))
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        abort.set()
        with pytest.raises(ex.Abandoned) as info:
            await task
        elapsed = time.perf_counter() - t0
        assert isinstance(info.value, AbortedError)
        assert "step 'fit'" in str(info.value) and info.value.executor == "thread"
        late = info.value.late
        assert late is not None and not late.done()
        release.set()  # let the thread finish: its result lands on `late`, and is dropped
        await eventually(late.done)
        return elapsed, late.result()

    elapsed, late = arun(main())
    assert elapsed < 0.2, elapsed
    assert late == {"late": True}


def test_abort_before_the_call_does_not_start_it():
    ran = []

    async def main():
        abort = asyncio.Event()
        abort.set()
        with pytest.raises(ex.Abandoned):
            await ex.call("thread", lambda: ran.append(1), abort_event=abort, **WHERE)

    arun(main())
    time.sleep(0.05)
    assert ran == []


def test_abort_future_abandons_a_thread_step_at_once():
    release = threading.Event()

    async def main():
        abort = asyncio.get_running_loop().create_future()  # the run's abort future, as the engine holds
        task = asyncio.ensure_future(ex.call("thread", lambda: release.wait(30) and "late", abort_event=abort,
                                             **WHERE))
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        abort.set_result("user")
        with pytest.raises(ex.Abandoned) as info:
            await task
        elapsed = time.perf_counter() - t0
        release.set()
        await eventually(info.value.late.done)
        with pytest.raises(ex.Abandoned):  # already aborted: not started
            await ex.call_batch("thread", [ex.Call(lambda: 1)], abort_event=abort)
        return elapsed, info.value.late.result()

    elapsed, late = arun(main())
    assert elapsed < 0.2, elapsed
    assert late == "late"


def test_abort_future_left_unset_leaves_no_callback_behind():
    async def main():
        abort = asyncio.get_running_loop().create_future()
        for i in range(3):
            assert await ex.call("thread", lambda i=i: i, abort_event=abort) == i
        abort.set_result(None)  # nothing left attached: no callback runs, the loop stays clean
        await asyncio.sleep(0)
        return abort

    assert arun(main()).done()


def test_cancelling_the_awaiting_task_stops_waiting():
    release = threading.Event()

    async def main():
        task = asyncio.ensure_future(ex.call("thread", lambda: release.wait(30), abort_event=asyncio.Event()))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        arun(main())
    finally:
        release.set()


# ---- errors travel -----------------------------------------------------------------------------------


def test_pipenb_errors_survive_pickling():
    errors = [
        StepError("step 'fit' failed", stage_id="train", step_id="fit"),
        RoutingError("bad route", stage_id="train", value=[1, 2]),
        AbortedError("aborted", reason="user"),
        ex.Abandoned("gone", where="step 'fit'", executor="thread", late=None),
    ]
    for err in errors:
        for dumps in (pickle.dumps, cloudpickle.dumps):
            back = pickle.loads(dumps(err))
            assert type(back) is type(err) and str(back) == str(err) and back.args == err.args
            assert vars(back) == vars(err)


def test_abandoned_pickles_without_its_late_future():
    async def main():
        late = asyncio.get_running_loop().create_future()
        err = ex.Abandoned("gone", where="step 'fit'", executor="thread", late=late)
        back = pickle.loads(pickle.dumps(err))
        late.cancel()
        return back

    back = arun(main())
    assert back.late is None and back.executor == "thread" and back.reason == "abandoned"


# ---- remote context ---------------------------------------------------------------------------------


def test_remote_step_context_is_slim_and_picklable():
    rctx = ex.RemoteStepContext("run-1", "train", "fit", ("train",), "ProcessPoolExecutor")
    back = pickle.loads(pickle.dumps(rctx))
    assert (back.run_id, back.stage_id, back.step_id, back.path) == ("run-1", "train", "fit", ("train",))
    assert back.signal.aborted is False and back.progress(0.5, "half") is None
    with pytest.raises(StepError) as info:
        _ = back.artifacts
    assert "'fit'" in str(info.value) and "ProcessPoolExecutor" in str(info.value)
    assert back.logger.name.endswith("train.fit")


# ---- process pools ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def procs():
    pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    yield pool
    pool.shutdown(cancel_futures=True)


def test_process_pool_runs_lambdas_and_local_functions(procs):
    scale = 3

    def local_step(state):  # a notebook-style function, closing over a local
        return {"y": state["x"] * scale, "pipenb_loaded": "pipenb" in sys.modules}

    async def main():
        a = await ex.call(procs, lambda s: {"y": s["x"] + 1}, ({"x": 1},), **WHERE)
        b = await ex.call(procs, local_step, ({"x": 2},), **WHERE)
        return a, b

    a, b = arun(main())
    assert a == {"y": 2}
    assert b["y"] == 6
    assert b["pipenb_loaded"] is False  # the trampoline travels by value: workers need no pipenb


def test_process_pool_exception_carries_the_remote_traceback(procs):
    def failing(state):
        raise ValueError(f"bad {state['x']}")

    with pytest.raises(ValueError, match="bad 4") as info:
        arun(ex.call(procs, failing, ({"x": 4},), **WHERE))
    assert "failing" in str(info.value.__cause__)


def test_process_pool_batch_and_remote_context(procs):
    rctx = ex.RemoteStepContext("run-9", "train", "fit", ("train",), ex.describe(procs))

    def uses_ctx(state, ctx):
        return {"ids": (ctx.run_id, ctx.step_id), "aborted": ctx.signal.aborted}

    def uses_artifacts(state, ctx):
        return ctx.artifacts

    async def main():
        return await ex.call_batch(procs, [
            ex.Call(uses_ctx, ({}, rctx), "step 'fit'", "train", "fit"),
            ex.Call(uses_artifacts, ({}, rctx), "step 'fit'", "train", "fit"),
        ])

    (ok1, v1), (ok2, v2) = arun(main())
    assert ok1 and v1 == {"ids": ("run-9", "fit"), "aborted": False}
    assert not ok2 and isinstance(v2, StepError) and "ProcessPoolExecutor" in str(v2)


def test_remote_artifacts_error_keeps_its_ids(procs):
    rctx = ex.RemoteStepContext("run-9", "train", "fit", ("train",), ex.describe(procs))

    with pytest.raises(StepError, match="ctx.artifacts") as info:
        arun(ex.call(procs, lambda ctx: ctx.artifacts, (rctx,), **WHERE))
    assert type(info.value) is StepError and (info.value.stage_id, info.value.step_id) == ("train", "fit")


def test_process_pool_step_error_comes_back_as_itself(procs):
    def failing(state):
        from pipenb.core.errors import RoutingError

        raise RoutingError(f"no route for {state['x']}", stage_id="train", value=state["x"])

    with pytest.raises(RoutingError, match="no route for 4") as info:
        arun(ex.call(procs, failing, ({"x": 4},), **WHERE))
    assert (info.value.stage_id, info.value.value) == ("train", 4)
    assert "failing" in str(info.value.__cause__)


def test_unpicklable_state_value_names_the_key(procs):
    with pytest.raises(StepError) as info:
        arun(ex.call(procs, lambda s: s, ({"x": 1, "lock": threading.Lock()},), **WHERE))
    msg = str(info.value)
    assert "'lock'" in msg and "step 'fit'" in msg and "ProcessPoolExecutor" in msg
    assert not isinstance(info.value.__cause__, StepError)


def test_unpicklable_action_and_result_are_step_errors(procs):
    lock = threading.Lock()
    with pytest.raises(StepError, match="its action"):
        arun(ex.call(procs, lambda: lock.locked(), **WHERE))
    with pytest.raises(StepError, match="cannot be sent back"):
        arun(ex.call(procs, lambda: threading.Lock(), **WHERE))


def test_shut_down_process_pool_is_a_step_error():
    pool = cf.ProcessPoolExecutor(1)
    pool.shutdown()
    with pytest.raises(StepError) as info:
        arun(ex.call(pool, lambda: 1, **WHERE))
    assert "ProcessPoolExecutor" in str(info.value) and "shut down" in str(info.value)


def test_dask_client_without_dask_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(StepError) as info:
        arun(ex.call(FakeClient(), lambda: 1, **WHERE))
    assert 'pip install "pipenb[dask]"' in str(info.value) and "step 'fit'" in str(info.value)


# ---- Dask -------------------------------------------------------------------------------------------


def test_dask_client_and_its_executor_run_notebook_lambdas(dask_client):
    offset = 100

    async def main():
        a = await ex.call(dask_client, lambda s: {"y": s["x"] + offset}, ({"x": 1},), **WHERE)
        b = await ex.call(dask_client.get_executor(), lambda s: {"y": s["x"] * 2}, ({"x": 21},), **WHERE)
        return a, b

    assert arun(main()) == ({"y": 101}, {"y": 42})
    assert ex.describe(dask_client).startswith("dask Client tcp://")


def test_dask_closed_client_is_a_step_error(dask_client):
    import distributed

    other = distributed.Client(dask_client.scheduler.address)
    other.close()
    with pytest.raises(StepError) as info:
        arun(ex.call(other, lambda: 1, **WHERE))
    assert "dask Client" in str(info.value) and "step 'fit'" in str(info.value)


def test_dask_abort_returns_at_once_and_cancels_the_task(dask_client, tmp_path):
    stop = tmp_path / "stop"

    def sleepy(path=str(stop)):
        import os
        import time

        for _ in range(600):  # 30 s at most; the test frees the worker through the file
            if os.path.exists(path):
                return "woke"
            time.sleep(0.05)
        return "slept"

    def pipenb_tasks(dask_scheduler=None):
        return [str(k) for k in dask_scheduler.tasks if str(k).startswith("pipenb-sleepy")]

    async def main():
        abort = asyncio.Event()
        task = asyncio.ensure_future(ex.call(dask_client, sleepy, abort_event=abort, where="step 'sleepy'",
                                             stage_id="s", step_id="sleepy"))
        for _ in range(100):  # wait until the scheduler has the task
            await asyncio.sleep(0.05)
            if dask_client.run_on_scheduler(pipenb_tasks):
                break
        assert dask_client.run_on_scheduler(pipenb_tasks), "the task never reached the scheduler"
        t0 = time.perf_counter()
        abort.set()
        with pytest.raises(ex.Abandoned):
            await task
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(0)
        return elapsed

    try:
        elapsed = arun(main())
        assert elapsed < 0.5, elapsed
        deadline = time.monotonic() + 5
        while dask_client.run_on_scheduler(pipenb_tasks) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dask_client.run_on_scheduler(pipenb_tasks) == []  # cancelled: the scheduler forgot it
    finally:
        stop.touch()

"""SPEC 13 in a real kernel: Run All, asyncio left intact, output in the right cell.

Cells are queued the way Run All queues them (all at once, without waiting
for replies); every one must reply, once, in order. On ipykernel 7 with
Python 3.11+ a sync twin that re-entered the kernel's loop (nest-asyncio) lost
the cells queued behind it and patched asyncio for the kernel's life.
"""

import json

import pytest

from ..kernel_client import KernelSession

SETUP = """
import asyncio, json, sys, threading, time
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step

registry = PipelineRegistry(default_timeout=300)

def add(state):
    return {"n": state.get("n", 0) + 1}

def shout(state):
    print("from-thread", threading.current_thread().name, flush=True)
    return {"shout": 1}

pipe = Pipeline("runall", steps=[Step("a", add), Step("b", add)])
factory = PipelineFactory(pipe, registry=registry)
loud = PipelineFactory(Pipeline("loud", steps=[Step("s", shout, executor="thread")]), registry=registry)
print("setup done")
"""

WAYS = {
    "run_sync": ["ctx = factory.prepare_sync().unwrap()\nprint('status', ctx.run_sync().unwrap().status)"],
    "three run_sync cells": ["ctx = factory.prepare_sync().unwrap()\nprint('status', ctx.run_sync().unwrap().status)",
                             "print('status', factory.prepare_sync().unwrap().run_sync().unwrap().status)",
                             "print('status', factory.prepare_sync().unwrap().run_sync().unwrap().status)"],
    "factory *_sync": ["ctx = factory.prepare_sync().unwrap()\nsame = factory.resume_sync(ctx.run_id).unwrap()\n"
                       "print('status', same.run_sync().unwrap().status, same is ctx)"],
    "await run": ["ctx = (await factory.prepare()).unwrap()\nprint('status', (await ctx.run()).unwrap().status)"],
    "start": ["ctx = (await factory.prepare()).unwrap()\ntask = ctx.start()",
              "print('status', (await task).unwrap().status)"],
}

AFTER = ["print('after', 1)", "x = 41", "x += 1\nprint('after', x)", "print('after', 'last')"]


@pytest.fixture
def kernel(tmp_path):
    k = KernelSession(cwd=str(tmp_path))
    yield k
    k.close()


@pytest.mark.parametrize("way", list(WAYS))
def test_run_all_runs_every_cell_once_in_order(kernel, way):
    cells = [kernel.send(code) for code in [SETUP, *WAYS[way], *AFTER]]  # queued at once, like Run All
    for cell in cells:
        reply = kernel.reply(cell, timeout=60)
        assert reply["status"] == "ok", (cell.text, cell.errors)
    texts = [c.text.strip() for c in cells]
    assert texts[0] == "setup done"
    for text in texts[1:1 + len(WAYS[way])]:
        assert not text or text.startswith("status completed"), text
    assert [t for t in texts if t.startswith("status")], texts
    assert texts[-4:] == ["after 1", "", "after 42", "after last"]
    counts = [c.reply["execution_count"] for c in cells]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)  # each once, in order


def test_asyncio_and_dask_intact_after_sync_twins(kernel):
    """After every sync twin, asyncio is the stock one and a Dask Client works (it broke on 3.12+)."""
    pytest.importorskip("distributed")
    kernel.run(SETUP)
    kernel.run("""
        ctx = factory.prepare_sync().unwrap()
        ctx.run_sync()
        factory.resume_sync(ctx.run_id)
        factory.fork_sync(ctx.run_id, 0)
    """)
    facts = json.loads(kernel.run("""
        import asyncio, _asyncio
        loop = asyncio.get_running_loop()
        print(json.dumps({
            "nest_asyncio imported": "nest_asyncio" in sys.modules,
            "asyncio.run is stock": asyncio.run.__module__ == "asyncio.runners",
            "Task is the C task": asyncio.Task is _asyncio.Task,
            "Future is the C future": asyncio.Future is _asyncio.Future,
            "loop class unpatched": not getattr(type(loop), "_nest_patched", False)
                                    and type(loop).run_until_complete.__qualname__.endswith("EventLoop.run_until_complete"),
            "current_task": asyncio.current_task() is not None,
        }))
    """))
    assert facts == {"nest_asyncio imported": False, "asyncio.run is stock": True, "Task is the C task": True,
                     "Future is the C future": True, "loop class unpatched": True, "current_task": True}
    out = kernel.run("""
        from distributed import Client
        client = Client(processes=False, dashboard_address=None)
        print("dask", client.submit(lambda x: x + 1, 41).result())
        client.close()
        print("a script's asyncio.run in a thread:", threading.Thread(target=lambda: asyncio.run(asyncio.sleep(0))).start())
    """, timeout=120)
    assert "dask 42" in out


@pytest.mark.parametrize("how", ["run_sync", "await run"])
def test_thread_step_output_lands_in_the_cell_that_ran_it(kernel, how):
    kernel.run(SETUP)
    code = {"run_sync": "loud.prepare_sync().unwrap().run_sync().unwrap()",
            "await run": "(await (await loud.prepare()).unwrap().run()).unwrap()"}[how]
    cell = kernel.send(code + "\nprint('cell done')")
    follower = kernel.send("print('next cell')")
    assert kernel.reply(cell)["status"] == "ok", cell.errors
    kernel.reply(follower)
    lines = cell.text.splitlines()
    assert len(lines) == 2 and lines[0].startswith("from-thread pipenb-step-") and lines[1] == "cell done", lines
    assert follower.text == "next cell\n"


def test_a_click_during_run_sync_is_handled(kernel, tmp_path):
    """A widget click sent while a run_sync cell blocks is handled after it, never lost."""
    model_id = kernel.run("""
        import ipywidgets
        clicks = []
        button = ipywidgets.Button(description="count")
        button.on_click(lambda b: clicks.append(1))
        print(button.model_id)
    """).splitlines()[-1]
    kernel.run(SETUP)
    gate = tmp_path / "gate"
    cell = kernel.send(f"""
        import os
        def wait_for_test(state):
            print("waiting", flush=True)
            while not os.path.exists({str(gate)!r}):
                time.sleep(0.01)
            return {{"waited": 1}}
        slow = PipelineFactory(Pipeline("slowclick", steps=[Step("w", wait_for_test)]), registry=registry)
        print(slow.prepare_sync().unwrap().run_sync().unwrap().status)
    """)
    kernel.wait_for_output(cell, "waiting")
    kernel.click(model_id)  # sent while the run_sync cell blocks
    after = kernel.send("print('clicks', len(clicks))")
    gate.write_text("open")
    assert kernel.reply(cell)["status"] == "ok", cell.errors
    assert cell.text.splitlines()[-1] == "completed"
    kernel.reply(after)
    assert after.text.strip() == "clicks 1"

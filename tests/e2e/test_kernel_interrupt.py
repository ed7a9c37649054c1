"""SPEC 13: the kernel's stop button during a run a cell waits for.

Each path a cell can wait on a run (``run_sync()``, ``await ctx.run()``,
``await ctx.step()``) times each kind of step (async, sync on a thread, sync
inline running Python code): the stop button ends the cell with
``KeyboardInterrupt`` within a second, the run is ``"aborted"`` with its
stage uncommitted, and it resumes to completion; the kernel stays usable. A
run started with ``ctx.start()`` is not touched by an interrupt of a later cell.
"""

import json
import random
import time

import pytest

from ..kernel_client import KernelSession

SETUP = """
import asyncio, json, threading, time
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step

SLOW = True  # the test sets it False before resuming; abandoned threads see it and end

async def async_slow(state):
    print("step started", flush=True)
    for _ in range(600):
        if not SLOW:
            break
        await asyncio.sleep(0.1)
    return {"slow": "done"}

def busy_slow(state):  # pure Python, never looks at ctx.signal
    print("step started", flush=True)
    end = time.monotonic() + 60
    while SLOW and time.monotonic() < end:
        pass
    return {"slow": "done"}

def first(state):
    return {"first": 1}

def last(state):
    return {"last": 1}

def sleepy_slow(state):  # sync code on a thread, never looks at ctx.signal (a busy pure-Python thread would
    print("step started", flush=True)  # also starve the kernel's own thread of the GIL: 5 ms a hand-off)
    end = time.monotonic() + 60
    while SLOW and time.monotonic() < end:
        time.sleep(0.005)
    return {"slow": "done"}

def signalled_slow(state):  # the OS may hand the kernel's SIGINT to any thread: here, to this step's own,
    import random, signal  # at a random moment; Python still runs the handler on the main thread
    print("step started", flush=True)
    if SLOW:  # not when the run resumes
        time.sleep(random.random() * 0.05)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
    return sleepy_slow(state)

KINDS = {"async": Step("slow", async_slow), "thread": Step("slow", sleepy_slow, executor="thread"),
         "inline": Step("slow", busy_slow), "signalled": Step("slow", signalled_slow, executor="thread")}
registry = PipelineRegistry(default_timeout=300)

def factory_for(kind):
    pipe = Pipeline(f"intr-{kind}", stages=[Stage("first", steps=[Step("f", first)]),
                                            Stage("slow", steps=[KINDS[kind]]),
                                            Stage("last", steps=[Step("l", last)])])
    return PipelineFactory(pipe, registry=registry)

def facts(ctx):
    return json.dumps({"status": ctx.status, "position": ctx.position, "keys": sorted(ctx.state)})
print("ok")
"""

WAYS = {
    "run_sync": ("ctx = factory_for({kind!r}).prepare_sync().unwrap()", "ctx.run_sync()"),
    "await run": ("ctx = (await factory_for({kind!r}).prepare()).unwrap()", "await ctx.run()"),
    "await step": ("ctx = (await factory_for({kind!r}).prepare()).unwrap()\nawait ctx.step()", "await ctx.step()"),
}


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    k = KernelSession(cwd=str(tmp_path_factory.mktemp("kernel")))
    k.run(SETUP)
    yield k
    k.close()


def interrupt_when_started(kernel, code: str) -> tuple[dict, float, object]:
    cell = kernel.send(code)
    kernel.wait_for_output(cell, "step started")
    t0 = time.monotonic()
    kernel.interrupt()
    reply = kernel.reply(cell, timeout=30)
    return reply, time.monotonic() - t0, cell


@pytest.mark.parametrize("kind", ["async", "thread", "inline"])
@pytest.mark.parametrize("way", list(WAYS))
def test_stop_button_aborts_the_run_and_it_resumes(kernel, way, kind):
    prepare, wait = WAYS[way]
    kernel.run("SLOW = True\n" + prepare.format(kind=kind))
    reply, latency, cell = interrupt_when_started(kernel, wait)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", (reply, cell.text)
    assert latency < 1.0, f"the cell ended {latency:.2f} s after the interrupt"
    after = json.loads(kernel.run("print(facts(ctx))"))
    assert after == {"status": "aborted", "position": "slow", "keys": ["first"]}  # the slow stage not committed
    kernel.run("SLOW = False")
    done = kernel.run("res = ctx.run_sync().unwrap()\nprint(res.status, sorted(res.state))")
    assert done.splitlines()[-1] == "completed ['first', 'last', 'slow']"


@pytest.mark.parametrize("way", list(WAYS))
def test_interrupts_at_random_moments_taken_by_any_thread_each_abort_the_run(kernel, way):
    """The OS hands a process's SIGINT to any thread that does not block it, and Python runs the handler on the
    main thread only when that thread next runs Python code. A kernel whose loop sleeps while a step runs on a
    thread used to hear an interrupt taken by the step's thread only when the step ended (a minute here, far
    past the reply's bound). Each of these interrupts, at a random moment, taken by the main thread or by the
    step's own, ends the cell with KeyboardInterrupt, the run aborted, its stage uncommitted, resumable."""
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    prepare, wait = WAYS[way]
    for i in range(6):
        by_step = rng.random() < 0.5  # the step's thread takes it (it signals itself) or the main thread does
        kernel.run("SLOW = True\n" + prepare.format(kind="signalled" if by_step else "thread"))
        cell = kernel.send(wait)
        kernel.wait(lambda: "step started" in cell.text or cell.reply is not None, 30, "the slow step")
        assert "step started" in cell.text, (i, by_step, seed, cell.reply, cell.text, cell.errors)
        if not by_step:
            time.sleep(rng.random() * 0.05)  # a random moment of the step, not a wait for something to happen
            kernel.interrupt()
        reply = kernel.reply(cell, timeout=30)  # the step would run a minute: a lost interrupt shows here
        what = f"interrupt {i} ({'taken by the step thread' if by_step else 'taken by the main thread'}, seed {seed})"
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", (what, reply, cell.text)
        after = json.loads(kernel.run("print(facts(ctx))"))
        assert after == {"status": "aborted", "position": "slow", "keys": ["first"]}, what
        kernel.run("SLOW = False")
        done = kernel.run("res = ctx.run_sync().unwrap()\nprint(res.status, sorted(res.state))")
        assert done.splitlines()[-1] == "completed ['first', 'last', 'slow']", what


def test_a_started_run_is_not_touched_by_interrupting_a_later_cell(kernel, tmp_path):
    gate = tmp_path / "gate"
    kernel.run(f"""
        import os
        def wait_gate(state):
            while not os.path.exists({str(gate)!r}):
                time.sleep(0.01)
            return {{"bg": 1}}
        SLOW = True
        bg = (await PipelineFactory(Pipeline("bg", steps=[Step("w", wait_gate)]), registry=registry).prepare()).unwrap()
        task = bg.start()
        ctx = (await factory_for("async").prepare()).unwrap()
    """)
    reply, _, _ = interrupt_when_started(kernel, "await ctx.run()")
    assert reply["ename"] == "KeyboardInterrupt"
    assert kernel.run("print(bg.status, ctx.status)") == "running aborted"
    gate.write_text("open")
    assert kernel.run("print((await task).unwrap().status, bg.state['bg'])") == "completed 1"
    kernel.run("SLOW = False")


def test_an_inline_step_of_a_started_run_is_not_taken_for_the_awaited_one(kernel, tmp_path):
    """A ``start()`` run's inline step runs on the kernel's loop too. An interrupt landing in it while a cell
    awaits another run used to be raised there: that run was aborted, and the KeyboardInterrupt escaping its
    task stopped the kernel's loop (the kernel died). The awaited run is the one aborted, once the loop is free."""
    gate = tmp_path / "gate"
    kernel.run(f"""
        import os
        def busy_gate(state):  # inline: pure Python on the kernel's loop thread until the gate opens
            print("bg busy", flush=True)
            while not os.path.exists({str(gate)!r}):
                pass
            return {{"bg": 1}}
        SLOW = True
        bg = (await PipelineFactory(Pipeline("bg-inline", steps=[Step("w", busy_gate, executor="inline")]),
                                    registry=registry).prepare()).unwrap()
        ctx = (await factory_for("async").prepare()).unwrap()
    """)
    cell = kernel.send("task = bg.start()\nawait ctx.run()")
    kernel.wait_for_output(cell, "bg busy")  # the awaited run's async step is waiting; the loop runs bg's step
    kernel.interrupt()
    gate.write_text("open")  # bg's step returns: the loop is free to abort the awaited run
    reply = kernel.reply(cell, timeout=30)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", (reply, cell.text)
    assert kernel.run("print((await task).unwrap().status, bg.state['bg'], ctx.status)") == "completed 1 aborted"
    kernel.run("SLOW = False")
    done = kernel.run("res = ctx.run_sync().unwrap()\nprint(res.status)")
    assert done.splitlines()[-1] == "completed"


def test_interrupt_outside_a_run_is_the_kernels_own(kernel):
    """With no run awaited, pipenb leaves SIGINT to ipykernel: a plain sleep is interrupted as usual."""
    cell = kernel.send("print('step started', flush=True)\nawait asyncio.sleep(2)")
    kernel.wait_for_output(cell, "step started")
    kernel.interrupt()
    reply = kernel.reply(cell, timeout=90)
    assert reply["status"] == "error"
    assert kernel.run("print(1 + 1)") == "2"

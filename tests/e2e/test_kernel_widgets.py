"""SPEC 7 in a real Jupyter kernel: clicks arrive as the comm messages a browser sends.

The run executes as a background task on the kernel's loop; between clicks
the test only asks the kernel short questions, as a person looking would.
"""

import json
import pathlib
import textwrap
import time

import pytest

from ..kernel_client import KernelSession

SETUP = textwrap.dedent("""
    import asyncio, json, threading
    from IPython.display import display
    from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
    from pipenb.widgets import RunDashboard

    async def work(state):
        await asyncio.sleep(0.05)
        return {"n": state.get("n", 0) + 1}

    pipe = Pipeline("kernel-demo", stages=[Stage(f"s{i}", steps=[Step("w", work)]) for i in range(30)])
    factory = PipelineFactory(pipe, registry=PipelineRegistry(default_timeout=120))
    dash = RunDashboard(factory)
    display(dash)

    async def until(cond, timeout=10):
        for _ in range(int(timeout / 0.02)):
            if cond():
                return True
            await asyncio.sleep(0.02)
        return False

    print(json.dumps({**{n: b.model_id for n, b in dash.buttons.items()}, "graph": dash.graph.model_id}))
""")


@pytest.fixture(scope="module")
def kernel():
    k = KernelSession()
    yield k
    k.close()


def test_dashboard_clicks_drive_a_background_run(kernel):
    ids = json.loads(kernel.run(SETUP).splitlines()[-1])
    kernel.click(ids["run"])
    assert kernel.run("print(await until(lambda: dash.ctx is not None and dash.ctx.status == 'running'))") == "True"
    # The cell that started the run has returned: the kernel is idle and the click below gets through.
    kernel.click(ids["pause"])
    assert kernel.run("print(await until(lambda: dash.ctx.status == 'paused'))") == "True"
    out = kernel.run("""
        await asyncio.sleep(0.15)  # the last redraw comes at most 0.1 s after the previous one
        at = dash.ctx.position
        print(dash.graph.status.get(at), 'pipeline:paused' in [r[2] for r in dash.table.rows],
              dash.buttons['resume'].disabled, dash.buttons['pause'].disabled, 0 < dash.ctx.state['n'] < 30)
    """)
    assert out == "paused True False True True"
    kernel.click(ids["resume"])
    assert kernel.run("print(await until(lambda: dash.ctx.status == 'completed'))") == "True"
    assert kernel.run("await asyncio.sleep(0.15); print(dash.ctx.state['n'], dash.graph.status['s29'])") == "30 success"
    # A button that does not apply says why and does nothing.
    kernel.click(ids["pause"])
    assert kernel.run("await asyncio.sleep(0.1); print(dash.message.value)").endswith(
        "Pause: run completed: nothing to pause</span>")
    assert kernel.run("print(dash.ctx.status)") == "completed"


def test_clicking_a_stage_sets_a_breakpoint_the_next_run_honours(kernel):
    ids = json.loads(kernel.run(SETUP).splitlines()[-1])
    # What the browser sends when a stage is clicked: a state update of the graph model.
    kernel.comm(ids["graph"], {"method": "update", "state": {"breakpoints": ["s3"]}, "buffer_paths": []})
    assert kernel.run("await asyncio.sleep(0.1); print(dash.graph.breakpoints)") == "['s3']"
    kernel.click(ids["run"])
    assert kernel.run("print(await until(lambda: dash.ctx is not None and dash.ctx.status == 'paused'))") == "True"
    out = kernel.run("await asyncio.sleep(0.15); print(dash.ctx.position, dash.ctx.state['n'], dash.table.rows[-1][7])")
    assert out == "s3 3 breakpoint; resumes at s3"


def test_clicks_from_another_thread_are_handed_to_the_loop(kernel):
    kernel.run(SETUP)
    out = kernel.run("""
        t = threading.Thread(target=dash.press, args=("run",)); t.start(); t.join()
        ok = await until(lambda: dash.ctx is not None and dash.ctx.status == 'running')
        t = threading.Thread(target=dash.press, args=("abort",)); t.start(); t.join()
        print(ok, await until(lambda: dash.ctx.status == 'aborted'), dash.buttons['resume'].disabled)
    """)
    assert out == "True True False"


LONG = textwrap.dedent("""
    import time, pipenb

    def slow_read(state, ctx):
        seen["thread"] = threading.current_thread().name
        for k in range(300):  # 3 s in small slices, giving up when aborted
            if ctx.signal.aborted:
                return {"rows": -1}
            time.sleep(0.01)
            ctx.progress(k + 1, 300, "reading")
        return {"rows": 300}

    seen = {}
    long_pipe = Pipeline("kernel-long", stages=[Stage("load", steps=[Step("read", slow_read)]),
                                                Stage("after", steps=[Step("a", lambda s: {"after": 1})])])
    long_dash = RunDashboard(PipelineFactory(long_pipe, registry=PipelineRegistry(default_timeout=120)))
    display(long_dash)
    print(json.dumps({**{n: b.model_id for n, b in long_dash.buttons.items()}, "file": pipenb.__file__}))
""")


def test_abort_click_lands_within_a_second_while_a_thread_step_runs(kernel):
    ids = json.loads(kernel.run(SETUP + LONG).splitlines()[-1])
    assert pathlib.Path(ids["file"]).resolve().parent.parent == pathlib.Path(__file__).resolve().parents[2]
    kernel.click(ids["run"])
    out = kernel.run("""
        ok = await until(lambda: long_dash.graph.progress.get("load", {}).get("done"))
        print(ok, long_dash.ctx.status, long_dash.graph.status.get("load"), seen["thread"].startswith("pipenb"))
        long_dash.ctx.on("pipeline:failure", lambda e: seen.setdefault("stopped_at", time.time()))
    """)
    assert out == "True running running True"
    clicked = time.time()  # the same clock as the kernel's: one machine
    kernel.click(ids["abort"])
    out = kernel.run("""
        ok = await until(lambda: long_dash.ctx.status == "aborted", timeout=2)
        print(ok, "rows" in long_dash.ctx.state, seen["stopped_at"])
    """)
    ok, committed, stopped_at = out.split()
    assert (ok, committed) == ("True", "False")
    assert float(stopped_at) - clicked < 1.0  # the step had 2 s to go: the abort did not wait for it

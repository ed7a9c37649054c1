"""SPEC 9 in a real Jupyter kernel: a step fails with KeyError 'prcie', a later cell
redefines the pipeline with the fix and rebuilds the factory, and three failed
runs are resumed three ways:

(a) in code: ``(await factory.resume(run_id)).unwrap().run()``;
(b) a run started by the OLD dashboard's Run button: that dashboard says its
    pipeline was redefined (``pipenb-stale``) and its Resume runs the
    definition it was built with (the run fails again the same way); a NEW
    dashboard built from the fixed factory resumes it with the fixed code;
(c) a run started in code, picked in the new dashboard's run list and resumed
    with its Resume button.

Clicks and picks arrive as the comm messages a browser sends.
"""

import json
import os
import textwrap

import pytest

from ..kernel_client import KernelSession

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BROKEN = textwrap.dedent("""
    import asyncio, json
    from IPython.display import display
    from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
    from pipenb.widgets import RunDashboard

    registry = PipelineRegistry(default_timeout=300)

    async def until(cond, timeout=10):
        for _ in range(int(timeout / 0.02)):
            if cond():
                return True
            await asyncio.sleep(0.02)
        return False

    def load(state):
        return {"price": 2.5, "qty": 4}

    def total(state):
        return {"total": state["prcie"] * state["qty"]}

    shop = Pipeline("kshop", stages=[Stage("load", steps=[Step("l", load)]),
                                     Stage("total", steps=[Step("t", total)]),
                                     Stage("ship", steps=[Step("s", lambda s: {"shipped": s["total"]})])])
    factory = PipelineFactory(shop, registry=registry)
    old_dash = RunDashboard(factory)
    display(old_dash)

    failures = {}
    async def failed_run():
        ctx = (await factory.prepare()).unwrap()
        res = await ctx.run()
        failures[ctx.run_id] = repr(res.error.__cause__)
        return ctx

    run_a = await failed_run()
    run_c = await failed_run()
    print(json.dumps({"a": run_a.run_id, "c": run_c.run_id, "status": [run_a.status, run_c.status],
                      "errors": sorted(failures.values()),
                      "old": {n: b.model_id for n, b in old_dash.buttons.items()}}))
""")

FIXED = textwrap.dedent("""
    def total(state):
        return {"total": state["price"] * state["qty"]}

    shop = Pipeline("kshop", stages=[Stage("load", steps=[Step("l", load)]),
                                     Stage("total", steps=[Step("t", total)]),
                                     Stage("ship", steps=[Step("s", lambda s: {"shipped": s["total"]})])])
    factory = PipelineFactory(shop, registry=registry)
    new_dash = RunDashboard(factory)
    display(new_dash)
    print(json.dumps({"new": {n: b.model_id for n, b in new_dash.buttons.items()},
                      "runs": new_dash.runs.model_id, "superseded": old_dash.factory.pipeline.superseded}))
""")


@pytest.fixture(scope="module")
def kernel():
    k = KernelSession(cwd=ROOT)
    yield k
    k.close()


def test_three_ways_to_resume_a_failed_run_with_fixed_code(kernel):
    assert kernel.run("import pipenb; print(pipenb.__file__)") == os.path.join(ROOT, "pipenb", "__init__.py")
    first = json.loads(kernel.run(BROKEN).splitlines()[-1])
    assert first["status"] == ["failed", "failed"]
    assert first["errors"] == ["KeyError('prcie')"] * 2
    old = first["old"]
    # Run B: started by the old dashboard's Run button; it fails the same way.
    kernel.click(old["run"])
    out = kernel.run("""
        ok = await until(lambda: old_dash.ctx is not None and old_dash.ctx.status == "failed")
        run_b = old_dash.ctx
        await asyncio.sleep(0.15)  # the table redraws at most every 0.1 s
        print(ok, run_b.position, any("prcie" in str(r) for r in old_dash.table.rows if r[2] == "stage:failure"))
    """)
    assert out.split() == ["True", "total", "True"]

    # The fix, in a later cell: the pipeline and the factory are rebuilt (same names, as a re-run cell does).
    second = json.loads(kernel.run(FIXED).splitlines()[-1])
    assert second["superseded"] is True
    new = second["new"]

    # (a) in code.
    out = kernel.run("""
        same = (await factory.resume(run_a.run_id)).unwrap() is run_a
        res = await (await factory.resume(run_a.run_id)).unwrap().run()
        print(json.dumps([res.unwrap().status, res.unwrap().state["total"], res.unwrap().state["shipped"],
                          run_a.pipeline is shop, same, run_a.status]))
    """)
    assert json.loads(out) == ["completed", 10.0, 10.0, True, True, "completed"]

    # (b) the old dashboard's Resume runs the definition it was built with, and says so.
    kernel.click(old["resume"])
    out = kernel.run("""
        ok = await until(lambda: run_b.status == "failed" and run_b.pipeline is not shop and not run_b.lifecycle.active)
        await asyncio.sleep(0.1)
        fails = [r for r in old_dash.table.rows if r[2] == "stage:failure" and "prcie" in str(r)]
        print(json.dumps([ok and len(fails) == 2, run_b.status, "pipenb-stale" in old_dash.stale._dom_classes,
                          old_dash.stale.value, old_dash.ctx is run_b]))
    """)
    ok, status, has_class, notice, shown = json.loads(out)
    assert (ok, status, has_class, shown) == (True, "failed", True, True)
    assert "redefined" in notice and "kshop" in notice
    assert kernel.run("print(new_dash.stale.value == '')") == "True"  # the new dashboard runs the current code
    # ... and the new dashboard resumes it with the fixed code: pick it in the run list, press Resume.
    pick(kernel, second["runs"], "run_b")
    kernel.click(new["resume"])
    out = kernel.run("""
        ok = await until(lambda: run_b.status == "completed")
        print(json.dumps([ok, run_b.status, run_b.state.get("total"), run_b.state.get("shipped"), run_b.pipeline is shop]))
    """)
    assert json.loads(out) == [True, "completed", 10.0, 10.0, True]

    # (c) a run started in code, resumed by the new dashboard's Resume.
    pick(kernel, second["runs"], "run_c")
    kernel.click(new["resume"])
    out = kernel.run("""
        ok = await until(lambda: run_c.status == "completed")
        print(json.dumps([ok, new_dash.ctx is run_c, run_c.state.get("total"), run_c.state.get("shipped"),
                          [r.address for r in run_c.history]]))
    """)
    assert json.loads(out) == [True, True, 10.0, 10.0, ["load", "total", "ship"]]


def pick(kernel, runs_model: str, name: str) -> None:
    """Pick run ``name`` in the dashboard's runs table as the browser does (a click sets ``value``), and wait."""
    run_id = kernel.run(f"print({name}.run_id)")
    kernel.comm(runs_model, {"method": "update", "state": {"value": run_id}, "buffer_paths": []})
    assert kernel.run(f"print(await until(lambda: new_dash.ctx is {name}))") == "True"

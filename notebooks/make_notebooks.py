"""Writes the demo notebooks from the cell sources below: ``python notebooks/make_notebooks.py``.

Keeping the sources here makes notebook changes reviewable as plain Python;
the .ipynb files are committed without outputs (regenerate them after editing
this file). The test suite generates the notebooks from this file into a
temporary directory and runs those top to bottom in a real kernel, so what a
person saves in notebooks/ (outputs, edits, an Untitled.ipynb) never changes
what it tests; it checks that the committed files match this file.
"""

from __future__ import annotations

import pathlib

import nbformat

HERE = pathlib.Path(__file__).parent


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text: str):
    return nbformat.v4.new_code_cell(text.strip())


QUICKSTART = [
    md("""
# pipenb quickstart

A pipeline is a list of **stages**; each stage runs its **steps** in order and
commits their changes to the run's state all at once. A stage's **router** can
jump to another stage, end the run, or pause it.

Here: load a small weather table, clean it, check there is enough data, and
summarise it. Heavy objects (the DataFrames) go into the run's **artifacts**,
small results into the **state**.
"""),
    code("""
import pandas as pd
from pipenb import END, Pipeline, PipelineFactory, Stage, Step


def load(state, ctx):
    df = pd.DataFrame({
        "city": ["Oslo", "Oslo", "Lima", "Lima", "Pune", None],
        "temp": [3.5, 4.1, 19.0, 21.2, 31.0, 12.0],
    })
    ctx.artifacts.put("raw", df)
    return {"rows": len(df)}


def clean(state, ctx):
    df = ctx.artifacts.get("raw").dropna()
    ctx.artifacts.put("clean", df)
    return {"clean_rows": len(df)}


def enough_data(state, results):
    return None if state["clean_rows"] >= 3 else END   # None = go on, END = stop here


def summarise(state, ctx):
    df = ctx.artifacts.get("clean")
    return {"mean_temp": round(float(df.temp.mean()), 2),
            "by_city": df.groupby("city").temp.mean().round(1).to_dict()}


weather = Pipeline("weather", stages=[
    Stage("load", steps=[Step("read", load)], label="Load table"),
    Stage("clean", steps=[Step("dropna", clean)], router=enough_data, label="Clean rows"),
    Stage("summary", steps=[Step("summarise", summarise)], label="Summarise"),
])
weather   # a pipeline shows its stage graph
"""),
    md("""
## Run it and watch the events

`prepare()` makes a run context; `on("*", ...)` subscribes to every event.
In a notebook, `await ctx.run()` runs it to the end (or `ctx.start()` runs it
in the background so the cell returns at once).
"""),
    code("""
factory = PipelineFactory(weather)
ctx = (await factory.prepare()).unwrap()
events = []
ctx.on("*", events.append)

result = (await ctx.run()).unwrap()
print(result.status, result.state)
assert result.status == "completed" and result.state["clean_rows"] == 5
"""),
    md("""
## Live widgets

`StageGraph` colours the stages as a run goes; `EventTable` lists its events
(filter by event or stage; `.dataframe` has all of them for pandas). Attach
both to a new run and start it in the background: the cell returns at once.
"""),
    code("""
from pipenb.widgets import EventTable, StageGraph

ctx2 = (await factory.prepare()).unwrap()
graph = StageGraph(weather, ctx2)
table = EventTable(ctx2)
task = ctx2.start()          # runs on the kernel's loop; widgets stay live
display(graph, table)
"""),
    code("""
await task                   # only so that this notebook also runs top to bottom unattended
df = table.dataframe
df[df.event == "stage:success"][["stage", "duration_ms", "detail"]]
"""),
    code("""
import asyncio
await asyncio.sleep(0.2)     # widgets redraw at most 10 times a second: let the last redraw land
assert graph.status == {"load": "success", "clean": "success", "summary": "success"}
print(len(df), "events;", table.counts)
"""),
    md("The state is a read-only snapshot: a step changes it only by returning a patch."),
    code("""
try:
    ctx.state["mean_temp"] = 0
except TypeError as exc:
    print("refused:", exc)
result
"""),
]

# The pipeline of 02, declared in its first part and again after the "kernel restart" marker:
# a new kernel has none of the first part's names, only the SQLite file.
APPROVAL_DEFINITIONS = """
def train(state, ctx):
    ctx.artifacts.put("model", {"coef": [0.4, 1.7], "trained_on": state["rows"]})
    return {"score": 0.93}


def approval_gate(state, results):
    if state.get("approved"):
        return None                                   # go on to "deploy"
    return Pause("gate", timeout=600)                 # wait for a person; stay live in memory for 10 min


def deploy(state, ctx):
    return {"deployed": ctx.artifacts.get("model")["coef"]}


approval = Pipeline("approval", stages=[
    Stage("train", steps=[Step("fit", train)], label="Train model"),
    Stage("gate", steps=[Step("check", lambda s: None)], router=approval_gate, routes=["gate"],
          label="Approval gate"),
    Stage("deploy", steps=[Step("ship", deploy)], label="Deploy"),
])
"""

PAUSE_AND_RESUME = [
    md("""
# Pause and resume: an approval gate

A model is trained, then a person must approve it before it is deployed. The
gate's router **pauses** the run with a timeout. While paused, the run stays
alive in the kernel (instant resume); when the timeout passes, the registry
lets it go — it can still be resumed from the store. With `SqliteStore` that
works even after a kernel restart: each stage wrote its state, history and
artifacts (the trained model) to the file as it committed.
"""),
    code(
        """
import pathlib
from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.stores import SqliteStore

"""
        + APPROVAL_DEFINITIONS
        + """
registry = PipelineRegistry(default_timeout=300)
factory = PipelineFactory(approval, store_factory=SqliteStore.factory("approvals.sqlite"), registry=registry)
ctx = (await factory.prepare(initial_state={"rows": 1200})).unwrap()
first = (await ctx.run()).unwrap()
pathlib.Path("approval_run_id.txt").write_text(ctx.run_id)
first
"""
    ),
    md("The registry knows the paused run, and how long it stays in memory:"),
    code("""
import pandas as pd
pd.DataFrame([r.to_dict() for r in registry.runs()])   # expires_at in local time, time_left as a duration
"""),
    md("The dashboard shows the same list, ticking down; pick a run to see its graph, state and checkpoint:"),
    code("""
from pipenb.widgets import RunDashboard

dash = RunDashboard(factory)
dash.show(ctx)
dash
"""),
    md("""
Within the window, `resume` hands back **the same object** — nothing is read
from the file. When the window ends, the registry releases the context;
`resume` then rebuilds it from SQLite, artifacts included (they are in the
file already). `registry.expire(run_id)` ends the window now, as ten minutes
would:
"""),
    code("""
assert (await factory.resume(ctx.run_id)).unwrap() is ctx       # fast path
registry.expire(ctx.run_id)                                     # the window ends now
rec = registry.runs()[0]
print("live in memory:", rec.live, "| artifacts in the file:",
      sorted(SqliteStore("approvals.sqlite", ctx.run_id).load_artifacts()))
assert not rec.live
"""),
    md("""
## After a kernel restart

Restart the kernel now if you like (Kernel ▸ Restart), then run the cells
below: they need only the SQLite file, the run id, and the definitions (the
imports and the pipeline, declared again below, as after any restart). First a
separate Python process reads the file, to show that nothing here lives only
in memory.
"""),
    code("""
import subprocess
import sys
probe = ("from pipenb.stores import SqliteStore; "
         "s = SqliteStore('approvals.sqlite', open('approval_run_id.txt').read()); "
         "print(sorted(k for k in s.get() if not k.startswith('__')), "
         "s.get()['__pipeline_data__']['checkpoint'].resume_at)")
print("another process sees:", subprocess.run([sys.executable, "-c", probe], capture_output=True,
                                              text=True, check=True).stdout)
"""),
    md("""
A new kernel knows nothing of the cells above: declare the pipeline again (the
same code; in a real project it lives in a module you import), make a factory
on the same file, and resume the run by its id.
"""),
    code(
        """
import pathlib
from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step  # noqa: F811 (new kernel)
from pipenb.stores import SqliteStore

"""
        + APPROVAL_DEFINITIONS
        + """
run_id = pathlib.Path("approval_run_id.txt").read_text()
fresh = PipelineFactory(approval, store_factory=SqliteStore.factory("approvals.sqlite"),
                        registry=PipelineRegistry())
again = (await fresh.resume(run_id)).unwrap()
print(again.status, "at", again.position, "| model:", again.artifacts.get("model"))
again.update_state({"approved": True})            # the person says yes
done = (await again.run()).unwrap()
done
"""
    ),
    code("""
assert done.status == "completed" and done.state["deployed"] == [0.4, 1.7]
"""),
    md("""
If you ran every cell in one kernel, scroll back up: the dashboard still shows
the run as it last saw it (paused at the gate) and its runs list says **gone**,
*no checkpoint in the store any more*: the new factory above completed the run
from the file, so the dashboard's older factory has nothing left to resume.
Build a new dashboard on `fresh` to look at the completed run.
"""),
]

DEBUGGING = [
    md("""
# The debugging loop: fix, resume, look back, fork

A step fails. You fix the function in its cell, re-run the cell, and resume
the run: the **fixed code** runs, from the stage that failed, with the work
of the stages before it kept. Then look back at what each stage did, and
fork the run from an earlier stage with one value changed.
"""),
    code("""
import pandas as pd
from pipenb import Pipeline, PipelineFactory, Stage, Step
from pipenb.widgets import RunDashboard

orders = pd.DataFrame({"item": ["tea", "cake", "tea", "jam"], "qty": [2, 1, 3, 5], "price": [3.5, 4.0, 3.5, 2.0]})


def load(state):
    return {"orders": orders, "rows": len(orders)}


def price(state):                      # a typo: the column is "price"
    df = state["orders"]
    return {"revenue": float((df["qty"] * df["prcie"]).sum())}


def report(state):
    return {"report": f"{state['rows']} orders, revenue {state['revenue']:.2f} at discount {state.get('discount', 0)}"}


def build():
    return Pipeline("shop", stages=[
        Stage("load", steps=[Step("load", load)]),
        Stage("price", steps=[Step("price", price)]),
        Stage("report", steps=[Step("report", report)]),
    ])


factory = PipelineFactory(build())
ctx = (await factory.prepare()).unwrap()
res = await ctx.run()
print(ctx.status, "at", ctx.position, "|", type(res.error.__cause__).__name__, res.error.__cause__)
assert ctx.status == "failed" and ctx.position == "price"
"""),
    md("Fix the step, then re-run the cell that builds the pipeline and the factory (here: one cell):"),
    code("""
def price(state):  # noqa: F811 - the fixed step, redefined on purpose
    df = state["orders"]
    revenue = float((df["qty"] * df["price"]).sum())
    return {"revenue": revenue * (1 - state.get("discount", 0))}


factory = PipelineFactory(build())     # a new definition of "shop", with the fixed step
"""),
    md("""
Resume the failed run through the new factory: `resume` returns the same live
run, rebound to the new definition, and its retry runs the **fixed** step
(`load` is not run again):
"""),
    code("""
again = (await factory.resume(ctx.run_id)).unwrap()
assert again is ctx and ctx.pipeline is factory.pipeline
res = (await again.run()).unwrap()
print(res.status, "|", res.state["report"])
assert res.status == "completed" and res.state["revenue"] == 31.5
"""),
    md("Look back: one record per committed stage, what it changed, and the state after it:"),
    code("""
h = ctx.history
print([r.address for r in h])
print("price changed:", h.diff(1))
h.dataframe()
"""),
    md("""
Fork the run from before `price`, with a discount. The fork starts from the
state before that stage (the loaded orders are shared, not copied); an edit of
a paused or prepared run is a record of its history too (`"price (edit)"`):
"""),
    code("""
fork = (await factory.fork(ctx.run_id, at="price")).unwrap()
fork.update_state({"discount": 0.1})
res = (await fork.run()).unwrap()
print(res.state["report"])
print([r.address for r in fork.history])
assert round(res.state["revenue"], 2) == 28.35 and ctx.state["revenue"] == 31.5   # the source run is unchanged
assert [r.address for r in fork.history] == ["load", "price (edit)", "price", "report"]
"""),
    md("The dashboard shows both runs: pick one, open its History tab, pick an entry to see its diff, fork from it:"),
    code("""
dash = RunDashboard(factory)
dash.show(fork)
dash
"""),
]

TEACHING = [
    md("""
# Teaching with pipelines: loops, sub-pipelines and a live graph

Newton's method for square roots as a pipeline: a stage improves the guess,
and its router **loops** back until the guess is good enough. A sub-pipeline
checks the answer. Watch the graph while it runs.
"""),
    code("""
import asyncio
from pipenb import Pipeline, PipelineFactory, Stage, Step
from pipenb.widgets import EventTable, StageGraph


async def improve(state):
    await asyncio.sleep(0.4)                       # slow enough to watch each step light up
    x, g = state["x"], state["guess"]
    return {"guess": (g + x / g) / 2, "iterations": state.get("iterations", 0) + 1}


def close_enough(state, results):
    return None if abs(state["guess"] ** 2 - state["x"]) < 1e-9 else "improve"


check = Pipeline("check", steps=[
    Step("square", lambda s: {"squared": s["guess"] ** 2}),
    Step("error", lambda s: {"error": abs(s["squared"] - s["x"])}),
])

newton = Pipeline("newton", stages=[
    Stage("start", steps=[Step("first_guess", lambda s: {"guess": s["x"] / 2})], label="First guess"),
    Stage("improve", steps=[Step("newton_step", improve)], router=close_enough, routes=["improve"],
          label="Improve guess"),
    Stage("check", pipeline=check, label="Check the answer"),
])
newton
"""),
    code("""
factory = PipelineFactory(newton)
ctx = (await factory.prepare(initial_state={"x": 1000.0})).unwrap()   # 8 improvements: ~3 s to watch
graph, table = StageGraph(newton, ctx), EventTable(ctx)
task = ctx.start()
display(graph, table)
"""),
    code("""
result = (await task).unwrap()
print(f"sqrt(1000) ≈ {result.state['guess']:.12f} after {result.state['iterations']} improvements")
assert abs(result.state["guess"] - 1000 ** 0.5) < 1e-9 and result.state["error"] < 1e-9
assert result.state["iterations"] == 8           # as many as the cell above says
"""),
    md("Each loop is a `stage:success` whose `next` is `improve`:"),
    code("""
df = table.dataframe
df[df.event == "stage:success"][["stage", "detail", "duration_ms"]]
"""),
]

SCALE_OUT = [
    md("""
# Scaling out: inline, threads, a Dask cluster

The same pandas pipeline three ways. Where a step runs is the `executor=` of
the step, its stage or the factory (the nearest one set wins):

* `await ctx.run()`: sync steps run **inline**, on the kernel's event loop;
* `ctx.start()`: sync steps run on **pipenb's worker threads**, so the loop
  stays free: the dashboard redraws and its buttons answer while a step works;
* `PipelineFactory(p, executor=client)`: steps run on a **Dask** cluster
  (here a local one with one worker process). State and step functions travel
  by cloudpickle, so functions defined in this notebook work there.
"""),
    code("""
import time

import numpy as np
import pandas as pd
from pipenb import DELETE, Pipeline, PipelineFactory, Stage, Step
from pipenb.widgets import RunDashboard

ROWS = 200_000


def load(state):
    rng = np.random.default_rng(state["seed"])
    n = state["rows"]
    sales = pd.DataFrame({
        "store": rng.integers(0, 50, n),
        "price": rng.gamma(2.0, 10.0, n).round(2),
        "qty": rng.integers(1, 10, n),
    })
    return {"sales": sales}


def add_revenue(state):
    sales = state["sales"].assign(revenue=lambda d: d.price * d.qty)
    return {"sales": sales}


def points(price, qty):                      # deliberately slow, row by row
    x = price * qty
    for _ in range(250):
        x = x * 1.0001 + 0.01
    return x


def loyalty(state, ctx):
    sales = state["sales"]
    chunks = [sales.iloc[i:i + 5_000] for i in range(0, len(sales), 5_000)]
    total = 0.0
    for chunk in ctx.track(chunks, message="scoring rows"):   # a progress bar on the stage
        total += sum(points(p, q) for p, q in chunk[["price", "qty"]].itertuples(index=False))
    return {"loyalty_points": round(total)}


def summarise(state):
    by_store = state["sales"].groupby("store").revenue.sum()
    return {"revenue": round(float(by_store.sum()), 2), "best_store": int(by_store.idxmax()),
            "sales": DELETE}         # the table has served its purpose: keep the state small


sales = Pipeline("sales", stages=[
    Stage("load", steps=[Step("generate", load)], label="Load sales"),
    Stage("features", steps=[Step("revenue", add_revenue)], label="Add revenue"),
    Stage("score", steps=[Step("loyalty", loyalty)], label="Loyalty points (slow)"),
    Stage("summary", steps=[Step("summarise", summarise)], label="Summarise"),
])
START = {"rows": ROWS, "seed": 7}
sales
"""),
    md("## 1. Inline: the cell waits, and the loop is busy while a step runs"),
    code("""
factory = PipelineFactory(sales, initial_state_factory=lambda: dict(START))
ctx = (await factory.prepare()).unwrap()
t0 = time.perf_counter()
inline = (await ctx.run()).unwrap()
print(f"inline: {inline.status} in {time.perf_counter() - t0:.1f} s")
expected = {k: inline.state[k] for k in ("revenue", "best_store", "loyalty_points")}
expected
"""),
    md("""
## 2. Threads: `ctx.start()` with a live dashboard

The cell returns at once; the dashboard shows the stage graph, the progress of
the slow step and the events as they come. The next cell waits for the run
(a notebook run top to bottom needs that: the kernel stops after the last cell).
"""),
    code("""
dash = RunDashboard(factory)
ctx = (await factory.prepare()).unwrap()
dash.show(ctx)
t0 = time.perf_counter()
task = ctx.start()
dash
"""),
    code("""
threaded = (await task).unwrap()
print(f"threads: {threaded.status} in {time.perf_counter() - t0:.1f} s")
assert {k: threaded.state[k] for k in expected} == expected
dash.table.dataframe[["event", "stage", "detail"]].tail(6)
"""),
    md("""
## 3. A local Dask cluster: `PipelineFactory(p, executor=client)`

Same pipeline, same dashboard. Out of process a step's `ctx.progress` and
`ctx.track` report nothing (the bar stays empty, the stage still lights up)
and `ctx.artifacts` is not available: return values in the patch instead.
"""),
    code("""
import distributed

cluster = distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None)
client = distributed.Client(cluster)
dask_factory = PipelineFactory(sales, initial_state_factory=lambda: dict(START), executor=client)
ctx = (await dask_factory.prepare()).unwrap()
dash.show(ctx)
t0 = time.perf_counter()
task = ctx.start()
client
"""),
    code("""
on_dask = (await task).unwrap()
print(f"dask: {on_dask.status} in {time.perf_counter() - t0:.1f} s")
assert {k: on_dask.state[k] for k in expected} == expected
client.close()
cluster.close()
on_dask.state
"""),
]

LOOK_BACK = [
    md("""
# Looking back at a run: visits, blame, stale stages, forks and a replay

A small gradient-descent loop fits a line with numpy: `epoch` runs again and
again (its router loops back) until the loss is small enough. Afterwards we
ask the run what it did (**visits**, **transitions**, **blame**), stop it
with a **conditional breakpoint**, find the records a code fix makes
**stale**, **fork** from the first of them, **compare** the two runs, and
scrub through both with **`RunReplay`**: nothing runs again while you look.
"""),
    code("""
import time
import numpy as np
from IPython.display import HTML
from pipenb import Pipeline, PipelineFactory, Stage, Step
from pipenb.timeline import timeline_svg
from pipenb.widgets import RunReplay

rng = np.random.default_rng(0)
x = rng.uniform(0, 10, 20_000)
y = 3.0 * x + 2.0 + rng.normal(0, 1.0, x.size)      # the line to find: w = 3, b = 2


def start(state):
    return {"w": 0.0, "b": 0.0, "epoch": 0}


def epoch(state):                                   # a bug: the bias b never moves
    time.sleep(0.1)                                 # slow enough to watch
    w, b = state["w"], state["b"]
    err = w * x + b - y
    return {"w": w - 0.01 * float((err * x).mean()), "b": b,
            "epoch": state["epoch"] + 1, "loss": float((err ** 2).mean())}


def again(state, results):
    return "epoch" if state["loss"] > 1.2 and state["epoch"] < 15 else None


def summary(state):
    return {"fit": f"y = {state['w']:.2f}·x + {state['b']:.2f} after {state['epoch']} epochs, loss {state['loss']:.2f}"}


def build():
    return Pipeline("fit-line", stages=[
        Stage("start", steps=[Step("init", start)]),
        Stage("epoch", steps=[Step("descend", epoch)], router=again, routes=["epoch"]),
        Stage("summary", steps=[Step("write", summary)]),
    ])


factory = PipelineFactory(build())
"""),
    md("""
## A conditional breakpoint

`ctx.breakpoints.add(address, when=...)` pauses before the stage only when
the condition holds on the state: here, once the loss has fallen below 50.
"""),
    code("""
ctx = (await factory.prepare()).unwrap()
log = ctx.record()                                  # keep the run's events, for the replay and the timeline
ctx.breakpoints.add("epoch", when=lambda s: s.get("loss", float("inf")) < 50)
await ctx.run()
print(ctx.status, "before", ctx.position, "| epoch", ctx.state["epoch"], "loss", round(ctx.state["loss"], 1))
assert ctx.status == "paused" and ctx.state["loss"] < 50
"""),
    code("""
ctx.breakpoints.clear()
res = (await ctx.run()).unwrap()
print(res.status, "|", res.state["fit"])
"""),
    md("""
## What did the run do?

`visits()` counts each stage's records, `transitions()` the moves between
stages, `blame(key)` lists every record that changed a key, oldest first.
"""),
    code("""
h = ctx.history
print("visits:     ", h.visits())
print("transitions:", h.transitions())
for seq, address, old, new in h.blame("b")[:3]:
    print(f"#{seq} {address}: b {old} -> {new}")
assert h.visits()["epoch"] == res.state["epoch"] and not h.blame("b")[1:]   # b was never moved: the bug
h.dataframe().head()
"""),
    md("""
## Fix the step: which records are stale?

Redefine `epoch` (the bias now moves too) and rebind the run to the new
definition: `h.stale()` lists the records whose stage now runs other code.
Fork a new run from the first of them and run it with the fix.
"""),
    code("""
def epoch(state):  # noqa: F811 - the fixed step, redefined on purpose
    time.sleep(0.1)
    w, b = state["w"], state["b"]
    err = w * x + b - y
    return {"w": w - 0.01 * float((err * x).mean()), "b": b - 0.05 * float(err.mean()),
            "epoch": state["epoch"] + 1, "loss": float((err ** 2).mean())}


factory = PipelineFactory(build())
ctx.rebind(factory.pipeline)
stale = h.stale()
print(len(stale), "stale records:", sorted({r.address for r in stale}))
first = next(i for i, r in enumerate(h) if r.seq == stale[0].seq)
fixed = (await factory.fork(ctx.run_id, at=first)).unwrap()
fixed_log = fixed.record()
res = (await fixed.run()).unwrap()
print("fixed:", res.state["fit"])
comparison = fixed.history.compare(h)
print(comparison)
assert comparison.diverged_at == first
"""),
    md("""
## Replay both runs, side by side

A scrubber over the fixed run's records, the first run beside it, aligned
record by record, with the point where they part marked. Play, pause, step,
jump to the start or the end: the graph shows what had run up to the
position (visit counts, edges taken), the state after the record with the
changed keys marked, and that stage's events. Nothing runs again.
"""),
    code("""
replay = RunReplay(fixed, compare=ctx, events=fixed_log, compare_events=log)
replay
"""),
    md("From code, too: `len(replay)` records, `replay.position` (clamped), `replay.record` and `replay.state`."),
    code("""
replay.position = first + 2
print(len(replay), "records; at", replay.position, replay.record.address, "| w, b =",
      round(replay.state["w"], 2), round(replay.state["b"], 2))
replay.position = 10_000                            # clamped to the last record
assert replay.record.address == "summary"
"""),
    md("## Where did the time go? The timeline"),
    code("""
HTML(timeline_svg(ctx.history, log))
"""),
    md("""
## A report to keep

`ctx.report(path)` writes one self-contained HTML page (graph with visit
counts and edges taken, timeline, every record with its diff, the events,
the final state): it opens offline, without scripts.
"""),
    code("""
page = fixed.report("fit-line-report.html", events=fixed_log)
print(len(page), "characters written to fit-line-report.html")
"""),
]

NOTEBOOKS = {
    "01-quickstart": QUICKSTART,
    "02-pause-and-resume": PAUSE_AND_RESUME,
    "03-debugging": DEBUGGING,
    "04-teaching": TEACHING,
    "05-scale-out": SCALE_OUT,
    "06_look_back": LOOK_BACK,
}


def build(name: str) -> nbformat.NotebookNode:
    """Notebook ``name`` (a key of NOTEBOOKS) as it is committed: cells only, no outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.from_dict(cell) for cell in NOTEBOOKS[name]]  # copies: NOTEBOOKS stays untouched
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name[:2]}-{i:02d}"  # stable ids: regenerating changes only what changed
    return nb


def write(directory: pathlib.Path = HERE) -> list[pathlib.Path]:
    """Writes every notebook into ``directory``; returns their paths (the test suite writes them to a
    temporary directory and runs those, whatever a person saved in notebooks/)."""
    directory = pathlib.Path(directory)
    paths = []
    for name in NOTEBOOKS:
        path = directory / f"{name}.ipynb"
        nbformat.write(build(name), path)
        paths.append(path)
    return paths


def main() -> None:
    for path in write(HERE):
        print("wrote", path)


if __name__ == "__main__":
    main()

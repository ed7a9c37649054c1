"""Writes the demo notebooks from the cell sources below: ``python notebooks/make_notebooks.py``.

Keeping the sources here makes notebook changes reviewable as plain Python;
the .ipynb files are committed without outputs, and the test suite runs each
one top to bottom in a real kernel.
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
    code("""
table = pd.DataFrame([{"event": e.name, "stage": e.stage_address, "ms": round(getattr(e, "duration", 0) * 1000, 3)}
                      for e in events])
table
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

NOTEBOOKS = {"01-quickstart": QUICKSTART}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nb.cells = cells
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print("wrote", HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()

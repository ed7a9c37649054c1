"""The one-file report (SPEC 14) read in headless Chromium: the history table stays a table a person reads.

A long router answer (a ``Pause(...)`` repr) used to squeeze the narrow columns until stage names and times
broke letter by letter ("stag/e", "03:24:4/8"). Measured on the page: each record's number, stage, start time
and duration sit on one line, and the page has no horizontal scroll. Screenshot: ``test-artifacts/report.png``.
"""

import pytest

from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step

from .. import lab_browser
from ..lab_browser import SHOTS

browser = lab_browser.browser
pytestmark = pytest.mark.needs_chromium

ONE_LINE = """() => {
    // Lines a cell's text takes: the distinct tops of its text's line boxes (the row's height follows its
    // tallest cell, so the cell's own box says nothing).
    const rows = Array.from(document.querySelectorAll('table.records > tbody > tr'));
    return rows.map(tr => Array.from(tr.children).slice(0, 4).map(td => {
        const range = document.createRange();
        range.selectNodeContents(td);
        const tops = new Set(Array.from(range.getClientRects(), r => Math.round(r.top)));
        return {text: td.innerText, lines: tops.size};
    }));
}"""


def test_the_history_table_keeps_stage_names_and_times_on_one_line(tmp_path, browser):
    p = Pipeline("report-columns", stages=[
        Stage("load", steps=[Step("read", lambda s: {"rows": 1})]),
        Stage("review", steps=[Step("look", lambda s: {"seen": 1})],
              router=lambda s, r: Pause("train", timeout=600, persist=False)),
        Stage("train", steps=[Step("fit", lambda s: {"model": {"coef": list(range(40))}})]),
        Stage("report", steps=[Step("write", lambda s: {"done": "x" * 300})]),
    ])
    ctx = PipelineFactory(p, registry=PipelineRegistry()).prepare_sync().unwrap()
    ctx.run_sync().unwrap()
    ctx.run_sync().unwrap()
    page_file = tmp_path / "report.html"
    ctx.report(str(page_file))
    pg = browser.new_page(viewport={"width": 900, "height": 800})
    try:
        pg.goto(page_file.as_uri())
        cells = pg.evaluate(ONE_LINE)
        SHOTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(SHOTS / "report.png"), full_page=True)
        assert [row[1]["text"] for row in cells] == ["load", "review", "train", "report"]
        wrapped = [cell for row in cells for cell in row if cell["lines"] != 1]
        assert not wrapped, f"cells broken over lines: {wrapped}"
        assert pg.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        pg.close()

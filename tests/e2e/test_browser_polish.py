"""What a newcomer sees in a real browser (issue #20.1), measured on the page: table cells wrap between
words, never letter by letter, in a narrow output; the History tab's times stay on one line at 1280 px;
after a kernel restart the dashboard says the kernel is gone and its controls are off. Every wait is on
what the page shows (tests/lab_browser.py). Screenshots: ``test-artifacts/``.
"""

import pytest

from .. import lab_browser
from ..lab_browser import SHOTS, expect, open_notebook, resize, wait_until

lab, browser = lab_browser.lab, lab_browser.browser  # the module's fixtures: JupyterLab serving NOTEBOOKS, Chromium

CODE = """
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import RunDashboard

words = Pipeline("polish-demo", stages=[
    Stage("load_customer_orders", steps=[Step("read", lambda s: {"rows": 1200, "source_file_name": "orders.csv"})]),
    Stage("clean_rows", steps=[Step("drop", lambda s: {"rows": s["rows"] - 3})]),
    Stage("summarise_revenue_by_region", steps=[Step("sum", lambda s: {"total_revenue_in_euros": 42})]),
])
factory = PipelineFactory(words, registry=PipelineRegistry(default_timeout=600))
for _ in range(3):
    factory.prepare_sync().unwrap().run_sync()
dash = RunDashboard(factory)
dash.show(factory.prepare_sync().unwrap())
dash.press("resume")
dash
"""

NOTEBOOKS = {"polish.ipynb": [CODE]}

pytestmark = pytest.mark.needs_chromium

# Every cell of the runs and history tables: its text, how many lines its text takes (the distinct tops of
# the text's line boxes: a cell is as high as its row, its text need not be), how many words it has.
CELLS = """sel => Array.from(document.querySelectorAll(sel + ' td')).filter(td => td.getClientRects().length)
    .map(td => {
        const tops = new Set();
        const walk = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
        for (let node = walk.nextNode(); node; node = walk.nextNode()) {
            const range = document.createRange();
            range.selectNodeContents(node);
            for (const r of range.getClientRects()) if (r.width > 0) tops.add(Math.round(r.top));
        }
        return {text: td.innerText.trim(), lines: tops.size,
                words: td.innerText.trim().split(/[\\s/-]+/).filter(Boolean).length};
    })"""


def broken_cells(pg, sel: str) -> list:
    """Cells taking more lines than they have words: a word was broken inside."""
    return [c for c in pg.evaluate(CELLS, sel) if c["text"] and c["lines"] > max(c["words"], 1)]


def open_history(pg) -> None:
    pg.locator(".pipenb-tabs .lm-TabBar-tab", has_text="History").click()
    expect(pg.locator(".pipenb-history td").first).to_be_visible()


@pytest.fixture(scope="module")
def page(browser, lab):
    with open_notebook(browser, lab, "polish.ipynb", viewport=(1280, 1400)) as pg:
        wait_until(
            pg,
            "() => document.querySelectorAll('.pipenb-runs tr.pipenb-pick-row').length >= 4",
            what="four runs listed",
        )
        yield pg


def test_history_times_stay_on_one_line_at_1280_px(page):
    pg = page
    open_history(pg)
    wait_until(
        pg,
        "() => document.querySelectorAll('.pipenb-history tr.pipenb-pick-row').length === 3",
        what="three history entries",
    )
    times = [c for c in pg.evaluate(CELLS, ".pipenb-history") if ":" in c["text"]]
    assert len(times) == 3, times
    assert all(c["lines"] == 1 for c in times), times
    pg.screenshot(path=str(SHOTS / "polish-history-1280.png"))


def test_narrow_output_wraps_cells_between_words_never_inside_them(page):
    pg = page
    resize(pg, 640, 1400)
    try:
        open_history(pg)
        for sel in (".pipenb-runs", ".pipenb-history", ".pipenb-dashboard table.pipenb-state"):
            assert broken_cells(pg, sel) == [], sel
        pg.screenshot(path=str(SHOTS / "polish-narrow.png"), full_page=True)
    finally:
        resize(pg, 1280, 1400)


def test_the_timeline_unfolds_and_fits_a_narrow_output(page):
    pg = page
    resize(pg, 640, 1400)
    try:
        pg.locator(
            ".pipenb-timeline-section .lm-AccordionPanel-title, .pipenb-timeline-section .p-Accordion-title,"
            " .pipenb-timeline-section .jupyter-widget-Collapse-header"
        ).first.click()
        svg = pg.locator(".pipenb-timeline-view svg")
        expect(svg).to_be_visible()
        expect(svg.locator("g.row")).to_have_count(3)  # the shown run's three stages
        fit = pg.evaluate("""() => {
            const out = document.querySelector('.pipenb-dashboard').closest('.jp-OutputArea-output');
            return [document.querySelector('.pipenb-timeline-view svg').getBoundingClientRect().right,
                    out.getBoundingClientRect().right];
        }""")
        assert fit[0] <= fit[1] + 1, fit
    finally:
        resize(pg, 1280, 1400)


def test_after_a_kernel_restart_the_dashboard_says_the_kernel_is_gone(page):
    pg = page
    assert pg.locator(".pipenb-dashboard.pipenb-kernel-gone").count() == 0
    assert pg.is_enabled(".pipenb-dashboard button.pipenb-btn-run")
    pg.evaluate("""() => {
        const nb = Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === 'polish.ipynb');
        return nb.sessionContext.session.kernel.restart();
    }""")
    pg.wait_for_selector(".pipenb-dashboard.pipenb-kernel-gone")
    expect(pg.locator(".pipenb-kernel-gone-note")).to_contain_text("kernel")
    expect(pg.locator(".pipenb-kernel-gone-note")).to_contain_text("last snapshot")
    assert pg.is_disabled(".pipenb-dashboard button.pipenb-btn-run")
    assert pg.locator(".pipenb-dashboard .pipenb-status").inner_text().strip() != ""  # the last state stays
    # The note says it once: no ipywidgets broken-link mark (a ::before) on the dashboard or inside it; one
    # showed above the note, on the dashboard's own box (polish pass).
    marks = pg.evaluate("""() => Array.from(document.querySelectorAll(
            '.pipenb-dashboard.jupyter-widgets-disconnected, .pipenb-dashboard .jupyter-widgets-disconnected'))
        .filter(el => { const b = getComputedStyle(el, '::before');
                        return b.display !== 'none' && b.content && b.content !== 'none' && b.content !== 'normal'; })
        .map(el => el.className)""")
    assert pg.locator(".pipenb-dashboard.jupyter-widgets-disconnected").count() == 1  # what the rule is about
    assert marks == [], marks
    pg.screenshot(path=str(SHOTS / "polish-kernel-gone.png"))

"""SPEC 7, 9, 10 and 13 in a real browser: the debugging loop in JupyterLab, light and dark theme.

A run pauses at a gate, is resumed without approval and fails with a long error (it must show whole, inside
its box); a second run is approved in the state editor and completes; its history shows a stage's diff and
forks a run from it; in the dark theme the failed run shows the same. Nothing may be wider than the output
area. Every wait is on what the page shows (see tests/lab_browser.py). Screenshots: ``test-artifacts/``.
"""

import pytest

from .. import lab_browser
from ..lab_browser import SHOTS, click, expect, open_notebook, resize, set_theme, wait_status, wait_until

lab, browser = lab_browser.lab, lab_browser.browser  # the module's fixtures: JupyterLab serving NOTEBOOKS, Chromium

DEBUG_CODE = """
from pipenb import Pause, Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import RunDashboard

def train(state):
    if not state.get("approved"):
        try:
            raise KeyError("approved")
        except KeyError as exc:
            raise PermissionError(
                "training on " + str(state["rows"]) + " rows needs a person's approval before it may spend "
                "the GPU budget of this project; open the State tab of the paused run, set the key approved "
                "to True, apply it, and press Resume to continue where it stopped FINALWORDS") from exc
    return {"model": {"coef": [0.5, 1.5], "kind": "<linear>"}, "score": 0.93}

debug_demo = Pipeline("debug-demo", stages=[
    Stage("load", steps=[Step("read", lambda s: {"rows": 1200, "source": "<s3://bucket/data.csv>"})]),
    Stage("clean", steps=[Step("drop", lambda s: {"rows": s["rows"] - 37, "dropped": 37})], label="Clean <rows>"),
    Stage("gate", steps=[Step("ask", lambda s: {"asked": True})], router=lambda s, r: Pause("train", timeout=600)),
    Stage("train", steps=[Step("fit", train)]),
])
dash = RunDashboard(PipelineFactory(debug_demo, registry=PipelineRegistry(default_timeout=600)))
dash
"""

NOTEBOOKS = {"debug.ipynb": [DEBUG_CODE]}

# Without chromium or playwright, tests/conftest.py skips this module with the reason (scripts/test.sh installs both).
pytestmark = pytest.mark.needs_chromium

# Every pipenb element that is not inside a scrolling box of its own must fit in the output area.
OVERFLOWS = """() => {
    const dash = document.querySelector('.pipenb-dashboard');
    const out = dash.closest('.jp-OutputArea-output');
    const box = out.getBoundingClientRect();
    const bad = [];
    if (out.scrollWidth > out.clientWidth + 1) bad.push('output area scrolls: ' + out.scrollWidth + ' > ' + out.clientWidth);
    // Only the parts meant to scroll (graph canvas, tables' scrollers, a traceback) may hold wider content.
    const scrolls = '.pipenb-graph-canvas, .pipenb-events-scroll, .pipenb-pick-scroll, pre';
    for (const el of [dash, ...dash.querySelectorAll('[class*="pipenb-"]')]) {
        if (!el.getClientRects().length || el.closest('svg') || (el.parentElement && el.parentElement.closest(scrolls))) continue;
        const r = el.getBoundingClientRect();
        if (r.width === 0) continue;
        if (r.right > box.right + 1 || r.left < box.left - 1) {
            bad.push(el.className.baseVal === undefined ? el.className : el.className.baseVal);
        }
    }
    return {bad, out: box.width, dash: dash.getBoundingClientRect().width};
}"""

# Where the last words of the error are, and whether the error box clips them.
ERROR_SEEN = """word => {
    const box = document.querySelector('.pipenb-dashboard .pipenb-error .pipenb-error-box');
    if (!box) return {found: false};
    const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    let node = null;
    while (walker.nextNode()) if (walker.currentNode.data.includes(word)) { node = walker.currentNode; break; }
    if (!node) return {found: false};
    const range = document.createRange();
    const at = node.data.indexOf(word);
    range.setStart(node, at); range.setEnd(node, at + word.length);
    const w = range.getBoundingClientRect(), b = box.getBoundingClientRect();
    const lines = Array.from(box.querySelectorAll('.pipenb-error-line'));
    return {found: true, inside: w.left >= b.left - 1 && w.right <= b.right + 1 && w.top >= b.top - 1 && w.bottom <= b.bottom + 1,
            fits: [box, ...lines].every(e => e.scrollWidth <= e.clientWidth + 1), text: box.innerText};
}"""


@pytest.fixture(scope="module")
def debug_page(browser, lab):
    with open_notebook(browser, lab, "debug.ipynb", viewport=(1280, 900)) as pg:
        errors = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.page_errors = errors
        yield pg


def assert_fits(pg, where: str) -> None:
    """Nothing of the dashboard is wider than the output area, once the page has drawn what it received."""
    wait_until(pg, f"() => ({OVERFLOWS})().bad.length === 0", what=f"{where}: inside the output area", report=OVERFLOWS)


def assert_error_whole(pg) -> str:
    """The failed run's error shows whole: its last words inside the box, no line clipped. Returns its text."""
    wait_until(pg, f"w => {{ const s = ({ERROR_SEEN})(w); return s.found && s.inside && s.fits; }}", "FINALWORDS",
               what="the whole error, its last words inside its box", report=ERROR_SEEN)
    return pg.evaluate(ERROR_SEEN, "FINALWORDS")["text"]


def shot(pg, name: str) -> None:
    """A screenshot of the whole dashboard: the page grows tall for it (same width, same layout)."""
    resize(pg, 1280, 2600)
    pg.locator(".pipenb-dashboard").screenshot(path=str(SHOTS / name))  # Playwright waits until it is stable
    resize(pg, 1280, 900)


def picked_run(pg, other_than: str | None = None) -> str:
    """The id of the run picked in the runs table (once it is another than ``other_than``)."""
    wait_until(pg, "f => { const r = document.querySelector('.pipenb-dashboard .pipenb-runs tr.pipenb-picked'); "
               "return r && r.dataset.id !== f; }", other_than, what=f"a run other than {other_than} picked")
    return pg.get_attribute(".pipenb-dashboard .pipenb-runs tr.pipenb-picked", "data-id")


def tab(pg, title: str) -> None:
    pg.click(f".pipenb-dashboard .pipenb-tabs .lm-TabBar-tab:has-text('{title}')")


def pick_history_entry(pg, seq: int) -> None:
    pg.click(f".pipenb-dashboard .pipenb-history tr.pipenb-pick-row[data-id='{seq}']")
    pg.wait_for_selector(".pipenb-dashboard .pipenb-record .pipenb-diff")


def test_debugging_loop_in_light_and_dark(debug_page):
    pg = debug_page
    state = pg.locator(".pipenb-dashboard .pipenb-state").first  # the state view (its tables are .pipenb-state too)
    set_theme(pg, "JupyterLab Light")
    assert_fits(pg, "new dashboard")
    # A run pauses at the gate; resumed without approval it fails with a long error (and its cause).
    click(pg, "run")
    wait_status(pg, "paused")
    first = picked_run(pg)
    click(pg, "resume")
    wait_status(pg, "failed")
    text = assert_error_whole(pg)
    assert "PermissionError" in text and "KeyError" in text
    expect(pg.locator(".pipenb-dashboard button.pipenb-btn-retry")).to_be_enabled()  # its own message: may come later
    assert_fits(pg, "failed run, light")
    shot(pg, "dashboard-failed-light.png")
    # A second run pauses at the gate: approve it in the state editor, resume, it completes.
    click(pg, "run")
    second = picked_run(pg, other_than=first)
    wait_status(pg, "paused")
    tab(pg, "State")
    pg.fill(".pipenb-dashboard .pipenb-edit-key input", "approved")
    pg.fill(".pipenb-dashboard .pipenb-edit-value input", "Tru e")
    pg.click(".pipenb-dashboard .pipenb-edit-apply")
    pg.wait_for_selector(".pipenb-edit-message :text('not a Python literal')")
    pg.fill(".pipenb-dashboard .pipenb-edit-value input", "True")
    pg.click(".pipenb-dashboard .pipenb-edit-apply")
    pg.wait_for_selector(".pipenb-edit-message :text('set approved = True')")
    expect(state).to_contain_text("approved")
    click(pg, "resume")
    wait_status(pg, "completed")
    expect(state).to_contain_text("0.93")
    # History: pick the "clean" entry, see its state and diff, fork from there.
    tab(pg, "History")
    pick_history_entry(pg, 1)
    record = pg.locator(".pipenb-dashboard .pipenb-record").first
    for word in ("1200", "1163", "dropped", "changed"):
        expect(record).to_contain_text(word)
    expect(record.locator("tr.pipenb-changed")).to_have_count(2)
    assert_fits(pg, "history, light")
    shot(pg, "dashboard-history-light.png")
    pg.click(".pipenb-dashboard button.pipenb-btn-fork")
    forked = picked_run(pg, other_than=second)
    assert forked not in (first, second)
    wait_status(pg, "prepared")
    wait_status(pg, "at clean")
    # The runs table lists the failed run and the fork (the completed run may have left the registry).
    wait_until(pg, "ids => { const have = Array.from(document.querySelectorAll("
               "'.pipenb-dashboard .pipenb-runs tr.pipenb-pick-row'), r => r.dataset.id); "
               "return ids.every(i => have.includes(i)); }", [first, forked], what=f"runs {first} and {forked} listed",
               report="() => Array.from(document.querySelectorAll('.pipenb-dashboard .pipenb-runs tr.pipenb-pick-row'),"
                      " r => r.dataset.id)")
    # Dark theme: the failed run again, nothing wider than the output area, the error whole.
    set_theme(pg, "JupyterLab Dark")
    pg.click(f".pipenb-dashboard .pipenb-runs tr.pipenb-pick-row[data-id='{first}']")
    wait_status(pg, "failed")
    assert_error_whole(pg)
    assert_fits(pg, "failed run, dark")
    shot(pg, "dashboard-failed-dark.png")
    tab(pg, "History")
    pick_history_entry(pg, 1)
    assert_fits(pg, "history, dark")
    shot(pg, "dashboard-history-dark.png")
    set_theme(pg, "JupyterLab Light")
    # (one known "TypeError ... create_view" per EventTable display is JupyterLab's, see the notes)
    assert [e for e in pg.page_errors if "create_view" not in e] == [], pg.page_errors

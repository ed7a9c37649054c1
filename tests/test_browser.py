"""SPEC 7 in a real browser: JupyterLab in headless Chromium, driven by Playwright.

A person opens a notebook with the dashboard, starts a run, pauses it, resumes
it, and sets a breakpoint by clicking a stage; in a second notebook, watches a
long sync step's progress and aborts it. Screenshots land in
``test-artifacts/`` (one is in the README).
"""

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "pipenb-test-token"

NOTEBOOK_CODE = """
import asyncio
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import RunDashboard

async def work(state):
    await asyncio.sleep(0.15)
    return {"n": state.get("n", 0) + 1}

stages = [Stage(f"s{i}", steps=[Step("work", work)], label=f"Stage <{i}>") for i in range(12)]
demo = Pipeline("browser-demo", stages=stages)
dash = RunDashboard(PipelineFactory(demo, registry=PipelineRegistry(default_timeout=600)))
dash
"""

PROGRESS_CODE = """
import time
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import RunDashboard

def read_rows(state, ctx):
    for k in range(300):  # 3 s of sync work on a pipenb thread, in small slices
        if ctx.signal.aborted:
            return {"rows": -1}
        time.sleep(0.01)
        ctx.progress(k + 1, 300, f"reading rows from <i>big.csv</i>, chunk {k + 1}")
    return {"rows": 300}

long_demo = Pipeline("long-demo", stages=[
    Stage("prep", steps=[Step("p", lambda s: {"prepped": 1})]),
    Stage("load", steps=[Step("read", read_rows)], label="Load rows"),
    Stage("report", steps=[Step("r", lambda s: {"reported": 1})]),
])
dash = RunDashboard(PipelineFactory(long_demo, registry=PipelineRegistry(default_timeout=600)))
dash
"""

WIDGETS_CODE = """
import asyncio
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import EventTable, RunDashboard, StageGraph

async def work(state):
    await asyncio.sleep(0.05)
    return {"n": state.get("n", 0) + 1}

many = Pipeline("widgets-demo", stages=[Stage(f"s{i}", steps=[Step("work", work)]) for i in range(8)])
factory = PipelineFactory(many, registry=PipelineRegistry(default_timeout=600))
ctx = factory.prepare_sync().unwrap()
table = EventTable(ctx)
graph = StageGraph(many, ctx)
display(table)
display(graph)
dash = RunDashboard(factory)
dash.show(ctx)
dash
"""
WIDGETS_RUN = "task = ctx.start()\nctx"

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

# Without chromium or playwright, tests/conftest.py skips this module with the reason (scripts/test.sh installs both).
pytestmark = pytest.mark.needs_chromium


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("lab")
    work = base / "work"
    work.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK_CODE.strip())]
    nbformat.write(nb, work / "dash.ipynb")
    nb.cells = [nbformat.v4.new_code_cell(PROGRESS_CODE.strip())]
    nbformat.write(nb, work / "progress.ipynb")
    nb.cells = [nbformat.v4.new_code_cell(WIDGETS_CODE.strip()), nbformat.v4.new_code_cell(WIDGETS_RUN)]
    nbformat.write(nb, work / "widgets.ipynb")
    nb.cells = [nbformat.v4.new_code_cell(DEBUG_CODE.strip())]
    nbformat.write(nb, work / "debug.ipynb")
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = free_port()
    # The kernel imports this checkout's pipenb (not whatever an editable install points at).
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=pythonpath, JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
           f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={base / 'settings'}", f"--LabApp.workspaces_dir={base / 'workspaces'}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(base / "lab.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("JupyterLab did not start: " + (base / "lab.log").read_text()[-2000:])
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:  # one per module: the sync API allows only one at a time
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ])
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_notebook(browser, lab, name: str, errors: list | None = None, viewport=(1300, 1800)):
    """A JupyterLab page with notebook ``name`` run and its dashboard drawn (page errors into ``errors``)."""
    pg = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    if errors is not None:
        pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        pg.on("console", lambda msg: errors.append(f"console.error: {msg.text}") if msg.type == "error" else None)
    try:
        pg.goto(f"{lab}/lab/tree/{name}?token={TOKEN}&reset")
        pg.wait_for_function("""name => {
            const app = window.jupyterapp; if (!app) return false;
            const nb = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === name);
            const k = nb && nb.sessionContext.session && nb.sessionContext.session.kernel;
            return k && k.status === 'idle' && k.connectionStatus === 'connected';
        }""", arg=name, timeout=60_000)
        pg.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        pg.wait_for_selector(".pipenb-dashboard .pipenb-node", timeout=60_000)
        yield pg
    except Exception:
        pg.screenshot(path=str(SHOTS / f"failure-{name}.png"), full_page=True)
        raise
    finally:
        pg.close()


@pytest.fixture(scope="module")
def page(browser, lab):
    with open_notebook(browser, lab, "dash.ipynb") as pg:
        yield pg


@pytest.fixture(scope="module")
def progress_page(browser, lab):
    with open_notebook(browser, lab, "progress.ipynb") as pg:
        yield pg


@pytest.fixture(scope="module")
def debug_page(browser, lab):
    with open_notebook(browser, lab, "debug.ipynb", viewport=(1280, 900)) as pg:
        errors = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.page_errors = errors
        yield pg


def status_text(pg) -> str:
    return pg.inner_text(".pipenb-dashboard .pipenb-status")


def wait_status(pg, word: str, timeout=30_000) -> None:
    pg.wait_for_function(
        "w => { const el = document.querySelector('.pipenb-dashboard .pipenb-status'); "
        "return el && el.innerText.includes(w); }", arg=word, timeout=timeout)


def click(pg, name: str) -> None:
    pg.click(f".pipenb-dashboard button.pipenb-btn-{name}")


def test_run_pause_resume_from_the_browser(page):
    pg = page
    assert pg.is_disabled("button.pipenb-btn-pause") and pg.is_disabled("button.pipenb-btn-resume")
    click(pg, "run")
    wait_status(pg, "running")
    pg.wait_for_selector(".pipenb-node.pipenb-status-success", timeout=20_000)
    click(pg, "pause")
    wait_status(pg, "paused")
    pg.wait_for_selector(".pipenb-node.pipenb-status-paused", timeout=10_000)
    pg.wait_for_selector('.pipenb-event-table tr[data-event="pipeline:paused"]', timeout=10_000)
    paused_at = pg.get_attribute(".pipenb-node.pipenb-status-paused", "data-address")
    assert paused_at in status_text(pg)
    assert not pg.is_disabled("button.pipenb-btn-resume") and pg.is_disabled("button.pipenb-btn-pause")
    # User labels reach the page as text, never as markup.
    assert pg.locator(".pipenb-dashboard svg text", has_text="Stage <3>").count() >= 1
    pg.locator(".pipenb-dashboard").screenshot(path=str(SHOTS / "dashboard-paused.png"))
    click(pg, "resume")
    wait_status(pg, "completed")
    pg.wait_for_function("() => document.querySelectorAll('.pipenb-node.pipenb-status-success').length === 12",
                         timeout=20_000)
    pg.locator(".pipenb-dashboard").screenshot(path=str(SHOTS / "dashboard-completed.png"))


def test_clicking_a_stage_sets_a_breakpoint_the_next_run_stops_before(page):
    pg = page
    pg.click('.pipenb-dashboard [id="pipenb-stage-s4"]')
    pg.wait_for_selector('.pipenb-dashboard [id="pipenb-stage-s4"].pipenb-breakpoint', timeout=10_000)
    click(pg, "run")
    wait_status(pg, "paused", timeout=30_000)
    assert "at s4" in status_text(pg)
    pg.wait_for_selector('.pipenb-dashboard [id="pipenb-stage-s4"].pipenb-status-paused', timeout=10_000)
    rows = pg.locator('.pipenb-event-table tr[data-event="pipeline:paused"]')
    assert "breakpoint" in rows.last.inner_text()
    pg.locator(".pipenb-dashboard").screenshot(path=str(SHOTS / "dashboard-breakpoint.png"))


def test_a_long_sync_step_shows_live_progress_and_aborts_from_the_browser(progress_page):
    pg = progress_page
    bar = '.pipenb-dashboard .pipenb-progress[data-address="load"]'
    click(pg, "run")
    wait_status(pg, "running")
    pg.wait_for_selector('.pipenb-dashboard [id="pipenb-stage-load"].pipenb-status-running', timeout=10_000)
    pg.wait_for_selector(bar + '[data-done]:not([data-done=""])', timeout=10_000)
    done = float(pg.get_attribute(bar, "data-done"))
    width = float(pg.get_attribute(bar + " rect.pipenb-progress-fill", "width"))
    counts = pg.inner_text(".pipenb-event-counts")
    pg.locator(".pipenb-dashboard").screenshot(path=str(SHOTS / "dashboard-progress-1.png"))
    # The kernel's loop is free while the step runs on its thread: the bar moves, the table goes on.
    pg.wait_for_function("""([sel, done, width]) => {
        const g = document.querySelector(sel); if (!g) return false;
        const w = parseFloat(g.querySelector("rect.pipenb-progress-fill").getAttribute("width"));
        return parseFloat(g.dataset.done) > done && w > width;
    }""", arg=[bar, done, width], timeout=5_000)
    pg.wait_for_function("c => document.querySelector('.pipenb-event-counts').innerText !== c",
                         arg=counts, timeout=5_000)
    message = pg.inner_text(bar + " .pipenb-progress-message")
    assert "reading rows from <i>big.csv</i>, chunk" in message  # user text shown as text
    assert pg.locator(bar + " i").count() == 0
    progress_rows = pg.locator('.pipenb-event-table tr[data-event="step:progress"]')
    assert progress_rows.count() == 1  # one live row for the step, however many reports
    assert "/300 — reading rows" in progress_rows.first.inner_text()
    pg.locator(".pipenb-dashboard").screenshot(path=str(SHOTS / "dashboard-progress-2.png"))
    assert "running" in status_text(pg)
    clicked = time.monotonic()
    click(pg, "abort")
    wait_status(pg, "aborted", timeout=1_000)
    assert time.monotonic() - clicked < 1.0
    pg.wait_for_selector(bar, state="detached", timeout=2_000)
    assert pg.get_attribute('.pipenb-dashboard [id="pipenb-stage-load"]', "data-status") != "success"
    state = pg.inner_text(".pipenb-dashboard .pipenb-state")
    assert "prepped" in state and "rows" not in state  # the stage was not committed
    assert not pg.is_disabled("button.pipenb-btn-resume")
    pg.locator(".pipenb-dashboard").screenshot(path=str(SHOTS / "dashboard-aborted.png"))


def test_widgets_and_a_run_leave_no_error_in_the_browser_console(browser, lab):
    """An EventTable, a StageGraph, a dashboard and a RunContext's panel, through a whole run: no page error
    and no console error (each EventTable display used to log ``TypeError ... create_view``)."""
    errors: list = []
    with open_notebook(browser, lab, "widgets.ipynb", errors) as pg:
        pg.wait_for_selector(".pipenb-run-panel .pipenb-node", timeout=30_000)
        pg.wait_for_function("() => document.querySelectorAll('.pipenb-node.pipenb-status-success').length >= 24",
                             timeout=30_000)  # graph, dashboard and panel: 8 stages each
        pg.wait_for_selector('.pipenb-event-table tr[data-event="pipeline:success"]', timeout=10_000)
        pg.wait_for_timeout(500)  # late errors (view teardown, layout) land too
        assert pg.locator(".pipenb-event-table").count() == 2  # the table and the dashboard's
        pg.screenshot(path=str(SHOTS / "widgets-no-errors.png"), full_page=True)
    assert not errors, errors


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


def set_theme(pg, name: str) -> None:
    pg.evaluate("t => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", name)
    light = "true" if "Light" in name else "false"
    pg.wait_for_function("l => document.body.dataset.jpThemeLight === l", arg=light, timeout=20_000)
    pg.wait_for_timeout(400)  # the theme's stylesheet applies


def assert_fits(pg, where: str) -> None:
    report = pg.evaluate(OVERFLOWS)
    assert report["bad"] == [], f"{where}: wider than the output area ({report['out']} px): {report['bad']}"


def shot(pg, name: str) -> None:
    """A screenshot of the whole dashboard: the page grows tall for it (same width, same layout)."""
    pg.set_viewport_size({"width": 1280, "height": 2600})
    pg.wait_for_timeout(500)
    pg.locator(".pipenb-dashboard").screenshot(path=str(SHOTS / name))
    pg.set_viewport_size({"width": 1280, "height": 900})
    pg.wait_for_timeout(300)


def picked_run(pg) -> str:
    return pg.get_attribute(".pipenb-dashboard .pipenb-runs tr.pipenb-picked", "data-id")


def tab(pg, title: str) -> None:
    pg.click(f".pipenb-dashboard .pipenb-tabs .lm-TabBar-tab:has-text('{title}')")


def test_debugging_loop_in_light_and_dark(debug_page):
    pg = debug_page
    set_theme(pg, "JupyterLab Light")
    assert_fits(pg, "new dashboard")
    # A run pauses at the gate; resumed without approval it fails with a long error (and its cause).
    click(pg, "run")
    wait_status(pg, "paused")
    first = picked_run(pg)
    click(pg, "resume")
    wait_status(pg, "failed")
    pg.wait_for_selector(".pipenb-dashboard .pipenb-error .pipenb-error-box", timeout=10_000)
    seen = pg.evaluate(ERROR_SEEN, "FINALWORDS")
    assert seen["found"] and seen["inside"] and seen["fits"], seen
    assert "PermissionError" in seen["text"] and "KeyError" in seen["text"]
    assert not pg.is_disabled("button.pipenb-btn-retry")
    assert_fits(pg, "failed run, light")
    shot(pg, "dashboard-failed-light.png")
    # A second run pauses at the gate: approve it in the state editor, resume, it completes.
    click(pg, "run")
    pg.wait_for_function("f => { const r = document.querySelector('.pipenb-runs tr.pipenb-picked'); "
                         "return r && r.dataset.id !== f; }", arg=first, timeout=20_000)
    wait_status(pg, "paused")
    second = picked_run(pg)
    tab(pg, "State")
    pg.fill(".pipenb-dashboard .pipenb-edit-key input", "approved")
    pg.fill(".pipenb-dashboard .pipenb-edit-value input", "Tru e")
    pg.click(".pipenb-dashboard .pipenb-edit-apply")
    pg.wait_for_selector(".pipenb-edit-message :text('not a Python literal')", timeout=10_000)
    pg.fill(".pipenb-dashboard .pipenb-edit-value input", "True")
    pg.click(".pipenb-dashboard .pipenb-edit-apply")
    pg.wait_for_selector(".pipenb-edit-message :text('set approved = True')", timeout=10_000)
    assert "approved" in pg.inner_text(".pipenb-dashboard .pipenb-state")
    click(pg, "resume")
    wait_status(pg, "completed")
    assert "0.93" in pg.inner_text(".pipenb-dashboard .pipenb-state")
    # History: pick the "clean" entry, see its state and diff, fork from there.
    tab(pg, "History")
    pg.click(".pipenb-dashboard .pipenb-history tr.pipenb-pick-row[data-id='1']")
    pg.wait_for_selector(".pipenb-dashboard .pipenb-record .pipenb-diff", timeout=10_000)
    record = pg.inner_text(".pipenb-dashboard .pipenb-record")
    assert "1200" in record and "1163" in record and "dropped" in record and "changed" in record
    assert pg.locator(".pipenb-dashboard .pipenb-record tr.pipenb-changed").count() == 2
    assert_fits(pg, "history, light")
    shot(pg, "dashboard-history-light.png")
    pg.click(".pipenb-dashboard button.pipenb-btn-fork")
    pg.wait_for_function("s => { const r = document.querySelector('.pipenb-runs tr.pipenb-picked'); "
                         "return r && r.dataset.id !== s; }", arg=second, timeout=20_000)
    forked = picked_run(pg)
    assert forked not in (first, second)
    wait_status(pg, "prepared")
    assert "at clean" in status_text(pg)
    ids = pg.eval_on_selector_all(".pipenb-dashboard .pipenb-runs tr.pipenb-pick-row", "rs => rs.map(r => r.dataset.id)")
    assert {first, second, forked} <= set(ids) or {first, forked} <= set(ids)  # a completed run may leave the registry
    # Dark theme: the failed run again, nothing wider than the output area, the error whole.
    set_theme(pg, "JupyterLab Dark")
    pg.click(f".pipenb-dashboard .pipenb-runs tr.pipenb-pick-row[data-id='{first}']")
    wait_status(pg, "failed")
    pg.wait_for_function("() => document.querySelector('.pipenb-dashboard .pipenb-error .pipenb-error-box')", timeout=10_000)
    seen = pg.evaluate(ERROR_SEEN, "FINALWORDS")
    assert seen["found"] and seen["inside"] and seen["fits"], seen
    assert_fits(pg, "failed run, dark")
    shot(pg, "dashboard-failed-dark.png")
    tab(pg, "History")
    pg.click(".pipenb-dashboard .pipenb-history tr.pipenb-pick-row[data-id='1']")
    pg.wait_for_selector(".pipenb-dashboard .pipenb-record .pipenb-diff", timeout=10_000)
    assert_fits(pg, "history, dark")
    shot(pg, "dashboard-history-dark.png")
    set_theme(pg, "JupyterLab Light")
    # (one known "TypeError ... create_view" per EventTable display is JupyterLab's, see the notes)
    assert [e for e in pg.page_errors if "create_view" not in e] == [], pg.page_errors

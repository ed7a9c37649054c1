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
def open_notebook(browser, lab, name: str, errors: list | None = None):
    """A JupyterLab page with notebook ``name`` run and its dashboard drawn (page errors into ``errors``)."""
    pg = browser.new_page(viewport={"width": 1300, "height": 1800})
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

"""JupyterLab in headless Chromium for the browser tests (tests/test_browser*.py), and waits on what the page
shows. A test never waits for time: every wait is for something on the page (a text, a class, a button's
state, the kernel's status, the layout after a resize or a theme change); its timeout is only the bound after
which the test fails, with what the page showed.

A test module lists its notebooks in ``NOTEBOOKS = {"name.ipynb": [cell source, ...]}``; the ``lab``
fixture writes them into a temporary directory and serves it.
"""

from __future__ import annotations

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
WAIT = 30_000  # ms: the bound on any wait on the page (a loaded 2-core machine needs seconds for some)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, request):
    base = tmp_path_factory.mktemp("lab")
    work = base / "work"
    work.mkdir()
    for name, cells in request.module.NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(src.strip()) for src in cells]
        nbformat.write(nb, work / name)
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = free_port()
    # The kernel imports this checkout's pipenb (not whatever an editable install points at).
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=pythonpath, JUPYTER_CONFIG_DIR=str(base / "config"),
               JUPYTER_RUNTIME_DIR=str(base / "runtime"), JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
           f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={base / 'settings'}", f"--LabApp.workspaces_dir={base / 'workspaces'}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(base / "lab.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # poll until the server answers (a bound, not a pause: it goes on as soon as it does)
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start: " + (base / "lab.log").read_text()[-2000:]) from None
                time.sleep(0.1)
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


# The notebook panel of a path, and whether its kernel is idle and connected.
KERNEL_IDLE = """name => {
    const app = window.jupyterapp; if (!app) return false;
    const nb = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === name);
    const k = nb && nb.sessionContext.session && nb.sessionContext.session.kernel;
    return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
}"""


@contextlib.contextmanager
def open_notebook(browser, lab, name: str, errors: list | None = None, viewport=(1300, 1800)):
    """A JupyterLab page with notebook ``name`` run and its dashboard drawn (page errors into ``errors``)."""
    pg = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    pg.set_default_timeout(WAIT)
    if errors is not None:
        pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        pg.on("console", lambda msg: errors.append(f"console.error: {msg.text}") if msg.type == "error" else None)
    try:
        pg.goto(f"{lab}/lab/tree/{name}?token={TOKEN}&reset")
        pg.wait_for_function(KERNEL_IDLE, arg=name, timeout=60_000)
        pg.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        pg.wait_for_selector(".pipenb-dashboard .pipenb-node", timeout=60_000)
        # JupyterLab's loading splash covers the page until it has faded out and is removed.
        pg.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
        yield pg
    except BaseException:
        pg.screenshot(path=str(SHOTS / f"failure-{name}.png"), full_page=True)
        raise
    finally:
        pg.close()


def expect(target):
    """Playwright's ``expect`` (imported late: without playwright the browser tests are skipped, not broken)."""
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=WAIT)  # its own default is 5 s, short for a loaded machine
    return playwright_expect(target)


def wait_until(pg, js: str, arg=None, *, what: str, report: str | None = None, timeout: int = WAIT) -> None:
    """Wait until ``js(arg)`` is truthy in the page; past ``timeout`` ms fail with ``what`` and, if given,
    what ``report(arg)`` says about the page then."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        pg.wait_for_function(js, arg=arg, timeout=timeout)
    except PlaywrightTimeout:
        seen = pg.evaluate(report, arg) if report else None
        raise AssertionError(f"after {timeout / 1000:g} s, still not {what}" + (f": {seen}" if report else "")) from None


def next_frames(pg, n: int = 2) -> None:
    """Let the page draw ``n`` frames (what it does after a change it has already received: layout, paint)."""
    pg.evaluate("""n => new Promise(done => {
        const step = k => k ? requestAnimationFrame(() => step(k - 1)) : done();
        step(n);
    })""", n)


# Where the shell is after a theme change: the theme's name on the body, the shell shown again (JupyterLab hides
# it while the stylesheet changes and shows and re-fits it on the next frame), the splash it shows removed.
THEME_SHOWN = """t => document.body.dataset.jpThemeName === t && !window.jupyterapp.shell.isHidden
    && !document.getElementById('jupyterlab-splash')"""
THEME_REPORT = """() => ({theme: document.body.dataset.jpThemeName, shellHidden: window.jupyterapp.shell.isHidden,
    splash: !!document.getElementById('jupyterlab-splash')})"""


def set_theme(pg, name: str) -> None:
    """Switch JupyterLab's theme and wait until the page shows it (nothing to do when it already does:
    setting the same theme again reloads it, splash included, at a moment nothing on the page marks)."""
    if pg.evaluate("() => document.body.dataset.jpThemeName") == name:
        return
    pg.evaluate("t => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", name)
    wait_until(pg, THEME_SHOWN, name, what=f"showing theme {name!r}", report=THEME_REPORT)
    next_frames(pg)


# How far the notebook panel's bottom is from the window's (the status bar): the same at any window height
# once JupyterLab has re-fitted its panels to the window.
PANEL_GAP = "() => window.innerHeight - document.querySelector('.jp-NotebookPanel').getBoundingClientRect().bottom"


def resize(pg, width: int, height: int) -> None:
    """Resize the window and wait until JupyterLab has laid its panels out for the new size."""
    gap = pg.evaluate(PANEL_GAP)
    pg.set_viewport_size({"width": width, "height": height})
    wait_until(pg, f"""([h, gap]) => window.innerHeight === h && Math.abs(({PANEL_GAP})() - gap) < 1""",
               [height, gap], what=f"laid out for a {width}x{height} window",
               report=f"() => ({{height: window.innerHeight, gap: ({PANEL_GAP})()}})")
    next_frames(pg)


def status_text(pg) -> str:
    return pg.inner_text(".pipenb-dashboard .pipenb-status")


def wait_status(pg, word: str, timeout=WAIT) -> None:
    expect(pg.locator(".pipenb-dashboard .pipenb-status").first).to_contain_text(word, timeout=timeout, use_inner_text=True)


def button(pg, name: str):
    return pg.locator(f".pipenb-dashboard button.pipenb-btn-{name}")


def click(pg, name: str) -> None:
    """Click a dashboard button (Playwright waits until it is enabled)."""
    button(pg, name).click()

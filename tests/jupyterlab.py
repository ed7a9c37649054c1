"""JupyterLab in headless Chromium for the browser tests (facts in the test notes: no network, Debian's chromium).

``lab_server(work, base)`` serves the notebooks in ``work`` with private
config, runtime and settings folders under ``base``; ``launch(pw)`` starts
Chromium; ``open_lab_notebook(browser, url, name)`` opens a notebook and
waits until its kernel is idle and connected.
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

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "pipenb-test-token"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(work: pathlib.Path, base: pathlib.Path):
    """A JupyterLab server on 127.0.0.1 serving ``work``; yields its URL; stopped (its process group) after."""
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
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
    log_path = base / "lab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("JupyterLab did not start: " + log_path.read_text()[-2000:]) from None
                    time.sleep(0.1)
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


def launch(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_lab_notebook(browser, url: str, name: str, viewport=(1300, 1400)):
    """A page with notebook ``name`` open and its kernel idle and connected."""
    pg = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    pg.goto(f"{url}/lab/tree/{name}?token={TOKEN}&reset")
    pg.wait_for_function("""name => {
        const app = window.jupyterapp; if (!app) return false;
        const nb = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === name);
        const k = nb && nb.sessionContext.session && nb.sessionContext.session.kernel;
        return k && k.status === 'idle' && k.connectionStatus === 'connected';
    }""", arg=name, timeout=60_000)
    return pg

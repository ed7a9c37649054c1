"""SPEC 13 as a person meets it in JupyterLab (headless Chromium): Run All through a ``run_sync`` cell, a
Dask cell and an awaited run: every cell runs, in order, and the dashboard follows. Waits are on what the
page shows. Screenshots in ``test-artifacts/``. (The stop button is tested with the kernel's own client in
tests/e2e/test_kernel_interrupt.py: jupyter_server interrupts a kernel the same way, with SIGINT.)
"""

import pytest

from .. import lab_browser
from ..lab_browser import SHOTS, open_notebook

lab, browser = lab_browser.lab, lab_browser.browser  # the module's fixtures: JupyterLab serving NOTEBOOKS, Chromium

pytestmark = pytest.mark.needs_chromium

CELLS = [
    """
import time
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import RunDashboard

def crunch(state):
    print("crunching", flush=True)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:   # pure Python on the kernel's thread
        pass
    return {"crunched": True}

pipe = Pipeline("lab-sync", stages=[Stage("load", steps=[Step("l", lambda s: {"rows": 3})]),
                                    Stage("crunch", steps=[Step("c", crunch)])])
factory = PipelineFactory(pipe, registry=PipelineRegistry(default_timeout=600))
dash = RunDashboard(factory)
dash
""",
    "ctx = factory.prepare_sync().unwrap()\ndash.show(ctx)\nprint('sync run:', ctx.run_sync().unwrap().status)",
    "print('after the sync run')",
    "from distributed import Client\nclient = Client(processes=False, dashboard_address=None)\n"
    "print('dask says', client.submit(lambda x: x * 2, 21).result())\nclient.close()",
    "print('every cell ran')",
    "slow = (await factory.prepare()).unwrap()\ndash.show(slow)\nprint(sorted((await slow.run()).unwrap().state))",
]


def output_of(pg, i: int, text: str, timeout: int = 60_000) -> None:
    pg.wait_for_function(
        """([i, text]) => { const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');
            const out = cells[i] && cells[i].querySelector('.jp-OutputArea');
            return out && out.innerText.includes(text); }""", arg=[i, text], timeout=timeout)


NOTEBOOKS = {"sync.ipynb": CELLS}


def test_run_all_through_sync_twins_and_dask_in_jupyterlab(browser, lab):
    pytest.importorskip("distributed")
    errors: list[str] = []
    with open_notebook(browser, lab, "sync.ipynb", errors=errors, viewport=(1300, 1400)) as pg:  # runs all cells
        output_of(pg, 1, "sync run: completed")
        output_of(pg, 2, "after the sync run")
        output_of(pg, 3, "dask says 42", timeout=120_000)
        output_of(pg, 4, "every cell ran")
        output_of(pg, 5, "crunched")
        pg.wait_for_selector(".pipenb-dashboard .pipenb-status:has-text('completed')")
        pg.screenshot(path=str(SHOTS / "kernel-run-all.png"), full_page=True)
    assert not [e for e in errors if "pageerror" in e], errors

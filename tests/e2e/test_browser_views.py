"""Only the view on the page draws: JupyterLab keeps the views a snapshot refresh replaced.

The dashboard's output is updated in place (``update_display_data``) each time its run pauses or ends
(SPEC 12); JupyterLab 4.6 (jupyterlab_widgets 3) then renders the widget again and leaves the previous view
alive, off the page. A run that pauses twice and ends leaves four copies of the dashboard; a model change
(a breakpoint set, an event filter picked) must be drawn by one stage graph and one event table only, the
ones on the page. Copies off the page are found with Chromium's DevTools protocol (Runtime.queryObjects:
every element object the page holds, on the page or not).
"""

import pytest

from .. import lab_browser
from ..conftest import wait_for
from ..lab_browser import click, expect, open_notebook, wait_status

lab, browser = lab_browser.lab, lab_browser.browser  # the module's fixtures: JupyterLab serving NOTEBOOKS, Chromium

VIEWS_CODE = """
import asyncio
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import RunDashboard

async def work(state):
    await asyncio.sleep(0.05)
    return {"n": state.get("n", 0) + 1}

steps = Pipeline("views-demo", stages=[Stage(f"s{i}", steps=[Step("work", work)]) for i in range(5)])
dash = RunDashboard(PipelineFactory(steps, registry=PipelineRegistry(default_timeout=600)))
dash.graph.set_breakpoints(["s1", "s3"])
dash
"""

NOTEBOOKS = {"views.ipynb": [VIEWS_CODE]}

pytestmark = pytest.mark.needs_chromium


def elements(pg, test_js: str) -> list[bool]:
    """For each element the page holds (on the page or left off it) for which ``test_js`` (a function of
    the element) is true: whether it is on the page."""
    cdp = pg.context.new_cdp_session(pg)
    try:
        proto = cdp.send("Runtime.evaluate", {"expression": "HTMLElement.prototype"})["result"]["objectId"]
        held = cdp.send("Runtime.queryObjects", {"prototypeObjectId": proto})["objects"]["objectId"]
        found = cdp.send(
            "Runtime.callFunctionOn",
            {
                "objectId": held,
                # The objects include the element prototypes themselves, which throw when read.
                "functionDeclaration": f"""function () {{ const test = {test_js};
                    return this.filter(e => {{ try {{ return test(e); }} catch (_) {{ return false; }} }})
                        .map(e => e.isConnected); }}""",
                "returnByValue": True,
            },
        )
        assert "exceptionDetails" not in found, found["exceptionDetails"]
        return found["result"]["value"]
    finally:
        cdp.detach()


DASHBOARDS = "e => e.classList.contains('pipenb-dashboard')"
# A stage graph showing the breakpoint on s4 (set after the copies were made).
GRAPHS_WITH_S4 = """e => e.classList.contains('pipenb-graph-root')
    && !!e.querySelector('[id="pipenb-stage-s4"].pipenb-breakpoint')"""
# An event table listing only stage:success rows (the filter picked after the copies were made).
TABLES_FILTERED = """e => e.classList.contains('pipenb-events-root')
    && e.querySelectorAll('tr[data-event]').length > 0
    && Array.from(e.querySelectorAll('tr[data-event]')).every(r => r.dataset.event === 'stage:success')"""


def test_a_model_change_is_drawn_only_by_the_view_on_the_page(browser, lab):
    errors: list[str] = []
    with open_notebook(browser, lab, "views.ipynb", errors=errors, viewport=(1300, 1400)) as pg:
        # Two pauses and the end of the run: three snapshot refreshes, three more renders of the dashboard.
        click(pg, "run")
        wait_status(pg, "paused")
        for done in (2, 3):
            wait_for(lambda: len(elements(pg, DASHBOARDS)) >= done, f"dashboard rendered {done} times", timeout=30)
            click(pg, "resume")
            wait_status(pg, "paused" if done == 2 else "completed")
        copies = wait_for(lambda: len(elements(pg, DASHBOARDS)) >= 4 and elements(pg, DASHBOARDS), "4 renders", 30)
        assert sorted(copies) == [False, False, False, True]  # JupyterLab keeps the replaced ones, off the page

        # Model changes now: a breakpoint set on the graph, an event filter picked in the table.
        pg.click('.pipenb-dashboard [id="pipenb-stage-s4"]')
        pg.wait_for_selector('.pipenb-dashboard [id="pipenb-stage-s4"].pipenb-breakpoint')
        pg.locator(".pipenb-dashboard select.pipenb-event-filter").first.select_option("stage:success")
        expect(pg.locator('.pipenb-dashboard .pipenb-events tr[data-event="pipeline:success"]')).to_have_count(0)
        expect(pg.locator('.pipenb-dashboard .pipenb-events tr[data-event="stage:success"]').first).to_be_visible()

        assert elements(pg, GRAPHS_WITH_S4) == [True]  # drawn by the graph on the page only
        assert elements(pg, TABLES_FILTERED) == [True]
    assert not [e for e in errors if "pageerror" in e], errors

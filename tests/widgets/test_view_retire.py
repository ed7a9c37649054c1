"""Every pipenb view stops once JupyterLab has left it off the page.

JupyterLab renders a widget output again on each snapshot refresh (``update_display_data``) and never
disposes the view it replaces (jupyterlab_widgets' WidgetRenderer.renderModel empties its node and adds a new
view); the old one, off the page, went on drawing every model change. Each view file carries the same small
``retireWhenGone`` (anywidget loads each ESM file on its own: they cannot import a shared module) and routes
its model listeners and timers through it. The browser test is tests/e2e/test_browser_views.py.
"""

import json
import pathlib
import re
import shutil
import subprocess

import pytest

WIDGETS = pathlib.Path(__file__).resolve().parents[2] / "pipenb" / "widgets"
VIEWS = sorted(WIDGETS.rglob("*.js"))
BLOCK = re.compile(r"// >>> retire-when-gone.*?// <<< retire-when-gone\n", re.S)


def helper(path: pathlib.Path) -> str:
    found = BLOCK.findall(path.read_text())
    assert len(found) == 1, f"{path.relative_to(WIDGETS)}: {len(found)} retire-when-gone blocks, want 1"
    return found[0]


def test_every_view_carries_the_same_helper_and_uses_it():
    assert len(VIEWS) >= 5  # stage_graph, event_table, replay, pick_table, kernel_watch
    first = helper(VIEWS[0])
    for path in VIEWS:
        assert helper(path) == first, f"{path.relative_to(WIDGETS)}: retireWhenGone differs from {VIEWS[0].name}"
        text = path.read_text()
        # The cleanup anywidget calls and the one run when the view is found gone are the same, run once.
        assert "const life = retireWhenGone(el, dispose);" in text, path.name
        assert "return life.retire;" in text, path.name
        # Every model listener is guarded: a model change is where a left-behind view finds out.
        for line in text.splitlines():
            if "model.on(" in line:
                assert "handlers" in line or "onComm" in line, f"{path.name}: unguarded listener: {line.strip()}"
        assert "life.guard(" in text, path.name


# Drives the helper with a stand-in element: on the page or not, inside an output area or not.
SCENARIOS = """
const el = { isConnected: false, inOutput: false, closest() { return this.inOutput ? {} : null; } };
let cleaned = 0, now = 1000;
Date.now = () => now;
const life = retireWhenGone(el, () => { cleaned += 1; }, 5000);
const seen = [];
const step = (what) => seen.push([what, life.alive(), cleaned]);
step("rendered, not on the page yet");
el.isConnected = true; step("on the page");
el.isConnected = false; el.inOutput = true; step("cell detached by a windowed notebook");
el.isConnected = true; el.inOutput = false; step("scrolled back");
el.isConnected = false; step("replaced by a new view");
step("asked again");
life.retire(); step("anywidget's cleanup after the retirement");
const never = retireWhenGone(el, () => { cleaned += 10; }, 5000);
now += 1000; seen.push(["never shown, 1 s", never.alive(), cleaned]);
now += 5000; seen.push(["never shown, 6 s", never.alive(), cleaned]);
let calls = 0;
const guarded = life.guard(() => { calls += 1; });
guarded(); seen.push(["guarded handler of a retired view", calls, cleaned]);
console.log(JSON.stringify(seen));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the view's JavaScript")
def test_a_view_retires_once_after_it_left_the_page_and_not_before():
    script = helper(VIEWS[0]) + SCENARIOS
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [
        ["rendered, not on the page yet", True, 0],  # the first render: not yet attached
        ["on the page", True, 0],
        ["cell detached by a windowed notebook", True, 0],  # it comes back: keep it
        ["scrolled back", True, 0],
        ["replaced by a new view", False, 1],  # cleaned up, once
        ["asked again", False, 1],
        ["anywidget's cleanup after the retirement", False, 1],
        ["never shown, 1 s", True, 1],
        ["never shown, 6 s", False, 11],  # past the grace period
        ["guarded handler of a retired view", 0, 11],
    ]

"""The stage graph in a real browser (issue #19 points 2-3, issue #20's graph findings), light and dark theme.

JupyterLab in headless Chromium shows StageGraphs of 10, 34 and 100 stages, one of 34 in a 424 px box (the
dashboard's graph column), a looping run's marks (visit counts, edges taken, an undeclared jump, a stale stage,
a conditional breakpoint), an aborted stage and a running stage's progress. Measured on the page: every
drawing fits its output's width with labels still readable, the zoom buttons change the scale, the aborted
colour is not the failed one, the progress message sits on no edge. Screenshots: ``test-artifacts/graph-*.png``.
"""

import contextlib

import pytest

from .. import lab_browser
from ..lab_browser import KERNEL_IDLE, SHOTS, TOKEN, WAIT, set_theme, wait_until

lab, browser = lab_browser.lab, lab_browser.browser  # the module's fixtures: JupyterLab serving NOTEBOOKS, Chromium

SIZES = """
import asyncio
import ipywidgets as widgets
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import StageGraph

def noop(state):
    return None

def chain(n):
    # Every third stage's router may jump back two stages (dashed edges on the right), labels of various widths.
    return Pipeline(f"chain{n}", stages=[
        Stage(f"stage_{i}", steps=[Step("s", noop)], label=f"Stage {i} " + "x" * (i % 7),
              routes=[f"stage_{i - 2}"] if i % 3 == 2 else (), router=(lambda s, r: None) if i % 3 == 2 else None)
        for i in range(n)])

graphs = {}
for n in (10, 34, 100):
    graphs[n] = StageGraph(chain(n))
    graphs[n].add_class(f"g{n}")
    display(graphs[n])
boxed = StageGraph(chain(34))
boxed.add_class("g34box")
widgets.Box([boxed], layout=widgets.Layout(width="424px", border="1px solid gray"))
"""

MARKS = """
import asyncio
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step
from pipenb.widgets import StageGraph

def bump(key):
    def action(state):
        return {key: state.get(key, 0) + 1}
    return action

def loop(b_action=None):
    return Pipeline("loop", stages=[
        Stage("a", steps=[Step("s", bump("a"))], label="Load <data>"),
        Stage("b", steps=[Step("s", b_action or bump("b"))], router=lambda s, r: "a" if s["b"] < 3 else None,
              routes=["a"]),
        Stage("c", steps=[Step("s", bump("c"))], router=lambda s, r: "b" if s["c"] == 1 else None),
        Stage("d", steps=[Step("s", bump("d"))]),
    ])

registry = PipelineRegistry(default_timeout=600)
ctx = (await PipelineFactory(loop(), registry=registry).prepare()).unwrap()
ctx.breakpoints.add("d")
await ctx.run()   # a b a b a b c b c, paused before d
def twice(state):
    return {"b": state.get("b", 0) + 2}
def loss_is_high(state):
    return state.get("loss", 0) > 1
(await PipelineFactory(loop(twice), registry=registry).resume(ctx.run_id)).unwrap()   # b's code changed: stale
ctx.breakpoints.add("c", when=loss_is_high)
looped = StageGraph(loop(), ctx)
looped.add_class("gloop")
looped
"""

ABORTED = """
started = asyncio.Event()

async def forever(state):
    started.set()
    await asyncio.sleep(600)

def boom(state):
    raise ValueError("no")

stopped = Pipeline("stopped", stages=[Stage("first", steps=[Step("s", bump("n"))]),
                                      Stage("waits", steps=[Step("s", forever)]), Stage("never", steps=[Step("s", noop)])])
actx = (await PipelineFactory(stopped, registry=registry).prepare()).unwrap()
aborted = StageGraph(stopped, actx)
aborted.add_class("gabort")
task = actx.start()
await started.wait()
actx.abort("enough")
await task
failing = Pipeline("failing", stages=[Stage("first", steps=[Step("s", bump("n"))]), Stage("waits", steps=[Step("s", boom)])])
fctx = (await PipelineFactory(failing, registry=registry).prepare()).unwrap()
await fctx.run()
failed = StageGraph(failing, fctx)
failed.add_class("gfail")
display(aborted)
failed
"""

PROGRESS = """
async def report(state, ctx):
    ctx.progress(3, 10, "reading rows from <i>big.csv</i>, chunk 3 of a very long file name that goes on and on")
    await asyncio.sleep(600)   # the kernel goes with the server at the end of the test

progressing = Pipeline("progressing", stages=[Stage(f"p{i}", steps=[Step("s", report if i == 1 else noop)])
                                               for i in range(4)])
pctx = (await PipelineFactory(progressing, registry=registry).prepare()).unwrap()
busy = StageGraph(progressing, pctx)
busy.add_class("gprogress")
ptask = pctx.start()
busy
"""

LIVE = """
async def spin(state):
    await asyncio.sleep(0.1)
    return {"n": state.get("n", 0) + 1}

# Loops until the person clicks a stage (a breakpoint): the run pauses there.
spinning = Pipeline("spinning", stages=[
    Stage("a", steps=[Step("s", spin)]),
    Stage("b", steps=[Step("s", spin)], router=lambda s, r: "a", routes=["a"]),
    Stage("c", steps=[Step("s", noop)]),
], max_transitions=1_000_000)
sctx = (await PipelineFactory(spinning, registry=registry).prepare()).unwrap()
live = StageGraph(spinning, sctx)
live.add_class("glive")
stask = sctx.start()
live
"""

NOTEBOOKS = {"graphs.ipynb": [SIZES, MARKS, ABORTED, PROGRESS, LIVE]}

pytestmark = pytest.mark.needs_chromium

# A graph's drawing as the page shows it: its width and its output's, the scale, and the rendered size of a
# stage label's font (font size in the SVG's units times the drawing's scale on screen).
MEASURE = """cls => {
    const root = document.querySelector('.' + cls);
    const svg = root && root.querySelector('.pipenb-graph-canvas svg');
    if (!svg) return null;
    const out = root.closest('.jp-OutputArea-output').getBoundingClientRect();
    const canvas = root.querySelector('.pipenb-graph-canvas');
    const box = (root.parentElement.closest('.widget-box') || root).getBoundingClientRect();
    const text = svg.querySelector('.pipenb-node text:not(.visits)');
    const size = parseFloat(text.getAttribute('font-size') || getComputedStyle(text).fontSize);
    const ctm = text.getScreenCTM();
    return {svg: svg.getBoundingClientRect().width, out: out.width, box: box.width,
            canvas: canvas.getBoundingClientRect().width, right: svg.getBoundingClientRect().right,
            outRight: out.right, scale: parseFloat(canvas.dataset.scale || 'NaN'), zoom: canvas.dataset.zoom,
            font: size * Math.hypot(ctm.a, ctm.b), scrollW: canvas.scrollWidth, clientW: canvas.clientWidth};
}"""


@contextlib.contextmanager
def graphs_page(browser, lab):
    pg = browser.new_page(viewport={"width": 1100, "height": 1400})
    pg.set_default_timeout(WAIT)
    errors: list = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        pg.goto(f"{lab}/lab/tree/graphs.ipynb?token={TOKEN}&reset")
        pg.wait_for_function(KERNEL_IDLE, arg="graphs.ipynb", timeout=60_000)
        pg.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        pg.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
        for cls in ("g10", "g34", "g100", "g34box", "gloop", "gabort", "gfail", "gprogress", "glive"):
            pg.wait_for_selector(f".{cls} .pipenb-node", timeout=90_000)
        pg.page_errors = errors
        yield pg
    except BaseException:
        pg.screenshot(path=str(SHOTS / "failure-graphs.png"), full_page=True)
        raise
    finally:
        pg.close()


@pytest.fixture(scope="module")
def page(browser, lab):
    with graphs_page(browser, lab) as pg:
        yield pg


def measure(pg, cls: str) -> dict:
    wait_until(
        pg,
        f"c => {{ const m = ({MEASURE})(c); return m && m.svg > 0 && m.zoom === 'width'; }}",
        cls,
        what=f"{cls} drawn and fitted",
        report=MEASURE,
    )
    return pg.evaluate(MEASURE, cls)


def shot(pg, cls: str, name: str) -> None:
    pg.locator("." + cls).scroll_into_view_if_needed()
    pg.locator("." + cls).screenshot(path=str(SHOTS / name))


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_graphs_of_10_34_and_100_stages_fit_their_output_with_readable_labels(page, theme):
    pg = page
    set_theme(pg, theme)
    dark = "dark" if "Dark" in theme else "light"
    for cls in ("g10", "g34", "g100", "g34box"):
        m = measure(pg, cls)
        # Issue #20: 34 stages drew 5,975 px wide in a 424 px box.
        assert m["svg"] <= m["canvas"] + 1 and m["right"] <= m["outRight"] + 1, (cls, m)
        assert m["scrollW"] <= m["clientW"] + 1, (cls, m)  # nothing to scroll sideways
        assert m["font"] >= 10, (cls, m)  # a stage's label still reads (11 pt at 1:1)
        shot(pg, cls, f"graph-{cls}-{dark}.png")
    assert measure(pg, "g34box")["box"] <= 426


def test_zoom_buttons_change_the_scale_and_fit_brings_it_back(page):
    pg = page
    set_theme(pg, "JupyterLab Light")
    root = ".g34box"
    before = measure(pg, "g34box")
    pg.click(f"{root} .pipenb-zoom-in")
    wait_until(
        pg,
        "([c, s]) => parseFloat(document.querySelector(c + ' .pipenb-graph-canvas').dataset.scale) > s",
        [root, before["scale"]],
        what="zoomed in",
    )
    zoomed = pg.evaluate(MEASURE, "g34box")
    assert zoomed["zoom"] == "manual" and zoomed["svg"] > before["svg"] * 1.2
    assert pg.inner_text(f"{root} .pipenb-zoom-scale") == f"{round(zoomed['scale'] * 100)}%"
    pg.click(f"{root} .pipenb-zoom-out")
    pg.click(f"{root} .pipenb-zoom-out")
    wait_until(
        pg,
        "([c, s]) => parseFloat(document.querySelector(c + ' .pipenb-graph-canvas').dataset.scale) < s",
        [root, before["scale"]],
        what="zoomed out",
    )
    assert pg.evaluate(MEASURE, "g34box")["svg"] < before["svg"]
    pg.click(f"{root} .pipenb-zoom-all")  # the whole drawing in the box's height
    wait_until(
        pg,
        "c => document.querySelector(c + ' .pipenb-graph-canvas').dataset.zoom === 'all'",
        root,
        what="the whole graph in view",
    )
    canvas = pg.locator(f"{root} .pipenb-graph-canvas")
    assert canvas.evaluate("c => c.scrollHeight <= c.clientHeight + 1 && c.scrollWidth <= c.clientWidth + 1")
    pg.click(f"{root} .pipenb-zoom-fit")
    after = measure(pg, "g34box")
    assert abs(after["scale"] - before["scale"]) < 0.005 and after["svg"] <= after["canvas"] + 1


def test_dragging_pans_a_zoomed_graph_and_is_no_click(page):
    pg = page
    set_theme(pg, "JupyterLab Light")
    root = ".g34box"
    measure(pg, "g34box")
    for _ in range(4):
        pg.click(f"{root} .pipenb-zoom-in")
    canvas = pg.locator(f"{root} .pipenb-graph-canvas")
    canvas.scroll_into_view_if_needed()
    wait_until(
        pg,
        "c => { const e = document.querySelector(c + ' .pipenb-graph-canvas'); "
        "return e.scrollWidth > e.clientWidth && e.scrollHeight > e.clientHeight; }",
        root,
        what="zoomed in past the box",
    )
    canvas.evaluate("c => { c.scrollLeft = 0; c.scrollTop = 0; }")
    start = canvas.evaluate("c => [c.scrollLeft, c.scrollTop]")
    node = pg.locator(f'{root} [id="pipenb-stage-stage_0"]')
    node.scroll_into_view_if_needed()
    box = node.bounding_box()  # the drag starts on a stage: a drag is never a click on it
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    pg.mouse.move(x, y)
    pg.mouse.down()
    pg.mouse.move(x - 60, y - 50, steps=6)
    pg.mouse.up()
    end = canvas.evaluate("c => [c.scrollLeft, c.scrollTop]")
    sizes = canvas.evaluate("c => [c.scrollWidth, c.clientWidth, c.scrollHeight, c.clientHeight, c.dataset.scale]")
    assert end[0] > start[0] and end[1] > start[1], (start, end, sizes)  # dragged up-left: the view moved
    assert "pipenb-breakpoint" not in (node.get_attribute("class") or "")
    pg.click(f"{root} .pipenb-zoom-fit")
    measure(pg, "g34box")


def test_a_click_still_toggles_a_breakpoint(page):
    pg = page
    node = '.g10 [id="pipenb-stage-stage_4"]'
    pg.click(node)
    pg.wait_for_selector(node + ".pipenb-breakpoint")
    pg.click(node)
    pg.wait_for_selector(node + ":not(.pipenb-breakpoint)")


MARKS_SEEN = """() => {
    const root = document.querySelector('.gloop');
    const text = el => Array.from(el.querySelectorAll('text')).map(t => t.textContent).join(' ');
    const node = a => root.querySelector('[id="pipenb-stage-' + a + '"]');
    const outline = node('b') && Array.from(node('b').querySelectorAll('path, polygon, rect'))
        .find(p => p.getAttribute('fill') === 'none');
    const shape = node('c') && node('c').querySelector('path, polygon, rect');
    return {
        visits: ['a', 'b', 'c', 'd'].map(a => { const v = node(a) && node(a).querySelector('text.visits');
                                                return v ? v.textContent : ''; }),
        taken: Array.from(root.querySelectorAll('.edge.taken')).map(text),
        undeclared: Array.from(root.querySelectorAll('.edge.undeclared')).map(text),
        staleStroke: outline ? getComputedStyle(outline).stroke : null,
        dashed: shape ? getComputedStyle(shape).strokeDasharray : null,
        legend: root.querySelector('.pipenb-graph-legend').innerText,
    };
}"""


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_a_looping_runs_marks_show_on_its_graph(page, theme):
    pg = page
    set_theme(pg, theme)
    wait_until(pg, "() => document.querySelector('.gloop .edge.undeclared') !== null", what="the run's marks drawn")
    seen = pg.evaluate(MARKS_SEEN)
    assert seen["visits"] == ["×3", "×4", "×2", ""], seen
    assert sorted(t.strip() for t in seen["taken"]) == ["×2", "×2", "×3"]
    assert seen["undeclared"] == ["undeclared ×1"]
    assert seen["staleStroke"] == "rgb(161, 98, 7)"  # the stale outline (#a16207), in both themes
    assert seen["dashed"] not in (None, "none")  # the conditional breakpoint's border
    for words in ("edge taken", "undeclared move", "code changed", "conditional breakpoint", "aborted"):
        assert words in seen["legend"]
    assert pg.locator(".gloop svg text", has_text="Load <data>").count() == 1  # user text as text
    shot(pg, "gloop", f"graph-marks-{'dark' if 'Dark' in theme else 'light'}.png")


def test_an_aborted_stage_is_not_drawn_failed(page):
    pg = page
    set_theme(pg, "JupyterLab Light")
    fill = "sel => { const n = document.querySelector(sel); return n && getComputedStyle(n.querySelector('path, polygon')).fill; }"
    aborted, failed = '.gabort [id="pipenb-stage-waits"]', '.gfail [id="pipenb-stage-waits"]'
    pg.wait_for_selector(aborted + ".pipenb-status-aborted")
    pg.wait_for_selector(failed + ".pipenb-status-failed")
    assert pg.evaluate(fill, aborted) != pg.evaluate(fill, failed)
    shot(pg, "gabort", "graph-aborted.png")


OVERLAP = """() => {
    const root = document.querySelector('.gprogress');
    const msg = root.querySelector('.pipenb-progress-message[data-address="p1"]');
    const bar = root.querySelector('.pipenb-progress[data-address="p1"]');
    if (!msg || !bar || !msg.textContent) return null;
    const m = msg.getBoundingClientRect(), b = bar.getBoundingClientRect();
    const node = root.querySelector('[id="pipenb-stage-p1"]').getBoundingClientRect();
    const hits = Array.from(root.querySelectorAll('.edge')).map(e => e.getBoundingClientRect())
        .filter(e => e.width > 0 || e.height > 0)
        .filter(e => !(e.right < m.left || e.left > m.right || e.bottom < m.top || e.top > m.bottom));
    return {hits: hits.length, text: msg.textContent, inSvg: !!msg.closest('svg'),
            barInNode: b.left >= node.left - 1 && b.right <= node.right + 1 && b.top >= node.top - 1
                       && b.bottom <= node.bottom + 1};
}"""


def test_the_progress_message_sits_on_no_edge(page):
    pg = page
    wait_until(pg, f"() => ({OVERLAP})() !== null", what="the running stage's progress shown", report=OVERLAP)
    seen = pg.evaluate(OVERLAP)
    assert seen["hits"] == 0 and not seen["inSvg"] and seen["barInNode"], seen
    assert "p1: 3/10 — reading rows from <i>big.csv</i>" in seen["text"]  # user text as text
    shot(pg, "gprogress", "graph-progress.png")
    assert not pg.page_errors


VISITS_OF_A = """() => {
    const t = document.querySelector('.glive [id="pipenb-stage-a"] text.visits');
    return t ? parseInt(t.textContent.replace('×', ''), 10) : 0;
}"""


def test_counts_go_up_live_and_a_redraw_keeps_the_zoom(page):
    pg = page
    wait_until(pg, f"() => ({VISITS_OF_A})() >= 2", what="the live run's visits counted", report=VISITS_OF_A)
    pg.click(".glive .pipenb-zoom-in")
    pg.click(".glive .pipenb-zoom-in")
    scale = float(pg.get_attribute(".glive .pipenb-graph-canvas", "data-scale"))
    width = pg.evaluate("() => document.querySelector('.glive svg').getBoundingClientRect().width")
    seen = pg.evaluate(VISITS_OF_A)
    # The run goes on: the graph is redrawn with higher counts, at the scale the person chose.
    wait_until(pg, f"n => ({VISITS_OF_A})() >= n + 2", seen, what="counts going up", report=VISITS_OF_A)
    assert float(pg.get_attribute(".glive .pipenb-graph-canvas", "data-scale")) == scale
    assert pg.evaluate("() => document.querySelector('.glive svg').getBoundingClientRect().width") == width
    assert pg.locator(".glive .edge.taken").count() == 2  # a->b, b->a
    pg.click('.glive [id="pipenb-stage-a"]')  # a breakpoint: the run pauses before a
    pg.wait_for_selector('.glive [id="pipenb-stage-a"].pipenb-status-paused')
    assert not pg.page_errors

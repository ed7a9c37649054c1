"""SPEC 14 in a real browser: RunReplay in JupyterLab, driven by real clicks on its controls.

A looping run (load -> check, three times, then report) and a fork of it that parts at record 4 are
replayed side by side: jump to the end and the start, step forward and back, click on the scrubber,
play to the end; the page shows each position (record, visit counts, the current stage, the moves
taken) and the mark where the runs part. The dashboard's Replay button opens a replay of its run.
Every wait is on what the page shows. Screenshots: ``test-artifacts/replay*.png``.
"""

import pytest

from .. import lab_browser
from ..lab_browser import SHOTS, click, expect, open_notebook, set_theme, wait_status, wait_until

lab, browser = lab_browser.lab, lab_browser.browser  # the module's fixtures: JupyterLab serving NOTEBOOKS, Chromium

REPLAY_CODE = """
from pipenb import Pipeline, PipelineFactory, PipelineRegistry, Stage, Step, run_sync
from pipenb.widgets import RunDashboard, RunReplay

def load(state):
    return {"n": state.get("n", 0) + 1, "batch": [state.get("n", 0)] * 3}

def check(state):
    return {"ok": state["n"] >= 3}

loop = Pipeline("replay-demo", stages=[
    Stage("load", steps=[Step("read", load)]),
    Stage("check", steps=[Step("look", check)], router=lambda s, r: "load" if not s["ok"] else None),
    Stage("report", steps=[Step("write", lambda s: {"report": f"n={s['n']} <done>"})]),
])
factory = PipelineFactory(loop, registry=PipelineRegistry())
ctx = run_sync(factory.prepare()).unwrap()
log = ctx.record()
run_sync(ctx.run()).unwrap()
fork = run_sync(factory.fork(ctx.run_id, at=4)).unwrap()
fork.update_state({"n": 10})
run_sync(fork.run()).unwrap()
replay = RunReplay(ctx, compare=fork, events=log)

import threading, ipywidgets
threads = {"moved": set(), "drawn": set()}
seen = ipywidgets.HTML()
seen.add_class("replay-threads")
def moved(change):  # on whatever thread the browser's move came: only noted
    threads["moved"].add(threading.current_thread().name)
def drawn(change):
    threads["drawn"].add(threading.current_thread().name)
    seen.value = f"moved on {sorted(threads['moved'])} drawn on {sorted(threads['drawn'])}"
replay.observe(moved, names="position")
replay.observe(drawn, names="frame")
display(seen)
replay
"""
DASH_CODE = """
dash = RunDashboard(factory)
dash
"""

NOTEBOOKS = {"replay.ipynb": [REPLAY_CODE, DASH_CODE]}

pytestmark = pytest.mark.needs_chromium

ROOT = ".pipenb-replay-root"


def where(pg):
    return pg.locator(f"{ROOT} .pipenb-replay-where").first


def record(pg):
    return pg.locator(f"{ROOT} .pipenb-replay-a .pipenb-replay-record").first


def control(pg, name: str):
    return pg.locator(f"{ROOT} button.pipenb-replay-{name}").first


# What the first run's graph shows: the current stage, the stages run, each visit badge.
GRAPH = """() => {
    const col = document.querySelector('.pipenb-replay-root .pipenb-replay-a');
    const ids = sel => Array.from(col.querySelectorAll(sel)).map(g => g.id.replace('pipenb-stage-', ''));
    return {current: ids('g.node.pipenb-r-current'), ran: ids('g.node.pipenb-r-ran').sort(),
            badges: Array.from(col.querySelectorAll('text.pipenb-replay-visits'))
                .filter(t => t.style.display !== 'none').map(t => t.textContent).sort(),
            taken: col.querySelectorAll('.edge.pipenb-r-taken').length};
}"""


def graph_shows(pg, current: str, ran: list, badges: list) -> None:
    want = {"current": [current], "ran": sorted(ran), "badges": sorted(badges)}
    wait_until(
        pg,
        f"""() => {{ const g = ({GRAPH})(); const w = {want!r};
        return JSON.stringify([g.current, g.ran, g.badges]) === JSON.stringify([w.current, w.ran, w.badges]); }}""",
        what=f"the graph showing {want}",
        report=GRAPH,
    )


def test_replay_controls_in_jupyterlab(browser, lab):
    errors = []
    with open_notebook(browser, lab, "replay.ipynb", errors=errors, viewport=(1300, 1400)) as pg:
        pg.wait_for_selector(f"{ROOT} .pipenb-replay-a g.node")
        expect(where(pg)).to_have_text("record 1 / 7")
        expect(record(pg)).to_contain_text("#0 load")
        graph_shows(pg, "load", ["load"], [])
        # The runs part at record 4: the mark over the scrubber shows.
        expect(pg.locator(f"{ROOT} .pipenb-replay-split").first).to_be_visible()

        control(pg, "end").click()
        expect(where(pg)).to_have_text("record 7 / 7")
        expect(record(pg)).to_contain_text("#6 report")
        graph_shows(pg, "report", ["check", "load", "report"], ["×3", "×3"])
        pg.locator(f"{ROOT} .pipenb-replay-a .pipenb-replay-canvas").first.screenshot(
            path=str(SHOTS / "replay-graph.png")
        )
        assert pg.evaluate(GRAPH)["taken"] >= 2  # load -> check and check -> report (a self-drawn extra for the loop)
        expect(pg.locator(f"{ROOT} .pipenb-replay-compare").first).to_contain_text("part at record #4")
        expect(pg.locator(f"{ROOT} .pipenb-replay-a .pipenb-replay-state").first).to_contain_text("n=3 <done>")

        control(pg, "start").click()
        expect(where(pg)).to_have_text("record 1 / 7")
        control(pg, "forward").click()
        expect(where(pg)).to_have_text("record 2 / 7")
        expect(record(pg)).to_contain_text("#1 check")
        # The key the record changed is marked in the state shown; its events are listed.
        expect(pg.locator(f"{ROOT} .pipenb-replay-a .pipenb-replay-state tr.pipenb-changed").first).to_contain_text(
            "ok"
        )
        expect(pg.locator(f"{ROOT} .pipenb-replay-a .pipenb-replay-events").first).to_contain_text("look")
        control(pg, "back").click()
        expect(where(pg)).to_have_text("record 1 / 7")

        # A click on the scrubber's track, past its middle, moves there.
        scrub = pg.locator(f"{ROOT} .pipenb-replay-scrubber").first
        box = scrub.bounding_box()
        scrub.click(position={"x": box["width"] * 0.7, "y": box["height"] / 2})
        wait_until(
            pg,
            """() => /record [4-6] \\/ 7/.test(document.querySelector('.pipenb-replay-where').textContent)""",
            what="the scrubber moved past the middle",
            report="() => document.querySelector('.pipenb-replay-where').textContent",
        )
        shown = where(pg).inner_text()
        i = int(shown.split()[1]) - 1
        expect(record(pg)).to_contain_text(f"#{i} ")  # the kernel answered with that position's frame

        # Play from the start at 20 records a second: it runs to the end and stops there.
        control(pg, "start").click()
        expect(where(pg)).to_have_text("record 1 / 7")
        pg.locator(f"{ROOT} select.pipenb-replay-speed").first.select_option("20")
        control(pg, "play").click()
        expect(control(pg, "play")).to_contain_text("Pause")
        expect(where(pg)).to_have_text("record 7 / 7")
        expect(control(pg, "play")).to_contain_text("Play")
        expect(record(pg)).to_contain_text("#6 report")
        # JupyterLab 4.6 delivers the moves on a subshell thread; every frame was computed on the kernel's loop.
        expect(pg.locator(".replay-threads").first).to_contain_text("drawn on ['MainThread']")
        expect(pg.locator(".replay-threads").first).to_contain_text("'subshell-")
        pg.locator(ROOT).first.screenshot(path=str(SHOTS / "replay.png"))
        set_theme(pg, "JupyterLab Dark")
        expect(where(pg)).to_have_text("record 7 / 7")
        pg.locator(ROOT).first.screenshot(path=str(SHOTS / "replay-dark.png"))
        set_theme(pg, "JupyterLab Light")

        # The dashboard's Replay button opens a replay of its run under the graph.
        click(pg, "run")
        wait_status(pg, "completed")
        click(pg, "replay")
        dash_where = pg.locator(f".pipenb-dashboard {ROOT} .pipenb-replay-where").first
        expect(dash_where).to_have_text("record 1 / 7")
        pg.locator(f".pipenb-dashboard {ROOT} button.pipenb-replay-end").first.click()
        expect(dash_where).to_have_text("record 7 / 7")
        # A fork made in the dashboard: Compare with source shows it beside the run it came from.
        expect(pg.locator(".pipenb-dashboard button.pipenb-btn-compare")).to_be_hidden()
        pg.click(".pipenb-dashboard .pipenb-tabs .lm-TabBar-tab:has-text('History')")
        pg.click(".pipenb-dashboard .pipenb-history tr.pipenb-pick-row[data-id='4']")
        pg.wait_for_selector(".pipenb-dashboard .pipenb-record .pipenb-diff")
        pg.click(".pipenb-dashboard button.pipenb-btn-fork")
        wait_status(pg, "prepared")
        click(pg, "resume")
        wait_status(pg, "completed")
        click(pg, "compare")
        expect(pg.locator(f".pipenb-dashboard {ROOT} .pipenb-replay-b").first).to_be_visible()
        expect(pg.locator(f".pipenb-dashboard {ROOT} .pipenb-replay-compare").first).to_contain_text("do not part")
        pg.locator(".pipenb-dashboard").first.screenshot(path=str(SHOTS / "replay-dashboard.png"))
    assert not [e for e in errors if "pageerror" in e], errors


# Whether the replay cell's static snapshot (its output's text/html, refreshed by update_display_data once a
# move settles) says "record k of".
SNAPSHOT_AT = """k => {
    const nb = Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === 'replay.ipynb');
    const outputs = nb.content.widgets[0].model.outputs;
    for (let j = 0; j < outputs.length; j++) {
        const page = outputs.get(j).data['text/html'];
        if (page && String(page).includes('pipenb-snapshot-replay')) return String(page).includes(`record ${k} of`);
    }
    return false;
}"""

# Counts the replay's play timers (its setInterval callback moves the position by a step) started from now on.
COUNT_TIMERS = """() => {
    window.__pipenbTimers = 0;
    const original = window.setInterval;
    window.setInterval = (fn, ...rest) => {
        if (String(fn).includes('get("position") + step')) window.__pipenbTimers += 1;
        return original(fn, ...rest);
    };
}"""


def test_play_runs_one_timer_after_the_snapshot_was_refreshed(browser, lab):
    # JupyterLab renders a widget's output again on each snapshot refresh and keeps the old view listening,
    # off the page; each old view used to start its own play timer, so after a few moves Play went N times
    # faster than the speed picked (5/s played a 12-record run in under a second).
    errors: list[str] = []
    with open_notebook(browser, lab, "replay.ipynb", errors=errors, viewport=(1300, 1400)) as pg:
        pg.wait_for_selector(f"{ROOT} .pipenb-replay-a g.node")
        control(pg, "start").click()
        for k in (1, 2, 3):  # three moves, each left to settle: three snapshot refreshes, three views rendered
            if k > 1:
                control(pg, "forward").click()
            expect(where(pg)).to_have_text(f"record {k} / 7")
            wait_until(pg, SNAPSHOT_AT, k, what=f"the snapshot refreshed at record {k}")
        pg.evaluate(COUNT_TIMERS)
        pg.locator(f"{ROOT} select.pipenb-replay-speed").first.select_option("20")
        control(pg, "play").click()
        expect(where(pg)).to_have_text("record 7 / 7")
        expect(control(pg, "play")).to_contain_text("Play")
        assert pg.evaluate("window.__pipenbTimers") == 1  # the shown view's timer only
    assert not [e for e in errors if "pageerror" in e], errors


# How far the first diff row's value text starts from the end of its key's text, in the dashboard's replay.
KEY_TO_VALUE = """() => {
    const row = document.querySelector('.pipenb-dashboard .pipenb-replay-root .pipenb-replay-a table.pipenb-diff tr');
    const cells = row ? row.querySelectorAll('th, td') : [];
    if (cells.length < 3) return null;
    const text = cell => { const r = document.createRange(); r.selectNodeContents(cell); return r.getBoundingClientRect(); };
    return text(cells[cells.length - 1]).left - text(cells[cells.length - 2]).right;
}"""


def test_the_dashboards_replay_keeps_each_value_beside_its_key(browser, lab):
    # The dashboard's own table rules (width 100%, keys a third of it) reached the replay under its graph:
    # "added n" and its value 1 stood hundreds of pixels apart on a wide screen.
    with open_notebook(browser, lab, "replay.ipynb", viewport=(1600, 1400)) as pg:
        click(pg, "run")
        wait_status(pg, "completed")
        click(pg, "replay")
        expect(pg.locator(f".pipenb-dashboard {ROOT} .pipenb-replay-where").first).to_have_text("record 1 / 7")
        wait_until(pg, f"() => ({KEY_TO_VALUE})() !== null", what="showing the first record's diff in the dashboard")
        gap = pg.evaluate(KEY_TO_VALUE)
        assert gap < 60, f"value {gap:.0f} px from its key"

"""The timeline SVG and the run report page (SPEC 14): well-formed, escaped, offline, from a file."""

import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from pipenb import Pipeline, PipelineFactory, Stage, StageRecord, Step
from pipenb.report import report_html
from pipenb.timeline import tick_step, tick_text, timeline_svg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTILE = ["<script>alert(1)</script>", "a & b &amp; c", "\"quoted\" 'single'", "ctl\x00\x01\x08\x1b[31mred\x1b[0m\x7f",
           "lone \ud800 surrogate \ufffe", "x" * 10_000, "]]><!--", "tab\tnew\nline\r"]
SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)


def _records(addresses):
    return [StageRecord(i, a, a, a, {"k": i}, None, 1000.0 + i, 0.5, {"k": i}) for i, a in enumerate(addresses)]


def _parse(svg: str):
    """An SVG inlined in HTML (namespace declarations left out, as HTML needs none) parsed as XML."""
    if "xmlns=" not in svg[:300]:
        svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"', 1)
    return ET.fromstring(svg)


def _bars_by_address(svg: str) -> dict:
    out: dict = {}
    for g in _parse(svg).iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class", "").startswith("bar "):
            title = g.find("{http://www.w3.org/2000/svg}title").text
            address = title.split("\n")[0].split(" ", 1)[1]
            out[address] = out.get(address, 0) + 1
    return out


def test_timeline_well_formed_for_hostile_labels():
    svg = timeline_svg(_records(HOSTILE), width=700)
    ET.fromstring(svg)
    assert "<script" not in svg and "\x00" not in svg and "\x1b" not in svg
    assert "&lt;script&gt;" in svg
    assert len(svg) < 100_000  # a 10,000-character label is cut, its tooltip capped


def test_timeline_empty_and_zero_durations():
    ET.fromstring(timeline_svg([]))
    rec = StageRecord(0, "only", "only", "only", None, None, 5.0, 0.0, {})
    ET.fromstring(timeline_svg([rec, rec._replace(seq=1)]))


def _texts(svg: str) -> list[str]:
    return [t.text for t in _parse(svg).iter("{http://www.w3.org/2000/svg}text")]


def test_a_short_stage_alone_on_its_row_says_its_duration_once():
    # A newcomer saw "36 ms ▌36 ms": a bar too thin for its label had it beside it, next to the row's total.
    long = StageRecord(0, "load", "load", "load", None, None, 1000.0, 2.0, {})
    short = StageRecord(1, "price", "price", "price", None, None, 1002.0, 0.036, {})
    texts = _texts(timeline_svg([long, short], width=700))
    assert texts.count("36 ms") == 1
    assert texts.count("2.00 s") == 2  # inside its own bar, and the row's total


def test_a_looping_stage_keeps_each_visits_duration_beside_its_thin_bar():
    recs = [StageRecord(i, "poll", "poll", "poll", None, None, 1000.0 + i, 0.02, {}) for i in range(2)]
    recs.append(StageRecord(2, "load", "load", "load", None, None, 1002.0, 2.0, {}))
    texts = _texts(timeline_svg(recs, width=700))
    assert texts.count("20 ms") == 2 and "2× · 40 ms" in texts


def test_ticks_are_round_and_readable():
    assert tick_step(0.1) in (0.01, 0.02)
    assert tick_text(0.25, 0.05) == "250 ms"
    assert tick_text(1.5, 0.5) == "1.5 s"
    assert tick_text(30, 5) == "30 s"
    assert tick_step(600) == 120
    assert tick_text(150, 60) == "2:30 min"


def _loop_pipeline(label="load"):
    def load(state):
        return {"n": state.get("n", 0) + 1}

    def gate(state, results):
        return "load" if state["n"] < 3 else None

    return Pipeline("loop", stages=[
        Stage("load", steps=[Step("read", load)], label=label),
        Stage("check", steps=[Step("count", lambda s: {"seen": s["n"]})], router=gate, routes=["load"]),
    ])


def test_loop_shows_three_bars_on_the_looping_row():
    ctx = PipelineFactory(_loop_pipeline()).prepare_sync().unwrap()
    log = ctx.record()
    assert ctx.run_sync().is_ok
    assert ctx.history.address_list() == ["load", "check"] * 3
    svg = timeline_svg(ctx.history, log)
    assert _bars_by_address(svg) == {"load": 3, "check": 3}
    assert 'class="step success"' in svg  # steps drawn inside the visits


def _assert_offline_and_well_formed(page: str) -> None:
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page.lower() and "@import" not in page and "url(http" not in page
    for svg in SVG.findall(page):
        _parse(svg)


def test_report_escapes_hostile_state_labels_and_errors():
    def boom(state):
        raise ValueError("<script>bad</script> & more")

    pipe = Pipeline("p", stages=[
        Stage("a", steps=[Step("s", lambda s: {h: h for h in HOSTILE[:5]})], label=HOSTILE[0] + HOSTILE[5]),
        Stage("b", steps=[Step("t", boom)], label=HOSTILE[3]),
    ])
    ctx = PipelineFactory(pipe).prepare_sync().unwrap()
    log = ctx.record()
    assert not ctx.run_sync().is_ok
    page = ctx.report(events=log)
    _assert_offline_and_well_formed(page)
    assert "&lt;script&gt;bad&lt;/script&gt; &amp; more" in page
    assert ctx.run_id in page and "failed" in page


def test_report_without_events_says_so(tmp_path):
    ctx = PipelineFactory(_loop_pipeline()).prepare_sync().unwrap()
    ctx.run_sync()
    out = tmp_path / "run.html"
    page = ctx.report(str(out))
    assert out.read_text(encoding="utf-8") == page
    assert "No events were recorded" in page
    _assert_offline_and_well_formed(page)
    assert report_html(ctx) .count("×3") >= 2  # visit counts on the path the run took


WRITER = textwrap.dedent("""
    import sys
    from pipenb import Pipeline, PipelineFactory, SqliteStore, Stage, Step

    def load(state):
        return {"n": state.get("n", 0) + 1, "greeting": "hello <world>"}

    def gate(state, results):
        return "load" if state["n"] < 3 else None

    pipe = Pipeline("loop", stages=[
        Stage("load", steps=[Step("read", load)]),
        Stage("check", steps=[Step("count", lambda s: {"seen": s["n"] * 7})], router=gate, routes=["load"]),
        Stage("train", pipeline=Pipeline("training", stages=[Stage("fit", steps=[Step("f", lambda s: {"fit": 42})])])),
    ])
    factory = PipelineFactory(pipe, SqliteStore.factory(sys.argv[1]))
    ctx = factory.prepare_sync(run_id="run-xyz").unwrap()
    assert ctx.run_sync().is_ok
""")


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "pipenb", "report", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_cli_report_of_a_run_written_by_another_process(tmp_path):
    db = tmp_path / "runs.sqlite"
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.run([sys.executable, "-c", WRITER, str(db)], check=True, env=env, timeout=120)
    out = tmp_path / "out.html"
    done = _cli(str(db), "run-xyz", "-o", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    _assert_offline_and_well_formed(page)
    assert "run-xyz" in page
    for address in ("load", "check", "train/fit"):
        assert address in page
    for value in ("hello &lt;world&gt;", ">21<", ">42<"):  # the final state's values
        assert value in page
    assert _bars_by_address(SVG.findall(page)[-1]) == {"load": 3, "check": 3, "train/fit": 1}


def test_cli_missing_file_and_unknown_run(tmp_path):
    missing = tmp_path / "nope.sqlite"
    done = _cli(str(missing), "r1")
    assert done.returncode == 2 and str(missing) in done.stderr
    assert not missing.exists()
    db = tmp_path / "runs.sqlite"
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.run([sys.executable, "-c", WRITER, str(db)], check=True, env=env, timeout=120)
    done = _cli(str(db), "no-such-run")
    assert done.returncode == 2 and "no-such-run" in done.stderr and str(db) in done.stderr


@pytest.mark.parametrize("content", [b"not a database at all" * 100])
def test_cli_unreadable_file(tmp_path, content):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(content)
    done = _cli(str(bad), "r1")
    assert done.returncode == 2 and str(bad) in done.stderr

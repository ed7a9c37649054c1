"""The documentation site: it builds with warnings as errors, offline, and shows what the issue asked.

The build here is the real one (``sphinx-build -W`` over ``docs/``, into a temporary directory); the
executed demo notebooks are reused from ``docs/_notebooks/`` when ``pipenb/`` and the generator are
unchanged since the last build (scripts/docs.sh, or this test), else executed in a real kernel first.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("sphinx", reason="the docs extra is not installed (pip install -e .[docs])")
pytest.importorskip("myst_nb", reason="the docs extra is not installed (pip install -e .[docs])")
pytest.importorskip("furo", reason="the docs extra is not installed (pip install -e .[docs])")

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# A tag or CSS that makes a browser fetch from another host (a CDN script, a web font, a tracker).
EXTERNAL = re.compile(
    r"<(script|link|img|iframe)\b[^>]*\b(src|href)=[\"']?(https?:)?//|@import\s+url\(\s*[\"']?(https?:)?//"
    r"|url\(\s*[\"']?(https?:)?//",
    re.IGNORECASE,
)


def sphinx(source: pathlib.Path, out: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(out / ".doctrees"),
            *args,
            str(source),
            str(out / "html"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("site")
    built = sphinx(DOCS, out)
    assert built.returncode == 0, f"the docs build failed:\n{built.stdout[-3000:]}\n{built.stderr[-5000:]}"
    return out / "html"


def test_notebook_pages_show_the_widget_snapshots(site):
    page = (site / "_notebooks" / "01-quickstart.html").read_text(encoding="utf-8")
    graph = page.split('class="pipenb-snapshot pipenb-snapshot-graph"', 1)
    assert len(graph) == 2, "notebook 01's page has no StageGraph snapshot"
    assert "<svg" in graph[1][:2000]  # the graph itself, drawn inline
    assert "pipenb-snapshot-events" in page  # and the event table's newest rows
    assert "application/vnd.jupyter.widget-view+json" not in page  # no live view that needs a kernel


def test_no_page_fetches_anything_from_another_host(site):
    offenders = []
    for path in list(site.rglob("*.html")) + list(site.rglob("*.css")) + list(site.rglob("*.js")):
        for match in EXTERNAL.finditer(path.read_text(encoding="utf-8", errors="replace")):
            offenders.append(f"{path.relative_to(site)}: {match.group(0)[:120]}")
    assert not offenders, "\n".join(offenders)


def test_api_reference_has_every_public_name(site):
    import pipenb
    import pipenb.stores
    import pipenb.widgets

    html = "".join(p.read_text(encoding="utf-8") for p in (site / "api").glob("*.html"))
    ids = set(re.findall(r'<dt class="sig sig-object py" id="([^"]+)"', html))
    missing = []
    for package in (pipenb, pipenb.stores, pipenb.widgets):
        for name in package.__all__:
            obj = getattr(package, name)
            # A class exported twice (pipenb.DataStore is pipenb.stores.DataStore) is documented once.
            aliases = {
                f"{p.__name__}.{name}" for p in (pipenb, pipenb.stores, pipenb.widgets) if getattr(p, name, None) is obj
            }
            if not aliases & ids:
                missing.append(f"{package.__name__}.{name}")
    assert not missing
    assert "ForwardRef" not in html
    # SqliteStore resolves: the factory's return type links to its entry.
    assert 'href="#pipenb.stores.SqliteStoreFactory"' in (site / "api" / "stores.html").read_text(encoding="utf-8")


def _mini_project(tmp_path: pathlib.Path, drop: str | None = None, extra: str = "") -> pathlib.Path:
    """The real API pages and checks in a project of their own (no notebooks), ``drop`` left out."""
    src = tmp_path / "src"
    shutil.copytree(DOCS / "api", src / "api")
    for page in (src / "api").glob("*.rst"):
        text = page.read_text(encoding="utf-8")
        text = re.sub(r":doc:`([^`]*)`", r"``\1``", text)  # the concept pages are not in this project
        if drop is not None:
            text = re.sub(rf"^\.\. auto\w+:: {re.escape(drop)}\n(   .*\n|\n)*", "", text, flags=re.M)
        page.write_text(text, encoding="utf-8")
    (src / "api" / "index.rst").write_text((src / "api" / "index.rst").read_text(encoding="utf-8") + extra)
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    conf = conf.replace('    "myst_nb",\n', "").replace('    "pipenb_notebooks",', "")
    conf = conf.replace("ROOT = pathlib.Path(__file__).resolve().parent.parent", f"ROOT = pathlib.Path({str(ROOT)!r})")
    conf = conf.replace('html_theme = "furo"', 'html_theme = "basic"')
    conf += "\nroot_doc = 'api/index'\nsys.path.insert(0, str(pathlib.Path(__file__).parent))\n"
    (src / "conf.py").write_text(conf, encoding="utf-8")
    (src / "undocumented.py").write_text("class Thing:\n    pass\n", encoding="utf-8")
    return src


def test_a_public_name_left_out_of_the_reference_fails_the_build(tmp_path):
    built = sphinx(_mini_project(tmp_path, drop="pipenb.Pause"), tmp_path)
    assert built.returncode != 0
    assert "public name pipenb.Pause is not in the API reference" in built.stderr


def test_a_documented_object_without_a_docstring_fails_the_build(tmp_path):
    extra = "\n.. autoclass:: undocumented.Thing\n"
    built = sphinx(_mini_project(tmp_path, extra=extra), tmp_path)
    assert built.returncode != 0
    assert "undocumented.Thing (class) has no docstring" in built.stderr
    assert "is not in the API reference" not in built.stderr  # the full reference lacks nothing

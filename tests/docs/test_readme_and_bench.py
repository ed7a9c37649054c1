"""The README stays a short front page that stands on its own, and the performance page is bench's.

The long explanations live in docs/ (tests/docs/test_site.py builds them); the README keeps the two
commands, a screenshot, an example, each dependency's reason and links that resolve in the checkout.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package (pip's own dependency)
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
sys.path.insert(0, str(ROOT / "bench"))

import page  # noqa: E402  bench/page.py


def test_readme_opens_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).splitlines()
    assert README.index("```bash") < README.index("\n## ")  # before any section
    assert [line.split("#")[0].strip() for line in first_block] == ["bash scripts/demo.sh", "bash scripts/test.sh"]


def test_readme_links_resolve_in_the_checkout():
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    assert targets, "the README links to its docs pages"
    outside = [t for t in targets if re.match(r"[a-z]+:", t)]
    assert not outside, f"the README must stand on its own: {outside}"
    missing = [t for t in targets if not (ROOT / t.split("#")[0]).exists()]
    assert not missing


def test_readme_names_each_dependency_and_stays_short():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    wanted = project["dependencies"] + [r for name, reqs in extras.items() if name not in ("dev", "lab") for r in reqs]
    names = {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0] for r in wanted}
    table = README.split("## Dependencies and why", 1)[1].split("\n## ", 1)[0]
    assert not [n for n in sorted(names) if n not in table]
    assert len(README.splitlines()) <= 120
    assert "docs/dashboard.png" in README and (ROOT / "docs" / "dashboard.png").exists()


def test_performance_page_holds_one_table_of_four_columns():
    rows = page.rows_of()
    assert len(rows) > 20
    assert all(len(row) == 4 for row in rows)


def test_bench_rewrites_only_the_table_of_its_page(tmp_path):
    copy = tmp_path / "performance.md"
    shutil.copy(page.PAGE, copy)
    before = copy.read_text(encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "core", "--write", str(copy)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    after = copy.read_text(encoding="utf-8")
    rows = page.rows_of(copy)
    assert rows[0][0] == "raw baseline: one no-op step (asyncio + dict merge)" and rows[-1][0] == "import pipenb"
    assert "--quick, sections core" in after
    # The prose around the markers is kept as people wrote it.
    assert after.split(page.BEGIN)[0] == before.split(page.BEGIN)[0]
    assert after.split(page.END)[1] == before.split(page.END)[1]


def test_bench_refuses_an_unknown_section():
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--only", "nonsense"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0 and "unknown section" in run.stderr


def test_readme_layout_matches_the_tree():
    layout = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths = re.findall(r"^\| `([^`]+)` \|", layout, re.M)
    assert paths
    assert not [p for p in paths if not list(ROOT.glob(p.rstrip("/")))]
    top = {p.split("/")[0] for p in paths}
    # The folders the repository has (not what installs and runs leave: egg-info, venvs, caches).
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True).stdout.split()
    tracked = {f.split("/")[0] for f in files if "/" in f and not f.startswith(".")}
    assert not sorted(tracked - top), "a top-level folder is missing from the README's layout"

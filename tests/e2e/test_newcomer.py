"""A newcomer's path: `bash scripts/demo.sh` installs what every demo notebook imports, and the test
suite runs the repository's notebooks, whatever the person saved in notebooks/ while trying them."""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .. import repo_notebooks

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself requires tomli there
    import tomli as tomllib

ROOT = repo_notebooks.ROOT
DEMO = ROOT / "scripts" / "demo.sh"


# ---- 1. the demo installs every module the notebooks import ---------------------------------------------


def demo_extras() -> list[str]:
    """The extras scripts/demo.sh installs: the X,Y of the `pip_install_extra X,Y` it runs (scripts/steps.sh's
    `python3 -m pip install -e ".[X,Y]"`)."""
    lines = [line for line in DEMO.read_text().splitlines() if not line.lstrip().startswith("#")]
    found = [m for line in lines for m in re.findall(r"\bpip_install_extra\s+([\w,-]+)", line)]
    assert len(found) == 1, f"expected one `pip_install_extra extras` in {DEMO}, found {found}"
    return [e.strip() for e in found[0].split(",")]


def project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def installed_by(requirements: list[str]) -> tuple[set[str], set[str]]:
    """(distributions `pip install` of ``requirements`` brings, following each one's own requirements and
    extras as installed here; those of them that are not installed here, so whose own are unknown)."""
    seen: set[tuple[str, frozenset]] = set()
    dists: set[str] = set()
    missing: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        dists.add(name)
        try:
            requires = md.requires(req.name) or []
        except md.PackageNotFoundError:
            missing.add(name)
            continue
        for text in requires:
            sub = Requirement(text)
            envs = [{"extra": e} for e in sorted(req.extras)] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                todo.append(sub)
    return dists, missing


def imported_modules(source: str) -> set[str]:
    """Top-level modules a notebook cell imports (cells may use top-level await and IPython syntax)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except ImportError:
        pass
    tree = compile(source, "<cell>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            mods.add(node.module.split(".")[0])
    return mods


def test_imported_modules_are_found_in_cells():
    """The import scanner itself: plain, from-, nested, dotted and in-function imports, next to top-level await."""
    src = "import a.b, c as d\nfrom e.f import g\nfrom . import h\ndef f():\n    import i\nawait x\n"
    assert imported_modules(src) == {"a", "c", "e", "i"}


def same_name(module: str) -> set[str]:
    """The distribution named like ``module``: Python 3.10's packages_distributions() misses wheels without a
    top_level.txt (pandas and numpy built with meson)."""
    try:
        return {canonicalize_name(md.distribution(module).metadata["Name"])}
    except md.PackageNotFoundError:
        return set()


def test_the_demo_installs_every_module_the_notebooks_import():
    extras = demo_extras()
    declared = project()["optional-dependencies"]
    unknown = [e for e in extras if e not in declared]
    assert not unknown, f"scripts/demo.sh installs extras {unknown} that pyproject.toml does not declare"
    requirements = project()["dependencies"] + [r for e in extras for r in declared[e]]
    dists, not_here = installed_by(requirements)
    assert {"jupyterlab", "ipykernel"} <= dists, "the demo runs `jupyter lab` and a Python kernel"
    providers = md.packages_distributions()  # top-level module -> the distributions installing it
    problems = []
    for name in repo_notebooks.names():
        for source in repo_notebooks.code_sources(repo_notebooks.build(name)):
            for mod in sorted(imported_modules(source)):
                if mod in sys.stdlib_module_names or mod in ("__future__", "pipenb"):
                    continue
                by = {canonicalize_name(d) for d in providers.get(mod, [])} or same_name(mod)
                if not by:
                    problems.append(f"{name}: imports {mod!r}, which is not installed here, so it cannot be checked")
                elif not by & dists:
                    problems.append(f"{name}: imports {mod!r} (from {sorted(by)}), which `pip install -e "
                                    f"\".[{','.join(extras)}]\"` (scripts/demo.sh) does not install")
    assert not problems, "\n".join(problems + [f"(not installed here, so their own requirements are not "
                                               f"followed: {sorted(not_here)})"] * bool(not_here))


# ---- 2. the suite runs the repository's notebooks, not what is saved in notebooks/ ---------------------


def test_the_committed_notebooks_are_the_generated_ones():
    """notebooks/*.ipynb at HEAD are what notebooks/make_notebooks.py at HEAD writes: whoever changes the generator
    commits the regenerated notebooks with it. HEAD only: notebooks a person saved with outputs or edits, and
    work not committed yet, do not count (the suite runs the working tree's generator anyway)."""
    head = repo_notebooks.at_head()
    if head is None:
        pytest.skip("not a git checkout: the suite takes the notebooks from notebooks/make_notebooks.py")
    gen, files = head
    hint = "run python notebooks/make_notebooks.py and commit the notebooks with the generator"
    assert sorted(files) == sorted(gen.NOTEBOOKS), f"notebooks/*.ipynb at HEAD are not make_notebooks.py's: {hint}"
    cells = lambda nb: [(c.cell_type, c.source) for c in nb.cells]  # noqa: E731
    for name, nb in files.items():
        assert cells(nb) == cells(gen.build(name)), f"notebooks/{name}.ipynb at HEAD differs from its source: {hint}"


def test_the_generated_cells_pass_ruff(tmp_path):
    """ruff skips notebooks/*.ipynb (people save there); the cells the generator writes are linted here."""
    paths = repo_notebooks.generator().write(tmp_path)
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"),
                          *map(str, paths)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def saved_by_a_person(notebooks) -> None:
    """What trying the demo leaves in notebooks/: a notebook saved with an error output and an edit, a new
    Untitled.ipynb with broken code, the files notebook 02 writes."""
    nb = nbformat.read(notebooks / "01-quickstart.ipynb", as_version=4)
    nb.cells[1].source += "\nimport os   # tried something"
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="name 'x' is not defined",
                                                  traceback=["NameError: name 'x' is not defined"])]
    nb.cells[1].execution_count = 3
    nbformat.write(nb, notebooks / "01-quickstart.ipynb")
    untitled = nbformat.v4.new_notebook()
    untitled.cells = [nbformat.v4.new_code_cell("import sys\nprint(undefined_name)\nraise ValueError('half-written')")]
    nbformat.write(untitled, notebooks / "Untitled.ipynb")
    (notebooks / "approval_run_id.txt").write_text("0190-run")
    (notebooks / "approvals.sqlite").write_bytes(b"SQLite format 3\x00")


def test_saved_notebooks_change_neither_ruff_nor_which_notebooks_the_suite_runs(tmp_path):
    """A copy of the checkout after a person saved notebooks: `ruff check .` (as scripts/test.sh runs it) passes,
    and pytest collects exactly the repository's notebooks, built from their source."""
    checkout = tmp_path / "checkout"
    for part in ("notebooks", "tests", "pipenb"):
        shutil.copytree(ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", checkout)
    saved_by_a_person(checkout / "notebooks")
    # The saved notebooks really are lint errors: ruff finds them when told to look.
    direct = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "notebooks/Untitled.ipynb"],
                            cwd=checkout, capture_output=True, text=True)
    assert direct.returncode == 1 and "F821" in direct.stdout, direct.stdout + direct.stderr
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=checkout,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    collect = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              "tests/e2e/test_notebooks.py"], cwd=checkout, capture_output=True, text=True)
    assert collect.returncode == 0, collect.stdout + collect.stderr
    ids = sorted(re.findall(r"test_notebook_runs_clean\[([^\]]+)\]", collect.stdout))
    assert ids == sorted(repo_notebooks.names()), collect.stdout
    # What the suite would run is the source's notebook, not the saved one.
    built = subprocess.run([sys.executable, "-c", "import json, sys; sys.path.insert(0, '.');"
                            "from tests import repo_notebooks as r; print(json.dumps(r.build('01-quickstart')))"],
                           cwd=checkout, capture_output=True, text=True, check=True).stdout
    cell = json.loads(built)["cells"][1]
    assert "tried something" not in cell["source"] and cell["outputs"] == [] and cell["execution_count"] is None

"""The stubs of the generated event classes and emitters match what the modules make (scripts/make_stubs.py)."""

import ast
import pathlib
import importlib.util

from pipenb.core import bus, events

ROOT = pathlib.Path(__file__).resolve().parents[2]

spec = importlib.util.spec_from_file_location("make_stubs", ROOT / "scripts" / "make_stubs.py")
make_stubs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_stubs)


def test_committed_stubs_are_what_the_generator_writes_now():
    for path, text in make_stubs.stubs().items():
        assert path.read_text() == text, f"{path.name} is stale: run python scripts/make_stubs.py"


def top_level_names(source: str) -> set[str]:
    tree = ast.parse(source)
    names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    names |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    return {n for n in names if not n.startswith("_")}


def test_every_public_name_of_the_modules_is_in_its_stub():
    core = ROOT / "pipenb" / "core"
    generated = {cls.__name__ for cls in events.EVENT_TYPES.values()}
    for name, extra in (("events", generated), ("bus", set())):
        public = top_level_names((core / f"{name}.py").read_text()) | extra
        declared = top_level_names((core / f"{name}.pyi").read_text())
        assert public <= declared, f"{name}.pyi lacks {sorted(public - declared)}"
    emitters = {n.name for n in ast.parse((core / "bus.pyi").read_text()).body[-1].body if isinstance(n, ast.FunctionDef)}
    assert {name.replace(":", "_") for name in events.EVENT_NAMES} <= emitters
    assert all(callable(getattr(bus.EventBus, name)) for name in emitters)

"""The Pythons pipenb says it supports are the ones scripts/test.sh tests, and the kernels the tests
start run on the Python running the tests (in a .venv-pyX.Y venv: that venv's python)."""

import json
import os
import pathlib
import re
import sys

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pythons_in_test_sh() -> list[str]:
    """PYTHONS=(...) in scripts/test.sh."""
    found = re.findall(r"^PYTHONS=\(([^)]*)\)", (ROOT / "scripts" / "test.sh").read_text(), re.M)
    assert len(found) == 1, "scripts/test.sh should set PYTHONS=(...) once"
    return found[0].split()


def test_classifiers_and_requires_python_are_the_pythons_in_test_sh():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    classified = [m.group(1) for c in project["classifiers"]
                  if (m := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))]
    tested = pythons_in_test_sh()
    assert sorted(classified, key=lambda v: tuple(map(int, v.split(".")))) == tested, (
        f"pyproject.toml's classifiers say {classified}, scripts/test.sh tests {tested}")
    assert project["requires-python"] == f">={tested[0]}"


def test_one_tested_python_gets_ipykernel_6():
    pinned = re.findall(r"^IPYKERNEL6_ON=(\S+)", (ROOT / "scripts" / "test.sh").read_text(), re.M)
    assert len(pinned) == 1 and pinned[0] in pythons_in_test_sh()


def test_the_python3_kernel_runs_on_this_python():
    """The notebook and kernel tests start kernels named "python3": that kernel must run this very
    interpreter (same version, same environment, same ipykernel), or they test another Python."""
    ipykernel = pytest.importorskip("ipykernel")
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        out = []
        code = ("import json, sys, ipykernel; print(json.dumps({'version': sys.version_info[:2], "
                "'prefix': sys.prefix, 'ipykernel': ipykernel.__version__}))")
        reply = kc.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(
            m["content"]["text"]) if m["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok"
        kernel = json.loads("".join(out))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert (tuple(kernel["version"]), kernel["ipykernel"]) == (sys.version_info[:2], ipykernel.__version__), (
        f"the python3 kernel runs Python {kernel['version']} with ipykernel {kernel['ipykernel']}, the tests "
        f"Python {list(sys.version_info[:2])} with ipykernel {ipykernel.__version__}")
    assert os.path.realpath(kernel["prefix"]) == os.path.realpath(sys.prefix), (
        f"the python3 kernel runs in {kernel['prefix']}, the tests in {sys.prefix}")

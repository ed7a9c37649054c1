import asyncio
import importlib.util
import shutil
import sys
import threading
import time

import pytest

from pipenb import PipelineFactory, PipelineRegistry, Pipeline, Stage, Step


# Programs some tests need beyond pip: marker -> (program, how to install it).
# scripts/test.sh installs them with apt-get; where it cannot, those tests are skipped with the reason.
PROGRAMS = {
    "needs_dot": ("dot", "apt-get install graphviz"),
    "needs_chromium": ("chromium", "apt-get install chromium"),
}


def missing_reason(marker: str) -> str | None:
    """Why tests with ``marker`` cannot run here, or None when they can."""
    program, install = PROGRAMS[marker]
    missing = [] if shutil.which(program) else [f"{program} ({install})"]
    if marker == "needs_chromium" and importlib.util.find_spec("playwright") is None:
        missing.append("playwright (pip install -e .[dev])")
    return "not installed: " + ", ".join(missing) if missing else None


def pytest_report_header(config):
    reasons = [r for r in map(missing_reason, PROGRAMS) if r]
    if reasons:
        return [f"pipenb: {r}; the tests needing it are skipped" for r in reasons]
    return None


def pytest_collection_modifyitems(config, items):
    reasons = {m: missing_reason(m) for m in PROGRAMS}
    for item in items:
        for marker, reason in reasons.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


def arun(coro):
    """Run a coroutine to completion in a fresh loop (tests are plain scripts)."""
    return asyncio.run(coro)


def wait_for(cond, what: str = "", timeout: float = 5.0, proc=None):
    """Poll ``cond()`` until it is truthy (and return it); fail after ``timeout`` s, or when ``proc`` (a
    subprocess.Popen) exited first. The one polling helper of the suite: it waits on a condition, never on time."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            value = cond()
            if value:
                return value
            raise AssertionError(f"{what or cond}: the process exited ({proc.returncode}) first: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {what or cond}")
        time.sleep(0.005)


async def eventually(cond, timeout: float = 2.0) -> None:
    """``wait_for`` inside a test's event loop: the loop runs between polls."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"still not true after {timeout} s: {cond}"
        await asyncio.sleep(0.005)


class Recorder:
    """Collects every event of a run (a "*" listener)."""

    def __init__(self, ctx=None):
        self.events = []
        if ctx is not None:
            ctx.on("*", self.events.append)

    @property
    def names(self):
        return [e.name for e in self.events]

    def where(self, name):
        return [e for e in self.events if e.name == name]

    def trace(self):
        return [(e.name, e.stage_address) for e in self.events]


@pytest.fixture
def cpu_hog():
    """A thread spinning in Python for the whole test, and a short GIL switch interval: the other threads run
    in small, shifted slices, so a race window between two threads is hit within a few dozen tries. Always
    stopped (and the switch interval restored) when the test ends, whatever its outcome."""
    stop = threading.Event()

    def spin() -> None:
        n = 0
        while not stop.is_set():
            n += 1

    hog = threading.Thread(target=spin, name="cpu-hog", daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    hog.start()
    try:
        yield hog
    finally:
        stop.set()
        hog.join(10)
        sys.setswitchinterval(interval)


@pytest.fixture
def registry():
    reg = PipelineRegistry(default_timeout=60)
    yield reg
    reg.close()


@pytest.fixture
def make(registry):
    """make(pipeline, **factory_kwargs) -> (factory, prepared ctx, recorder)."""

    def _make(pipeline, initial_state=None, entry=None, **kwargs):
        kwargs.setdefault("registry", registry)
        factory = PipelineFactory(pipeline, **kwargs)
        ctx = factory.prepare_sync(entry=entry, initial_state=initial_state).unwrap()
        return factory, ctx, Recorder(ctx)

    return _make


def add(key, amount=1):
    """A step action adding ``amount`` to ``state[key]``."""

    def action(state):
        return {key: state.get(key, 0) + amount}

    action.__name__ = f"add_{key}"
    return action


def linear(pid="lin", n=3, key="n"):
    return Pipeline(pid, steps=[Step(f"s{i}", add(key)) for i in range(n)])


def stage(sid, *actions, **kw):
    return Stage(sid, steps=[Step(f"{sid}{i}", a) for i, a in enumerate(actions)], **kw)


@pytest.fixture(scope="session")
def dask_client():
    """A real local Dask cluster (worker processes), started once for the whole suite and closed after."""
    distributed = pytest.importorskip(
        "distributed", reason='dask.distributed is not installed (pip install "pipenb[dask]")')
    cluster = distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()

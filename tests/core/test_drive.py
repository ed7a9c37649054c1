"""Lifecycle and Drive (issue 17, item 3): refusals are RunStateErrors, each claim gets a fresh Drive,
and only pipenb/core/lifecycle.py assigns the fields of a Lifecycle, a Drive or an AbortSignal."""

import ast
import asyncio
import pathlib

import pytest

from pipenb import END, InMemoryStore, Pause, Pipeline, PipelineError, RunStateError, Stage, Step, run_sync
from pipenb.core.lifecycle import AbortSignal, Drive, Lifecycle

from ..conftest import add, arun, eventually

ROOT = pathlib.Path(__file__).resolve().parents[2] / "pipenb"


def _three(pid="drv", b=None):
    return Pipeline(pid, stages=[
        Stage("a", steps=[Step("a0", add("a"))]),
        Stage("b", steps=[Step("b0", b or add("b"))]),
        Stage("c", steps=[Step("c0", add("c"))]),
    ])


# -- RunStateError: "not allowed in this status", one row per case ----------------------------------


async def _running(make):
    """A context whose run is running (held in an async step) and the release of that step."""
    gate = asyncio.Event()

    async def held(state):
        await gate.wait()
        return {"held": 1}

    _, ctx, _ = make(_three(b=held))
    task = ctx.start()
    await eventually(lambda: ctx.status == "running" and ctx.position == "b")
    return ctx, task, gate


def _finished(make, status):
    router = (lambda s: END) if status == "terminated" else None
    _, ctx, _ = make(Pipeline(f"fin-{status}", stages=[Stage("a", steps=[Step("a0", add("a"))], router=router)]))
    assert ctx.run_sync().unwrap().status == status
    return ctx


async def _refused_result(ctx, how):
    if how == "run":
        return await ctx.run()
    if how == "step":
        return await ctx.step()
    return await ctx.start()


RUNNING_CASES = ["run", "step", "start"]


@pytest.mark.parametrize("how", RUNNING_CASES)
def test_driving_a_running_run_is_a_run_state_error(make, how):
    async def go():
        ctx, task, gate = await _running(make)
        res = await _refused_result(ctx, how)
        assert ctx.status == "running"  # nothing changed
        gate.set()
        assert (await task).unwrap().status == "completed"
        return ctx, res

    ctx, res = arun(go())
    assert res.is_err and isinstance(res.error, RunStateError) and isinstance(res.error, PipelineError)
    msg = str(res.error)
    assert ctx.run_id in msg and "already running" in msg and "abort()" in msg  # what to do next


@pytest.mark.parametrize("status", ["completed", "terminated"])
@pytest.mark.parametrize("how", ["run", "step", "start"])
def test_driving_a_finished_run_is_a_run_state_error(make, status, how):
    ctx = _finished(make, status)
    res = arun(_refused_result(ctx, how))
    assert res.is_err and isinstance(res.error, RunStateError), res
    msg = str(res.error)
    assert ctx.run_id in msg and status in msg and "prepare()" in msg
    assert ctx.status == status


def test_update_state_of_a_running_run_raises_run_state_error(make):
    async def go():
        ctx, task, gate = await _running(make)
        with pytest.raises(RunStateError, match="request_pause") as info:
            ctx.update_state({"x": 1})
        gate.set()
        await task
        return ctx, info.value

    ctx, err = arun(go())
    assert ctx.run_id in str(err) and "x" not in ctx.state


@pytest.mark.parametrize("status", ["completed", "terminated"])
def test_update_state_of_a_finished_run_raises_run_state_error(make, status):
    ctx = _finished(make, status)
    with pytest.raises(RunStateError, match="prepare"):
        ctx.update_state({"x": 1})
    assert "x" not in ctx.state


def test_an_older_context_of_the_run_is_a_run_state_error(make, registry):
    p = Pipeline("old", stages=[Stage("a", steps=[Step("a0", add("a"))], router=lambda s: Pause("b"), routes=["b"]),
                                Stage("b", steps=[Step("b0", add("b"))])])
    factory, old, _ = make(p)
    assert old.run_sync().unwrap().status == "paused"
    assert registry.expire(old.run_id)
    assert factory.resume_sync(old.run_id).unwrap() is not old
    res = old.run_sync()
    assert res.is_err and isinstance(res.error, RunStateError)
    assert "factory.resume(run_id)" in str(res.error)


class _LeasedElsewhere(InMemoryStore):
    """A store whose lease another process holds."""

    leases = True

    def acquire(self, token):
        return "is running in process 4242 on host elsewhere"


def test_a_run_leased_by_another_process_is_a_run_state_error_and_the_claim_is_undone(make):
    _, ctx, _ = make(_three("leased"), store_factory=lambda run_id: _LeasedElsewhere())
    before = ctx.lifecycle.drive
    res = ctx.run_sync()
    assert res.is_err and isinstance(res.error, RunStateError)
    assert "process 4242" in str(res.error) and "wait" in str(res.error)
    assert ctx.status == "prepared" and ctx.lifecycle.drive is before and not ctx.lifecycle.active


# -- a fresh Drive for each claim ----------------------------------------------------------------


def test_each_claim_gets_a_fresh_drive_nothing_of_the_last_one_leaks(make):
    seen = {}

    def b(state, sctx):
        drive = ctx.lifecycle.drive
        first.interrupt()  # a late interrupt of the old drive does not reach this one
        seen.update(drive=drive, signal=sctx.signal, budget=drive.step_budget, active=drive.active,
                    cancellable=drive.cancellable, aborted=sctx.signal.aborted, thread=drive.thread)
        return {"b": 1}

    _, ctx, _ = make(_three("fresh", b=b))
    assert ctx.lifecycle.drive.attempt == 0 and not ctx.lifecycle.active  # no drive yet
    assert run_sync(ctx.step()).unwrap().status == "paused"
    first = ctx.lifecycle.drive
    assert first.attempt == 1 and first.step_budget == 0 and not first.active
    ctx.abort("stop it")  # a paused run: aborted, the signal of the last drive raised
    assert ctx.status == "aborted" and ctx.signal is first.signal and first.signal.aborted

    res = ctx.run_sync()  # retry: a new drive
    assert res.is_ok and res.value.status == "completed", res
    second = seen["drive"]
    assert second is not first and second is ctx.lifecycle.drive
    assert second.attempt == 2 and ctx.lifecycle.attempts == 2
    assert seen["signal"] is second.signal is not first.signal
    assert seen["aborted"] is False and not ctx.signal.aborted     # the abort stayed with the first drive
    assert seen["budget"] is None                                   # run(), not step(): no budget left over
    assert seen["active"] is True and seen["cancellable"] is False  # a sync step: nothing to cancel
    assert seen["thread"] is not None  # the loop's thread of this drive, set by its claim
    assert not second.active and not second.cancellable and second.abort_event is None
    assert first.signal.reason == "stop it" and dict(ctx.state) == {"a": 1, "b": 1, "c": 1}


def test_a_fresh_drive_has_its_own_abort_future(make):
    futures = []

    async def b(state):
        futures.append(ctx.lifecycle.drive.abort_future())
        return {"b": 1}

    p = Pipeline("fut", stages=[Stage("a", steps=[Step("a0", add("a"))], router=lambda s: Pause("b"), routes=["b"]),
                                Stage("b", steps=[Step("b0", b)]), Stage("c", steps=[Step("c0", add("c"))])])
    _, ctx, _ = make(p)

    async def go():
        assert (await ctx.run()).unwrap().status == "paused"
        first = ctx.lifecycle.drive
        first.abort_future()
        assert (await ctx.run()).unwrap().status == "completed"
        return first

    first = arun(go())
    assert futures and futures[0] is not first.abort_event and not futures[0].done()


def test_drive_and_lifecycle_keep_their_fields_in_slots():
    life = Lifecycle("r-slots", "prepared", ("a",))
    for obj in (life, Drive(), AbortSignal()):
        assert not hasattr(obj, "__dict__"), type(obj)
    with pytest.raises(AttributeError):
        life.step_budget = 1  # a drive's field: not the lifecycle's any more


# -- no module assigns a Lifecycle's or a Drive's fields but lifecycle.py ----------------------------

_FIELDS = set(Lifecycle.__slots__) | set(Drive.__slots__) | set(AbortSignal.__slots__)
_RECEIVERS = {"life", "lifecycle", "drive", "signal", "_life", "_lifecycle", "_drive", "_signal"}
# Receivers in core/ that are not a Lifecycle, a Drive or an AbortSignal, though a field has the same name.
# (Outside core/ only receivers named like one are checked: widgets have statuses of their own.)
_OTHERS = {("core/registry.py", "entry.status")}


def _names(expr) -> set[str]:
    """The names and attribute names along a receiver expression (``self.ctx.lifecycle`` -> all three)."""
    out = set()
    while isinstance(expr, (ast.Attribute, ast.Subscript, ast.Call)):
        if isinstance(expr, ast.Attribute):
            out.add(expr.attr)
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    if isinstance(expr, ast.Name):
        out.add(expr.id)
    return out


def _assigned(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            yield node, node.args[0] if node.args else None, None
            continue
        else:
            continue
        for target in targets:
            for t in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                if isinstance(t, ast.Attribute):
                    yield node, t.value, t.attr


def test_only_lifecycle_assigns_the_fields_of_a_lifecycle_or_a_drive():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "core/lifecycle.py":
            continue
        for node, receiver, attr in _assigned(ast.parse(path.read_text(), str(path))):
            if receiver is None:
                continue
            names = _names(receiver)
            self_only = isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")
            text = ast.unparse(receiver) + (f".{attr}" if attr else "")
            by_receiver = bool(names & _RECEIVERS)
            by_field = (rel.startswith("core/") and attr in _FIELDS and not self_only
                        and (rel, text) not in _OTHERS)
            if attr is None and not by_receiver:
                continue  # setattr on something else
            if by_receiver or by_field:
                found.append(f"{rel}:{node.lineno} {text}")
    assert not found, ("assign through a named transition of Lifecycle or Drive (pipenb/core/lifecycle.py) "
                       f"instead: {found}")


def test_the_scan_would_catch_an_assignment():
    code = "life.cursor = a\nself.lifecycle.status = 'x'\nself.drive.step_budget -= 1\nsetattr(ctx.lifecycle, 'x', 1)\n"
    hits = [(ast.unparse(r), a) for _, r, a in _assigned(ast.parse(code))]
    assert hits == [("life", "cursor"), ("self.lifecycle", "status"), ("self.drive", "step_budget"),
                    ("ctx.lifecycle", None)]
    assert all(_names(ast.parse(r, mode="eval").body) & _RECEIVERS for r, _ in hits)

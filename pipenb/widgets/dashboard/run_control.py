"""``RunControl``: what the dashboard's buttons and rows do to runs, and on which thread.

Runs execute as background tasks on the kernel's loop (``ctx.start()``), so
the cell returns and the buttons stay live, and their sync steps run on
pipenb's worker threads, so the loop stays free to redraw while a long step
runs. JupyterLab may deliver clicks on a subshell thread: Abort and Pause act
from the click's own thread (they only set the run's thread-safe flags, so
they land even while the loop is busy); every other action hands its work to
the kernel's loop (``LoopCall``, throttle.py). Every run is prepared, resumed or forked
through the dashboard's factory: its pipeline is the code that runs (SPEC 9),
and a run only the store knows is brought back the same way.

The control is an object the dashboard owns: it knows the factory, the
registry and the loop, and reaches the dashboard only through ``Screen``, the
few things it asks of whatever shows its runs. What it reads of a run's
lifecycle (its status and the rules on it) is read in this module only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

from pipenb.display import short_id
from pipenb.core.lifecycle import RUNNING, can_abort, is_finished

from ..throttle import LoopCall
from .toolbar import APPLIES, why_not


def status_of(ctx) -> str | None:
    """The run's status (None: no run shown): the one lifecycle read of the dashboard's actions."""
    return ctx.status if ctx is not None else None


@dataclass(frozen=True)
class Screen:
    """What the control asks of the dashboard showing its runs."""

    shown: Callable[[], object]                  # the shown run's context, or None
    show: Callable[[object], None]               # make a context the shown run
    let_go: Callable[[str], None]                # show no run: the shown one, this run id, was discarded
    redraw: Callable[[], None]                   # redraw everything now
    say: Callable[[str, str], None]              # a line in the message: text, CSS class
    failed: Callable[[str, BaseException], None]  # a run failed (or raised) with this error
    discarded: Callable[[str], None]             # a run was discarded: never list it again
    replay: Callable[..., None] = lambda ctx, compare=None: None  # show a RunReplay of ctx (beside ``compare``)


class RunControl:
    """Run, Pause, Step, Resume, Abort, Retry, Discard, Fork, Replay and picking a run, for one factory's runs."""

    def __init__(self, factory, registry, call: LoopCall, screen: Screen):
        self.factory = factory
        self.registry = registry
        self.call = call
        self.screen = screen
        # Run id of a fork made here -> the run it was forked from: its context, held, since a finished run's
        # context lives only while someone holds it and a memory store keeps no history (else its run id).
        self.sources: dict[str, object] = {}

    def _say(self, text: str, cls: str = "pipenb-why") -> None:
        self.screen.say(text, cls)

    def why_not(self, name: str) -> None:
        """Say why button ``name`` does nothing now."""
        self._say(f"{name.capitalize()}: {why_not(name, status_of(self.screen.shown()))}")

    # -- clicks (any thread) -------------------------------------------------------
    def clicked(self, name: str) -> None:
        """What a click on button ``name`` does (a press from code does the same)."""
        if name in ("abort", "pause"):
            self._flag(name)
        else:
            self.call(self._do, name)

    def _flag(self, name: str) -> None:
        """Abort or Pause, from whatever thread the click came on: only the run's flags are set here."""
        ctx = self.screen.shown()
        if not APPLIES[name](status_of(ctx)):
            self.call(self.why_not, name)
            return
        if name == "abort":
            ctx.abort("dashboard")
        else:
            ctx.request_pause()
        self.call(self._say, "pausing at the next stage…" if name == "pause" else "", "pipenb-why")
        self.call(self.screen.redraw)

    # -- actions (loop thread) ---------------------------------------------------
    def _do(self, name: str) -> None:
        ctx = self.screen.shown()
        status = status_of(ctx)
        if not APPLIES[name](status):
            self.why_not(name)
            return
        self._say("")
        if name == "run":
            self.spawn(self._start_new(step=False))
        elif name == "step":
            if ctx is None or is_finished(status):
                self.spawn(self._start_new(step=True))
            else:
                self.spawn(self._continue(ctx.run_id, step=True))
        elif name in ("resume", "retry"):  # a retry continues a failed or aborted run at its stage
            self.spawn(self._continue(ctx.run_id, step=False))
        elif name == "discard":
            self.spawn(self._discard(ctx.run_id))
        elif name in ("replay", "compare"):
            self._replay(ctx, compare=name == "compare")
        self.screen.redraw()

    def forked(self, ctx) -> bool:
        """Whether ``ctx`` is a fork (Compare with source applies): made here, or its store says so (``factory.fork``
        in code, or a fork read back from a SQLite file)."""
        return ctx is not None and (ctx.run_id in self.sources or getattr(ctx, "forked_from", None) is not None)

    def source_ids(self) -> set[str]:
        """The runs forks made here came from: the dashboard keeps their events for Compare with source."""
        return {getattr(source, "run_id", source) for source in self.sources.values()}

    def _replay(self, ctx, compare: bool) -> None:
        """Show a replay of the shown run (read, never run), beside the run it was forked from for Compare."""
        source = self.sources.get(ctx.run_id) if compare else None
        if compare and source is None:
            recorded = getattr(ctx, "forked_from", None)  # a fork made elsewhere: its store names the source
            if recorded is not None:
                source = self.registry.get_context(recorded.run_id) or recorded.run_id
        if compare and source is None:
            self.why_not("compare")
            return
        if isinstance(source, str):
            source = (self.factory, source)
        try:
            self.screen.replay(ctx, source)
        except (TypeError, ValueError) as exc:
            self._say(f"Replay: {exc}")

    def spawn(self, coro) -> None:
        """Run ``coro`` on the kernel's loop (in a loop of its own without one), then redraw."""
        loop = self.call.loop
        if loop is None:
            from pipenb import run_sync

            run_sync(coro)
            self.screen.redraw()
        else:
            task = loop.create_task(coro)
            task.add_done_callback(lambda t: self.screen.redraw())

    async def _continue(self, run_id: str, step: bool) -> None:
        """Resume, step or retry through this dashboard's factory: its pipeline is the code that runs (SPEC 9)."""
        res = await self.factory.resume(run_id)
        if res.is_err:
            self._say(str(res.error))
            return
        ctx = res.value
        if ctx is not self.screen.shown():
            self.screen.show(ctx)
        if self.call.loop is None:
            await ctx.start(step=step)
            return
        self._go(ctx, step)

    def _go(self, ctx, step: bool) -> None:
        """Run or step ``ctx`` with ``ctx.start()``: sync steps on worker threads, the loop stays free."""
        task = ctx.start(step=step)
        task.add_done_callback(lambda t, run_id=ctx.run_id: self._ended(run_id, t))
        self.screen.redraw()  # show "running" now; the run's own edges follow

    def _ended(self, run_id: str, outcome) -> None:
        """A run's ``start()`` task (or result) is done: keep its error, then redraw."""
        try:
            result = outcome.result() if isinstance(outcome, asyncio.Future) else outcome
        except BaseException as exc:  # cancelled, or the run raised
            if not isinstance(exc, asyncio.CancelledError):
                self.screen.failed(run_id, exc)
        else:
            if getattr(result, "is_err", False):
                self.screen.failed(run_id, result.error)
        self.screen.redraw()

    async def _start_new(self, step: bool) -> None:
        """Prepare a new run, show it, then start it in the background."""
        ctx = (await self.factory.prepare()).unwrap()
        self.screen.show(ctx)
        if self.call.loop is None:  # no kernel loop (a script): wait for the run in this loop of our own
            return self._ended(ctx.run_id, await ctx.start(step=step))
        self._go(ctx, step)

    async def _discard(self, run_id: str) -> None:
        """Abort the run if it can be, forget it in the registry (its checkpoint goes too), drop it from the list.

        A finished run is only removed from the list (``factory.remove``: for good, its data stays in the store);
        it has no checkpoint to clear.
        A run only the store knows (left by an earlier kernel) is resumed through the factory first: that
        registers it, and the registry's discard clears its checkpoint like any other's.
        """
        removed = self.registry.remove(run_id)  # this dashboard's registry, if not the factory's
        if await self.factory.remove(run_id) or removed:
            self.screen.discarded(run_id)
            shown = self.screen.shown()
            if shown is not None and shown.run_id == run_id:
                self.screen.let_go(run_id)
            self._say(f"removed run {short_id(run_id)} from the list", "pipenb-done")
            self.screen.redraw()
            return
        if self.registry.get_context(run_id) is None and run_id not in {r.run_id for r in self.registry.runs()}:
            res = await self.factory.resume(run_id)
            if res.is_err:
                self._say(f"cannot discard run {short_id(run_id)}: {res.error}")
                return
        shown = self.screen.shown()
        ctx = shown if shown is not None and shown.run_id == run_id else self.registry.get_live_context(run_id)
        if ctx is not None and can_abort(status_of(ctx)):
            ctx.abort("discarded from the dashboard")
            for _ in range(300):  # the abort lands within 100 ms; its checkpoint must be written before we clear it
                if status_of(ctx) != RUNNING:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)
        self.registry.discard(run_id)
        self.sources.pop(run_id, None)
        self.screen.discarded(run_id)
        shown = self.screen.shown()
        if shown is not None and shown.run_id == run_id:
            self.screen.let_go(run_id)
        self._say(f"discarded run {short_id(run_id)}", "pipenb-done")
        self.screen.redraw()

    def discard(self, run_id: str | None) -> None:
        """Discard ``run_id`` (None: no run shown, say so), on the loop."""
        if run_id is None:
            self.call(self.why_not, "discard")
            return
        self.call(lambda: self.spawn(self._discard(run_id)))

    # -- forks and picks ----------------------------------------------------------
    def fork(self, run_id: str, index: int | None, record, start: bool = False) -> None:
        """A new run from before history entry ``index`` of ``run_id`` (None: nothing picked, say so);
        ``start``: run it at once (the re-run of a fixed stage), else it waits for Resume."""
        if index is None:
            self._say("Fork from here: pick a history entry first")
            return
        self.spawn(self._fork(run_id, index, record, start))

    async def _fork(self, run_id: str, index: int, record, start: bool = False) -> None:
        res = await self.factory.fork(run_id, at=index)
        if res.is_err:
            self._say(f"{type(res.error).__name__}: {res.error}")
            return
        new = res.value
        shown = self.screen.shown()
        held = shown if shown is not None and shown.run_id == run_id else self.registry.get_context(run_id)
        self.sources[new.run_id] = held if held is not None else run_id
        self.screen.show(new)
        what = "re-running it with the new code" if start else "press Resume to run it"
        self._say(f"run {short_id(new.run_id)} forked from run {short_id(run_id)} before #{record.seq} "
                  f"{record.address}: {what}", "pipenb-done")
        if not start:
            self.screen.redraw()
        elif self.call.loop is None:  # a script: wait for it in this loop of our own
            self._ended(new.run_id, await new.start())
        else:
            self._go(new, step=False)

    def pick(self, run_id: str) -> None:
        """Show the run ``run_id``: a stored run is resumed through the factory."""
        shown = self.screen.shown()
        if shown is not None and shown.run_id == run_id:
            return
        self.spawn(self._open(run_id))

    async def _open(self, run_id: str):
        """Show a run: a finished one as it is (never resumed), any other through the factory's ``resume``."""
        held = self.registry.get_context(run_id)
        if held is not None and is_finished(status_of(held)):
            self.screen.show(held)
            return
        opened = await self.factory.open(run_id)  # a finished run in the store: looked at, never resumed
        if opened.is_ok:
            self.screen.show(opened.value)
            return
        done = next((r for r in self.registry.finished() if r.run_id == run_id), None)
        if done is not None:
            self._say(f"run {short_id(run_id)} {done.status}, and nothing in this kernel holds it any more "
                      f"(only its record is left): press remove on its row")
            return
        res = await self.factory.resume(run_id)
        if res.is_err:
            self._say(str(res.error))
            return
        self.screen.show(res.value)

    def row_action(self, action: str, run_id: str) -> None:
        """What a runs-list row's button does."""
        if action in ("discard", "remove"):
            self.spawn(self._discard(run_id))
        elif action == "resume":
            self.spawn(self._continue(run_id, step=False))
        elif action == "show":
            self.pick(run_id)

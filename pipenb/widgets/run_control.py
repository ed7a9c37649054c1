"""``RunControl``: what the dashboard's buttons and rows do to runs, and on which thread.

Runs execute as background tasks on the kernel's loop (``ctx.start()``), so
the cell returns and the buttons stay live, and their sync steps run on
pipenb's worker threads, so the loop stays free to redraw while a long step
runs. JupyterLab may deliver clicks on a subshell thread: Abort and Pause act
from the click's own thread (they only set the run's thread-safe flags, so
they land even while the loop is busy); every other action hands its work to
the kernel's loop (``call_soon_threadsafe``). Every run is prepared, resumed
or forked through the dashboard's factory: its pipeline is the code that runs
(SPEC 9), and a run only the store knows is brought back the same way.
"""

from __future__ import annotations

import asyncio
import threading

from pipenb.core.ids import short_id
from pipenb.core.lifecycle import RUNNING, can_abort, is_finished

from .toolbar import APPLIES


class RunControl:
    """Mixin of ``RunDashboard``: its run actions. Expects ``factory``, ``registry``, ``ctx``, ``_loop``,
    ``_thread``, ``toolbar``, ``message``, ``run_errors``, ``runs_list``, ``history_view``, and the
    dashboard's ``show``, ``_let_go``, ``_refresh_all`` and ``_refresh_buttons``."""

    # -- thread hand-off --------------------------------------------------------
    def _call(self, fn, *args) -> None:
        """Run ``fn`` on the kernel's loop thread (clicks may arrive on another one)."""
        loop = self._loop
        if loop is None or loop.is_closed() or threading.get_ident() == self._thread:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _clicked(self, name: str) -> None:
        if name in ("abort", "pause"):
            self._flag(name)
        else:
            self._call(self._do, name)

    def _flag(self, name: str) -> None:
        """Abort or Pause, from whatever thread the click came on: only the run's flags are set here."""
        ctx = self.ctx
        status = ctx.status if ctx is not None else None
        if not APPLIES[name](status):
            self._call(self.toolbar.why_not, name)
            return
        if name == "abort":
            ctx.abort("dashboard")
        else:
            ctx.request_pause()
        self._call(self._flagged, name)

    def _flagged(self, name: str) -> None:
        self.message.value = "pausing at the next stage…" if name == "pause" else ""
        self._refresh_buttons()

    def press(self, name: str) -> None:
        """Press a button from code (what a click does)."""
        self._clicked(name)

    # -- actions (loop thread) ---------------------------------------------------
    def _do(self, name: str) -> None:
        if name in ("abort", "pause"):
            self._flag(name)
            return
        status = self.ctx.status if self.ctx is not None else None
        if not APPLIES[name](status):
            self.toolbar.why_not(name)
            return
        self.message.value = ""
        ctx = self.ctx
        if name == "run":
            self._spawn(self._start_new(step=False))
        elif name == "step":
            if ctx is None or is_finished(status):
                self._spawn(self._start_new(step=True))
            else:
                self._spawn(self._continue(ctx.run_id, step=True))
        elif name in ("resume", "retry"):  # a retry continues a failed or aborted run at its stage
            self._spawn(self._continue(ctx.run_id, step=False))
        elif name == "discard":
            self._spawn(self._discard(ctx.run_id))
        self._refresh_buttons()

    def _say(self, text: str, cls: str = "pipenb-why") -> None:
        self.toolbar.say(text, cls)

    async def _continue(self, run_id: str, step: bool) -> None:
        """Resume, step or retry through this dashboard's factory: its pipeline is the code that runs (SPEC 9)."""
        res = await self.factory.resume(run_id)
        if res.is_err:
            self._say(str(res.error))
            return
        ctx = res.value
        if ctx is not self.ctx:
            self.show(ctx)
        if self._loop is None:
            await self._started(ctx, step)
            return
        self._go(ctx, step)

    def _spawn(self, coro) -> None:
        loop = self._loop
        if loop is None:
            from pipenb import run_sync

            run_sync(coro)
            self._refresh_all()
        else:
            task = loop.create_task(coro)
            task.add_done_callback(lambda t: self._refresh_all())

    def _go(self, ctx, step: bool) -> None:
        """Run or step ``ctx`` with ``ctx.start()``: sync steps on worker threads, the loop stays free."""
        if self._loop is None:  # no kernel loop (a script): wait for the background run in a loop of our own
            from pipenb import run_sync

            self._ended(ctx.run_id, run_sync(self._started(ctx, step)))
            self._refresh_all()
            return
        task = ctx.start(step=step)
        task.add_done_callback(lambda t, run_id=ctx.run_id: self._ended(run_id, t))
        self._refresh_all()  # show "running" now; the run's own edges follow

    def _ended(self, run_id: str, outcome) -> None:
        """A run's ``start()`` task (or result) is done: keep its error, then redraw."""
        try:
            result = outcome.result() if isinstance(outcome, asyncio.Future) else outcome
        except BaseException as exc:  # cancelled, or the run raised
            if not isinstance(exc, asyncio.CancelledError):
                self.run_errors.keep(run_id, exc)
        else:
            if getattr(result, "is_err", False):
                self.run_errors.keep(run_id, result.error)
        self._refresh_all()

    @staticmethod
    async def _started(ctx, step: bool):
        return await ctx.start(step=step)

    async def _start_new(self, step: bool) -> None:
        """Prepare a new run, show it, then start it in the background."""
        ctx = (await self.factory.prepare()).unwrap()
        self.show(ctx)
        if self._loop is None:
            return self._ended(ctx.run_id, await self._started(ctx, step))
        self._go(ctx, step)

    async def _discard(self, run_id: str) -> None:
        """Abort the run if it can be, forget it in the registry (its checkpoint goes too), drop it from the list.

        A run only the store knows (left by an earlier kernel) is resumed through the factory first: that
        registers it, and the registry's discard clears its checkpoint like any other's.
        """
        if self.registry.get_context(run_id) is None and run_id not in {r.run_id for r in self.registry.runs()}:
            res = await self.factory.resume(run_id)
            if res.is_err:
                self._say(f"cannot discard run {short_id(run_id)}: {res.error}")
                return
        ctx = self.ctx if self.ctx is not None and self.ctx.run_id == run_id else \
            self.registry.get_live_context(run_id)
        if ctx is not None and can_abort(ctx.status):
            ctx.abort("discarded from the dashboard")
            for _ in range(300):  # the abort lands within 100 ms; its checkpoint must be written before we clear it
                if ctx.status != RUNNING:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)
        self.registry.discard(run_id)
        self.runs_list.discarded.add(run_id)
        self.run_errors.forget(run_id)
        if self.ctx is not None and self.ctx.run_id == run_id:
            self._let_go(run_id)
        self._say(f"discarded run {short_id(run_id)}", "pipenb-done")
        self._refresh_all()

    def discard(self, run_id: str | None = None) -> None:
        """Discard ``run_id`` (default: the shown run), as the Discard button does."""
        run_id = run_id if run_id is not None else (self.ctx.run_id if self.ctx is not None else None)
        if run_id is None:
            self._call(self.toolbar.why_not, "discard")
            return
        self._call(lambda: self._spawn(self._discard(run_id)))

    # -- forks and picks ----------------------------------------------------------
    def _fork_picked(self) -> None:
        ctx = self.ctx
        h, i = self.history_view.picked()
        if ctx is None or i is None:
            self._say("Fork from here: pick a history entry first")
            return
        self._spawn(self._fork(ctx.run_id, i, h[i]))

    def fork_here(self) -> None:
        """What the "Fork from here" button does."""
        self._call(self._fork_picked)

    async def _fork(self, run_id: str, index: int, record) -> None:
        res = await self.factory.fork(run_id, at=index)
        if res.is_err:
            self._say(f"{type(res.error).__name__}: {res.error}")
            return
        new = res.value
        self.show(new)
        self._say(f"run {short_id(new.run_id)} forked from run {short_id(run_id)} before #{record.seq} "
                  f"{record.address}: press Resume to run it", "pipenb-done")
        self._refresh_all()

    def pick(self, run_id: str) -> None:
        """Show the run ``run_id`` (as a click on its row does): a stored run is resumed through the factory."""
        if self.ctx is not None and self.ctx.run_id == run_id:
            return
        self._spawn(self._open(run_id))

    async def _open(self, run_id: str):
        res = await self.factory.resume(run_id)
        if res.is_err:
            self._say(str(res.error))
            return
        self.show(res.value)

    def _run_action(self, action: str, run_id: str) -> None:
        if action == "discard":
            self._spawn(self._discard(run_id))
        elif action == "resume":
            self._spawn(self._continue(run_id, step=False))
        elif action == "show":
            self.pick(run_id)

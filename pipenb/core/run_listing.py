"""The factory's look at the runs of its pipeline: listing them, opening a finished one, removing one (SPEC 14).

Kept apart from ``factory`` (which makes, resumes and forks runs): this part
only reads runs and never drives one. A finished run is listed from the
registry while this process knows it, and from its store's note after that
(see ``kept``); it is opened to look at (history, replay, compare, fork,
report), never resumed; ``remove`` takes it out of the lists for good while
its data stays in the store.
"""

from __future__ import annotations

from dataclasses import replace

from .artifacts import ArtifactContainer
from .context import RunContext
from .errors import PipelineError, ResumeError
from .kept import ended_of, fork_source, hide
from .lifecycle import FINISHED, is_finished
from .result import Result
from .run_record import RunRecord
from .state import run_note


class RunListing:
    """``runs``, ``open`` and ``remove`` of ``PipelineFactory`` (a mixin: it uses the factory's store and registry)."""

    def runs(self) -> list[RunRecord]:
        """This pipeline's runs: those the registry holds, its finished ones, then every run in the store.

        Finished runs (``"completed"``, ``"terminated"``) stay listed, from
        the registry in this process and from the store after a restart,
        until ``remove(run_id)``; they can be looked at (``open``) and forked,
        never resumed. Stored runs not alive in this kernel have ``live=False``
        and a status of ``"paused"``, ``"failed"``, ``"aborted"``,
        ``"prepared"``, ``"interrupted"`` (its process died mid-run),
        ``"completed"`` or ``"terminated"``. A fork's record names its source
        (``forked_from``); a finished run's, when it ended (``ended``).
        """
        pid = self.pipeline.id
        reg = self.registry
        held = [r for r in reg.runs() + reg.finished() if r.pipeline_id == pid] if reg is not None else []
        in_store = {s.run_id: s for s in self.store_factory.stored_runs() if s.pipeline_id == pid}
        if self.store_factory.lists_runs():
            # A released run the store has no checkpoint of any more was finished or discarded elsewhere
            # (another registry, process or kernel): the store's record says which, if it kept one.
            resumable = {run_id for run_id, s in in_store.items() if s.status not in FINISHED}
            held = [r for r in held if r.live or r.status in FINISHED or r.run_id in resumable]
        held = [self._with_source(r, in_store.get(r.run_id)) for r in held]
        known = {r.run_id for r in held}
        stored = [
            RunRecord(
                s.run_id,
                s.pipeline_id,
                s.status,
                s.paused_at or None,
                None,
                False,
                f"running in {s.where}" if s.where else "",
                ended=s.ended,
                forked_from=s.forked_from,
            )
            for s in in_store.values()
            if s.run_id not in known
        ]
        return held + sorted(stored, key=lambda r: r.run_id)

    def _with_source(self, record: RunRecord, stored) -> RunRecord:
        """``record`` with the fork source and end time its store or its context says."""
        source = stored.forked_from if stored is not None else None
        ctx = self.registry.get_context(record.run_id) if source is None else None
        if ctx is not None:
            source = fork_source(ctx.store.get())
        ended = stored.ended if stored is not None else None
        if source is None and ended is None:
            return record
        return replace(record, forked_from=source, ended=ended)

    def _finished_why(self, run_id: str, store) -> str | None:
        """Why ``resume`` refuses ``run_id``, when it is a finished run (its store's note, or this registry's
        record, says so); None when it is not known as one."""
        ended = ended_of(run_note(store.get()))
        status = ended.status if ended is not None else None
        if status is None and self.registry is not None:
            status = next((r.status for r in self.registry.finished() if r.run_id == run_id), None)
        if status is None:
            return None
        return (
            f"run {run_id} {status}, and a finished run is never resumed: factory.open({run_id!r}) to look at "
            f"it (history, replay, report), or factory.fork({run_id!r}, at=...) to run it again from a stage"
        )

    async def open(self, run_id: str) -> Result:
        """A finished run (completed or terminated) to look at: the context this process holds, else one rebuilt
        from its store (its state, history and artifacts; a durable store keeps them after a restart).

        It never runs (``run()`` refuses it); fork it to run it again. A run
        that can continue is an error result (``ResumeError``) saying so:
        ``resume`` it instead.
        """
        try:
            if not isinstance(run_id, str) or not run_id:
                raise ResumeError(f"run_id must be a non-empty str, got {run_id!r}")
            ctx = self.registry.get_context(run_id) if self.registry is not None else None
            if ctx is not None:
                if not is_finished(ctx.status):
                    raise ResumeError(f"run {run_id} is {ctx.status}, not finished: resume({run_id!r}) it")
                return Result.ok(ctx)
            store = await self._open_store(run_id)
            ended = ended_of(run_note(store.get()))
            if ended is None:
                self._let_go_empty(run_id, store)
                raise ResumeError(
                    f"run {run_id}: no finished run of that id in this factory's store (a run "
                    f"that can continue is resumed; a store that keeps no runs keeps none)"
                )
            if ended.pipeline_id != self.pipeline.id:
                raise ResumeError(f"run {run_id} belongs to pipeline {ended.pipeline_id!r}, not {self.pipeline.id!r}")
            container = ArtifactContainer(store.load_artifacts(), keep_log=True) if store.keeps_artifacts else None
            return Result.ok(
                RunContext(
                    pipeline=self.pipeline,
                    run_id=run_id,
                    store=store,
                    logger=self.logger,
                    entry=self._normalize_entry(None),
                    container=container,
                    status=ended.status,
                    history=self._history_for(store),
                    executor=self.executor,
                )
            )
        except PipelineError as exc:
            return Result.err(exc)

    async def remove(self, run_id: str) -> bool:
        """Take a finished run out of ``runs()`` and the dashboards' lists, for good (after a restart too).

        Nothing of the run is deleted: its store marks it removed, and its
        state, history and artifacts stay (``open(run_id)``, a replay by run
        id and the report still read it). False when ``run_id`` is not a
        finished run known here: a run that can continue is not removed,
        ``registry.discard`` it (that clears its checkpoint).
        """
        ctx = self.registry.get_context(run_id) if self.registry is not None else None
        removed = self.registry.remove(run_id) if self.registry is not None else False  # hides it through ctx
        if ctx is not None:
            return removed or hide(ctx.store)
        store = await self._open_store(run_id)
        if hide(store):
            return True
        self._let_go_empty(run_id, store)
        return removed

    def _let_go_empty(self, run_id: str, store) -> None:
        """A store opened only to look at, and empty: opening it made it, and a memory provider must not keep it.
        One with state (a paused run's, say) is its run's, and stays."""
        if not store.get():
            self._release(run_id)

    def remove_sync(self, run_id: str) -> bool:
        """``remove`` for code outside an event loop: runs it on a private loop."""
        from .sync import run_sync

        return run_sync(self.remove(run_id))

    def open_sync(self, run_id: str) -> Result:
        """``open`` for code outside an event loop: runs it on a private loop."""
        from .sync import run_sync

        return run_sync(self.open(run_id))

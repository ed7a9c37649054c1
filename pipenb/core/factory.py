"""``PipelineFactory``: makes new runs (``prepare``) and brings paused ones back (``resume``).

The factory is stateless between runs: it holds the definition, the store
factory, the logger and the registry binding, nothing else. Everything a run
owns lives in its ``RunContext`` and its store, so a factory can be rebuilt
(a re-run notebook cell) without losing a paused run.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Callable

from .artifacts import ArtifactContainer
from .checkpoints import PipelineCheckpoint, checkpoint_patch, now_iso, read_checkpoint, router_only
from .context import RunContext
from .definitions import Pipeline
from .executors import check_executor
from .errors import PipelineError, PrepareError, ResumeError, StoreError
from .commit import outputs_of, resumed_artifacts
from .history import EDIT, History, HistoryRow, fork_index, replay, rows_of
from ._ids import uuid7
from .lifecycle import ABORTED, FAILED, PAUSED, PREPARED
from ._logs import adapt_logger
from .kept import ForkSource, fork_patch
from .registry import PipelineRegistry
from .run_listing import RunListing
from .result import Result
from .state import PIPELINE_DATA_KEY, is_mapping, run_note, user_view
from .store import as_provider, as_store, default_provider

class _DefaultRegistry:
    """``registry=``'s default: stands for ``PipelineRegistry.default``, read when a factory is built.

    A named marker rather than ``object()``, so ``help(PipelineFactory)`` reads
    ``registry=PipelineRegistry.default``, and ``registry=None`` can still mean "no registry".
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "PipelineRegistry.default"


_DEFAULT = _DefaultRegistry()


def _history_limit(history) -> int | None:
    """``True``: every record (None), ``False``: none (0), N: the last N."""
    if history is True:
        return None
    if history is False:
        return 0
    if isinstance(history, bool) or not isinstance(history, int):
        raise TypeError(f"history must be True, False or an int >= 0, got {type(history).__name__}: {history!r}")
    if history < 0:
        raise ValueError(f"history must be True, False or an int >= 0, got {history!r}")
    return history


class PipelineFactory(RunListing):
    """Makes, resumes, forks and lists the runs of one pipeline.

    ``store_factory(run_id)`` gives each run its store (default: a process-wide in-memory
    provider; ``SqliteStore.factory(path)`` for runs that outlive the kernel);
    ``initial_state_factory()`` the state a run starts with when ``prepare`` is given none;
    ``registry`` holds paused runs live (default: ``PipelineRegistry.default``; None: none);
    ``history``: keep every record (True), none (False) or the last N; ``executor``: where
    sync steps run unless a step or stage says otherwise (``"inline"``, ``"thread"``, an
    ``Executor``, a Dask client)::

        factory = PipelineFactory(pipeline, SqliteStore.factory("runs.sqlite"))
        ctx = (await factory.prepare()).unwrap()
        ...
        ctx = (await factory.resume(run_id)).unwrap()   # after a restart too
    """

    def __init__(
        self,
        pipeline: Pipeline,
        store_factory: Callable[[str], Any] | None = None,
        initial_state_factory: Callable[[], Any] | None = None,
        logger=None,
        registry=_DEFAULT,
        *,
        history: bool | int = True,
        executor=None,
    ):
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"PipelineFactory needs a Pipeline, got {type(pipeline).__name__}: {pipeline!r}")
        if store_factory is not None and not callable(store_factory):
            raise TypeError(f"store_factory must be callable(run_id), got {store_factory!r}")
        if initial_state_factory is not None and not callable(initial_state_factory):
            raise TypeError(f"initial_state_factory must be callable(), got {initial_state_factory!r}")
        self.pipeline = pipeline
        # A plain callable is wrapped once so its capabilities (release, run_ids) are declared.
        self.store_factory = as_provider(store_factory if store_factory is not None else default_provider)
        self.initial_state_factory = initial_state_factory
        self.logger = adapt_logger(logger)
        _history_limit(history)  # refuse a bad value now, not at the first run
        self.history = history
        check_executor(executor, f"PipelineFactory({pipeline.id!r}) executor")
        self.executor = executor
        self.registry = PipelineRegistry.default if registry is _DEFAULT else registry

    async def _open_store(self, run_id: str):
        try:
            store = self.store_factory(run_id)
            if inspect.isawaitable(store):
                store = await store
        except PipelineError:
            raise
        except Exception as exc:
            raise StoreError(f"store_factory failed for run {run_id}: {type(exc).__name__}: {exc}") from exc
        return as_store(store, run_id)

    def _release(self, run_id: str) -> None:
        self.store_factory.release(run_id)

    def _normalize_entry(self, entry) -> tuple:
        if entry is None:
            return (self.pipeline.ordered[0].id,)
        if isinstance(entry, str):
            entry = tuple(entry.split("/"))
        if not isinstance(entry, tuple) or not all(isinstance(x, str) for x in entry):
            raise PrepareError(
                f"pipeline {self.pipeline.id!r}: entry must be None, a stage id or a tuple path, got {entry!r}"
            )
        try:
            chain = self.pipeline.resolve(entry)
        except KeyError as exc:
            raise PrepareError(f"unknown entry {entry!r} for pipeline {self.pipeline.id!r}: {exc.args[0]}") from None
        # Entering a sub-pipeline stage without a sub-address starts at its first stage.
        while chain[-1].pipeline is not None:
            first = chain[-1].pipeline.ordered[0]
            entry = entry + (first.id,)
            chain.append(first)
        return entry

    def _history_for(self, store) -> History | None:
        """The run's history as its store knows it (durable stores keep rows), or a new one."""
        limit = _history_limit(self.history)
        if limit == 0:
            return None
        now = user_view(store.get())
        if store.keeps_history:  # read when first looked at: a resume need not replay the whole run
            def stored() -> History:
                rows = store.load_history()
                return replay(rows, limit) if rows else History(now, limit)

            return History(now, limit, loader=stored, next_seq=store.history_next_seq())
        return History(now, limit)

    def _context(self, run_id, store, entry, container=None, status=PREPARED, router_only=False,
                 history: History | None | bool = True) -> RunContext:
        if history is True:
            history = self._history_for(store)
        if container is None:
            container = ArtifactContainer(keep_log=history is not None)
        ctx = RunContext(
            pipeline=self.pipeline, run_id=run_id, store=store, logger=self.logger, entry=entry,
            container=container, status=status, keeper=_Keeper(self), router_only=router_only,
            history=history, executor=self.executor,
        )
        if self.registry is not None:
            self.registry.register(ctx, store, release=self._release)
        return ctx

    async def prepare(self, entry=None, run_id: str | None = None, initial_state=None) -> Result:
        """A new run, ready to ``run()``; nothing executes yet."""
        try:
            start = self._normalize_entry(entry)
            if run_id is None:
                run_id = uuid7()
            elif not isinstance(run_id, str) or not run_id:
                raise PrepareError(f"run_id must be a non-empty str, got {run_id!r}")
            if initial_state is None and self.initial_state_factory is not None:
                try:
                    initial_state = self.initial_state_factory()
                except Exception as exc:
                    raise PrepareError(
                        f"initial_state_factory of pipeline {self.pipeline.id!r} raised {type(exc).__name__}: {exc}"
                    ) from exc
            if initial_state is not None:
                if not is_mapping(initial_state):
                    raise PrepareError(
                        f"initial state for pipeline {self.pipeline.id!r} must be a mapping, "
                        f"got {type(initial_state).__name__}: {initial_state!r}"
                    )
                if PIPELINE_DATA_KEY in initial_state:
                    raise PrepareError(f"initial state may not use the reserved key {PIPELINE_DATA_KEY!r}")
            if self.registry is not None and self.registry.get_live_context(run_id) is not None:
                raise PrepareError(f"run id {run_id!r} is already in use by a live run")
            store = await self._open_store(run_id)
            if store.get():
                raise PrepareError(
                    f"run id {run_id!r} already has state in its store; use resume({run_id!r}) or a new id"
                )
            if initial_state:
                with store.transaction():
                    store.set(initial_state)
                    if store.durable:  # a crash before the first commit resumes from the start, never an orphan
                        stage = self.pipeline.resolve(start)[-1]
                        store.set(checkpoint_patch(PipelineCheckpoint(
                            run_id=run_id, pipeline_id=self.pipeline.id, resume_at=start, paused_at_stage_id=stage.id,
                            paused_at_stage_label=stage.label, paused_on=now_iso()), status=PREPARED))
                    if store.keeps_history and _history_limit(self.history) != 0:
                        # The state the history starts from (none written: empty), for forks after a restart.
                        store.append_history(HistoryRow.initial(initial_state, time.time()))
            return Result.ok(self._context(run_id, store, start))
        except PipelineError as exc:
            return Result.err(exc)

    async def resume(self, run_id: str) -> Result:
        """The live context if the registry still holds it, else one rebuilt from the store."""
        try:
            if not isinstance(run_id, str) or not run_id:
                raise ResumeError(f"run_id must be a non-empty str, got {run_id!r}")
            live = self.registry.get_live_context(run_id) if self.registry is not None else None
            if live is not None and not live.is_current():
                # Another process took the run over, or a newer context of it was built here: handing this
                # one back would only have its run() refused again. Drop it (writing nothing) and rebuild.
                self.registry.expire(run_id)
                live = None
            if live is not None:
                if live.pipeline_id != self.pipeline.id:
                    raise ResumeError(
                        f"run {run_id} belongs to pipeline {live.pipeline_id!r}, not {self.pipeline.id!r}"
                    )
                live.rebind(self.pipeline, self.executor)  # the factory you resume with decides the code (SPEC 9)
                return Result.ok(live)
            store = await self._open_store(run_id)
            elsewhere = store.running_elsewhere()
            if elsewhere is not None:
                raise ResumeError(f"run {run_id} {elsewhere}; wait for it to pause or end, or stop that process")
            cp = read_checkpoint(store, None, run_id)
            if cp is None:
                self._release(run_id)
                raise ResumeError(self._finished_why(run_id, store) or f"run {run_id} has no checkpoint to resume "
                                  f"from (unknown, or discarded)")
            if cp.pipeline_id != self.pipeline.id:
                raise ResumeError(
                    f"run {run_id} was checkpointed by pipeline {cp.pipeline_id!r}, not {self.pipeline.id!r}"
                )
            try:
                self.pipeline.resolve(tuple(cp.resume_at))
            except KeyError as exc:
                raise ResumeError(
                    f"run {run_id}: checkpoint resumes at {'/'.join(cp.resume_at)!r}, which pipeline "
                    f"{self.pipeline.id!r} does not have: {exc.args[0]}"
                ) from None
            container = resumed_artifacts(store, cp, keep_log=_history_limit(self.history) != 0)
            note = run_note(store.get())
            stored = note.status if note is not None else None
            status = stored if stored in (PREPARED, FAILED, ABORTED) else PAUSED
            return Result.ok(self._context(run_id, store, tuple(cp.resume_at), container, status=status,
                                           router_only=router_only(store)))
        except PipelineError as exc:
            return Result.err(exc)

    async def fork(self, run_id: str, at, *, new_run_id: str | None = None) -> Result:
        """A new run from before record ``at`` of run ``run_id``'s history (SPEC 10); the source is unchanged.

        ``at``: a record index (negative counts from the end) or a stage
        address (``"train/fit"``, or ``"train"`` for that sub-pipeline stage's
        last visit), meaning that stage's last record. The new run starts
        with the state before that record, the records before it, and the
        artifacts as they were before that stage ran (shared, not copied).
        """
        try:
            history, artifacts, rows = await self._source(run_id)
            i = fork_index(history, at, run_id)
            record = history[i]
            address = record.address[: -len(EDIT)] if record.is_edit else record.address
            entry = tuple(address.split("/"))
            try:
                self.pipeline.resolve(entry)
            except KeyError as exc:
                raise ResumeError(f"cannot fork run {run_id} at {at!r}: pipeline {self.pipeline.id!r} has no stage "
                                  f"{address!r}: {exc.args[0]}") from None
            new_id = new_run_id if new_run_id is not None else uuid7()
            if not isinstance(new_id, str) or not new_id:
                raise ResumeError(f"new_run_id must be a non-empty str, got {new_id!r}")
            if self.registry is not None and self.registry.get_live_context(new_id) is not None:
                raise ResumeError(f"run id {new_id!r} is already in use by a live run")
            store = await self._open_store(new_id)
            if store.get():
                raise ResumeError(f"run id {new_id!r} already has state in its store; fork with another new_run_id")
            head = history.head(i)
            state = history.state_before(i)
            stage = self.pipeline.resolve(entry)[-1]
            cp = PipelineCheckpoint(run_id=new_id, pipeline_id=self.pipeline.id, resume_at=entry,
                                    paused_at_stage_id=stage.id, paused_at_stage_label=stage.label, paused_on=now_iso())
            with store.transaction():
                if state:
                    store.set(state)
                # Where it came from, read by any process (Compare with source); a durable store's checkpoint too.
                store.set(fork_patch(ForkSource(run_id, i, record.seq), cp if store.durable else None))
                if store.keeps_history and _history_limit(self.history) != 0:
                    for row in rows_of(head):
                        store.append_history(row)
                if store.keeps_artifacts:  # the versions are shared with the source run, not written again
                    store.copy_artifacts(run_id, record.seq)
                    for seq, outputs in outputs_of(rows, before=record.seq).items():  # the new rows carry none
                        store.write_artifacts(seq, outputs)
            mark = history.mark(i)
            if artifacts is not None and mark >= 0:
                container = artifacts.as_of(mark)
            elif store.keeps_artifacts:
                container = ArtifactContainer(store.load_artifacts(), keep_log=True)
            else:
                container = artifacts.as_of(0) if artifacts is not None else None
            return Result.ok(self._context(new_id, store, entry, container, status=PREPARED,
                                           history=head if _history_limit(self.history) != 0 else None))
        except PipelineError as exc:
            return Result.err(exc)

    async def run_history(self, run_id: str) -> History:
        """Run ``run_id``'s history, read without resuming it: its context's if this process holds it, else
        rebuilt from its store (a durable store keeps it, so this works after a restart). Nothing runs;
        ResumeError naming the run when no history of it is here."""
        return (await self._source(run_id, "read the history of", artifacts=False))[0]

    async def _source(self, run_id: str, doing: str = "fork", artifacts: bool = True):
        """(history, artifacts or None, its history rows when its store keeps artifacts) of a run: its context if
        this process holds it, else its store (``artifacts=False``: the history only, nothing else read)."""
        if not isinstance(run_id, str) or not run_id:
            raise ResumeError(f"run_id must be a non-empty str, got {run_id!r}")
        ctx = self.registry.get_context(run_id) if self.registry is not None else None
        if ctx is not None:
            rows = ctx.store.load_history() if artifacts and ctx.store.keeps_artifacts else ()  # their step outputs
            return ctx.history, ctx.artifacts, rows
        store = await self._open_store(run_id)
        rows = store.load_history() if store.keeps_history else []
        if not rows:
            self._release(run_id)
            raise ResumeError(f"cannot {doing} run {run_id}: no history of it here (unknown run, or a run whose "
                              f"store keeps no history and whose context is gone)")
        if not artifacts:  # only read: the store is not kept open for it
            self._release(run_id)
            return replay(rows, None), None, ()
        if store.keeps_artifacts:
            return replay(rows, None), None, rows  # the fork reads them from the store, as they were at its record
        cp = read_checkpoint(store, None, run_id)
        bundle = ArtifactContainer.from_bundle(cp.container_bundle, keep_log=True) if cp is not None else None
        return replay(rows, None), bundle, ()

    def fork_sync(self, run_id: str, at, *, new_run_id: str | None = None) -> Result:
        """``fork`` for code outside an event loop (a script, a cell that must not await): runs it on a private loop."""
        from .sync import run_sync

        return run_sync(self.fork(run_id, at, new_run_id=new_run_id))

    def prepare_sync(self, entry=None, run_id: str | None = None, initial_state=None) -> Result:
        """``prepare`` for code outside an event loop: runs it on a private loop."""
        from .sync import run_sync

        return run_sync(self.prepare(entry, run_id, initial_state))

    def resume_sync(self, run_id: str) -> Result:
        """``resume`` for code outside an event loop: runs it on a private loop."""
        from .sync import run_sync

        return run_sync(self.resume(run_id))

    def __repr__(self) -> str:
        return f"PipelineFactory({self.pipeline.id!r})"


class _Keeper:
    """A factory's ``RunKeeper`` (``keeper.py``): its registry and its store provider keep its contexts' runs."""

    __slots__ = ("factory",)

    def __init__(self, factory: PipelineFactory):
        self.factory = factory

    def paused(self, run_id: str, timeout: float | None) -> bool:
        registry = self.factory.registry
        return registry is not None and registry.paused(run_id, timeout)

    def finished(self, run_id: str) -> None:
        self.factory.store_factory.release(run_id)

    def rejoined(self, ctx: RunContext) -> None:
        """A context the registry let go is driven again (its user kept the object): the registry holds it
        again, and its store is the run's store again (a memory store freed with a never-run run)."""
        factory = self.factory
        factory.store_factory.adopt(ctx.run_id, ctx.store)
        if factory.registry is not None:
            factory.registry.register(ctx, ctx.store, release=factory.store_factory.release)

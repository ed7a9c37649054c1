"""Checkpoints: where a paused (or failed) run continues, kept in the run's store.

A checkpoint lives under ``PIPELINE_DATA_KEY`` in the same store as the
state, so it commits in the same transaction as the stage that paused: the
state and "where to continue" can never disagree. User-facing state never
shows that key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
import time

from .state import DELETE, PIPELINE_DATA_KEY, RunNote, run_note


@dataclass(frozen=True, slots=True)
class PipelineCheckpoint:
    """Where a paused (or failed) run continues: the stage address ``resume_at``, the stage it
    stopped at (id and label), when (``paused_on``, ISO-8601 UTC), and the run's artifacts
    exported into it (``container_bundle``) once they left memory.

    Read one with ``ctx.checkpoint`` or ``read_checkpoint(store, pipeline_id, run_id)``.
    """

    run_id: str
    pipeline_id: str
    resume_at: tuple
    paused_at_stage_id: str
    paused_at_stage_label: str
    paused_on: str
    container_bundle: dict | None = None

    def with_bundle(self, bundle: dict | None) -> PipelineCheckpoint:
        """A copy holding ``bundle`` (the exported artifacts) instead."""
        return replace(self, container_bundle=bundle)

    def to_dict(self) -> dict:
        """Plain fields for display: ``resume_at`` as a list, the bundle as its artifact names."""
        d = asdict(self)
        d["resume_at"] = list(self.resume_at)
        d["container_bundle"] = None if self.container_bundle is None else sorted(
            self.container_bundle.get("artifacts", {})
        )
        return d


_second: tuple[int, str] = (-1, "")  # last whole second formatted (pauses can come thousands a second)
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


def now_iso(_time=time.time) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2026-11-25T12:00:00.123Z``."""
    global _second
    sec, ms = divmod(int(_time() * 1000), 1000)
    cached = _second
    if cached[0] != sec:
        cached = _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return cached[1] + _MILLIS[ms]


_SET = tuple(getattr(PipelineCheckpoint, f).__set__ for f in PipelineCheckpoint.__slots__)


def stamped(run_id: str, pipeline_id: str, resume_at: tuple, stage_id: str, label: str, _new=object.__new__,
            _set=_SET) -> PipelineCheckpoint:
    """A checkpoint at ``resume_at`` stamped now, without a bundle: the engine's, one per pause (its slots filled
    directly, at a third of what the frozen dataclass's keyword ``__init__`` costs)."""
    cp = _new(PipelineCheckpoint)
    _set[0](cp, run_id)
    _set[1](cp, pipeline_id)
    _set[2](cp, resume_at)
    _set[3](cp, stage_id)
    _set[4](cp, label)
    _set[5](cp, now_iso())
    _set[6](cp, None)
    return cp


def checkpoint_patch(cp: PipelineCheckpoint | None, router_only: bool = False, status: str | None = None) -> dict:
    """The store patch that writes (or, for None, clears) a checkpoint.

    ``router_only`` marks a pipeline stage whose sub-pipeline already finished:
    resuming there runs only that stage's router, never the sub-pipeline again.
    ``status`` is what the run was when the checkpoint was written (``"paused"``,
    ``"failed"``, ``"running"`` for a durable store's per-commit cursor...), so a
    list of stored runs can say what each one is without loading it.
    """
    if cp is None:
        return {PIPELINE_DATA_KEY: DELETE}
    return {PIPELINE_DATA_KEY: {"checkpoint": cp, "router_only": True if router_only else DELETE,
                                "status": status if status is not None else DELETE}}


def finished_patch(pipeline_id: str, status: str) -> dict:
    """The store patch of a run that ended for good (``"completed"``, ``"terminated"``): no checkpoint (nothing
    resumes it), but a note of its pipeline, status and end time (epoch seconds), so a later process lists it
    and ``resume`` refuses it by name. The note's other entries (the run it was forked from) are kept."""
    return {PIPELINE_DATA_KEY: {"checkpoint": DELETE, "router_only": DELETE, "status": status,
                                "pipeline_id": pipeline_id, "ended": time.time()}}


def stored_status(data) -> str | None:
    """The status a store's reserved data says its run had (None: unknown)."""
    note = RunNote.of(data)
    return note.status if note is not None else None


def router_only(store) -> bool:
    """Whether the stored checkpoint resumes at a sub-pipeline stage's router (engine-internal)."""
    note = run_note(store.get())
    return note is not None and note.router_only


def write_checkpoint(store, cp: PipelineCheckpoint) -> None:
    """Store ``cp`` in the run's ``store`` under the engine's reserved key (the other engine notes are kept)."""
    if not isinstance(cp, PipelineCheckpoint):
        raise TypeError(f"write_checkpoint needs a PipelineCheckpoint, got {type(cp).__name__}")
    store.set({PIPELINE_DATA_KEY: {"checkpoint": cp}})  # merges: keeps the engine's other notes


def read_checkpoint(store, pipeline_id: str | None, run_id: str) -> PipelineCheckpoint | None:
    """The checkpoint in ``store`` for run ``run_id`` (and ``pipeline_id``, unless None), or None when there is none."""
    note = run_note(store.get())
    cp = note.checkpoint if note is not None else None
    if not isinstance(cp, PipelineCheckpoint) or cp.run_id != run_id:
        return None
    if pipeline_id is not None and cp.pipeline_id != pipeline_id:
        return None
    return cp


def clear_checkpoint(store, pipeline_id: str | None, run_id: str) -> None:
    """Remove the checkpoint of run ``run_id`` from ``store``, if there is one."""
    if read_checkpoint(store, pipeline_id, run_id) is not None:
        store.set(checkpoint_patch(None))

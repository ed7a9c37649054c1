"""What a run's store keeps beside its checkpoint: how a finished run ended, which run a fork came from,
and whether the user removed a finished run from the lists (SPEC 14).

A finished run (completed, terminated) keeps no checkpoint, so nothing can
resume it, but its store keeps a small note under the engine's reserved key
(``checkpoints.finished_patch``): its pipeline, status and end time. A later
process lists it from there (``factory.runs()``), ``resume`` refuses it by
run id and status, and ``factory.open`` rebuilds it to look at. A fork's
note says where it came from, so "Compare with source" works for any fork,
in any process. The note is a plain mapping in the state the store already
keeps: no store needs a new capability, and a SQLite file needs no new table.
"""

from __future__ import annotations

from typing import NamedTuple

from .checkpoints import finished_patch
from .lifecycle import COMPLETED, FINISHED, PREPARED, TERMINATED
from .sentinel import DELETE
from .state import PIPELINE_DATA_KEY, RunNote, run_note

_CURSOR = frozenset(("checkpoint", "router_only", "status"))  # the note's entries about where the run continues


class ForkSource(NamedTuple):
    """The run a fork was made from (``factory.fork``): its run id, the index of the record of its history the
    fork was made at (the fork starts with the state before it) and that record's seq."""

    run_id: str
    at: int
    seq: int


class EndedRun(NamedTuple):
    """What a store's note says of a run that ended for good: its pipeline, its status, when (epoch seconds)."""

    pipeline_id: str
    status: str
    ended: float | None


def fork_patch(source: ForkSource, checkpoint=None) -> dict:
    """The store patch of a new fork: where it came from (a plain tuple: a file never names a pipenb class), and,
    for a durable store, the checkpoint it starts at (so a crash before its first stage leaves a prepared run)."""
    note: dict = {"forked_from": tuple(source)}
    if checkpoint is not None:
        note.update(checkpoint=checkpoint, status=PREPARED)
    return {PIPELINE_DATA_KEY: note}


def hide_patch() -> dict:
    """The store patch that takes a finished run out of the stored runs listed (its data stays)."""
    return {PIPELINE_DATA_KEY: {"hidden": True}}


def fork_source_of(note: RunNote | None) -> ForkSource | None:
    """The ``ForkSource`` a run's note records (None: not a fork, or a note this pipenb cannot read)."""
    value = note.get("forked_from") if note is not None else None
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], str):
        return ForkSource(*value)
    return None


def fork_source(state) -> ForkSource | None:
    """The ``ForkSource`` a run's store state records, or None."""
    return fork_source_of(run_note(state))


def ended_of(note: RunNote | None) -> EndedRun | None:
    """The ``EndedRun`` a note records: a run that finished (no checkpoint left, a finished status), else None."""
    if note is None or note.checkpoint is not None or note.status not in FINISHED:
        return None
    pipeline_id = note.get("pipeline_id")
    return EndedRun(pipeline_id, note.status, note.get("ended")) if isinstance(pipeline_id, str) else None


def is_hidden(note: RunNote | None) -> bool:
    """Whether the user removed the run from the lists (``factory.remove``)."""
    return note is not None and bool(note.get("hidden"))


def keep_extras(old, note: RunNote) -> RunNote:
    """``note`` (a new checkpoint's, swapped in whole) with what the ``old`` note says beside the checkpoint (a
    fork's source), so a commit that replaces the note never forgets it."""
    if not old or old.keys() <= _CURSOR:  # the usual pause: nothing beside the checkpoint (a set test, in C)
        return note
    return RunNote({**{k: v for k, v in old.items() if k not in _CURSOR}, **note})


def cleared(old) -> RunNote | None:
    """The ``old`` note without its checkpoint (the run ended with a commit): None when nothing else is in it."""
    extras = {k: v for k, v in old.items() if k not in _CURSOR} if old else None
    return RunNote(extras) if extras else None


def end_patch(old, terminated: bool) -> dict:
    """The store patch of the note with a run's last commit: no checkpoint any more, and, when ``old`` names the
    pipeline (a durable store's cursor checkpoint), the finished note at once, in the same transaction as the last
    stage, so a process that dies right after it still leaves the run listed. The rest (a fork's source) stays."""
    cp = old.checkpoint if old else None
    if cp is not None:
        return finished_patch(cp.pipeline_id, TERMINATED if terminated else COMPLETED)
    if cleared(old) is None:
        return {PIPELINE_DATA_KEY: DELETE}
    return {PIPELINE_DATA_KEY: dict.fromkeys(_CURSOR, DELETE)}


def ended_note(old, terminated: bool) -> RunNote | None:
    """``end_patch`` as the whole note (a commit that swaps in a new state whole)."""
    cp = old.checkpoint if old else None
    if cp is None:
        return cleared(old)
    patch = end_patch(old, terminated)[PIPELINE_DATA_KEY]
    return RunNote({**(cleared(old) or {}), **{k: v for k, v in patch.items() if v is not DELETE}})


def needs_end_note(store, status: str) -> bool:
    """Whether a run that ended ``status`` still has to write its finished note (``checkpoints.finished_patch``):
    a durable store (listed after a restart) or one holding a note already, unless its last commit wrote it."""
    note = run_note(store.get())
    if note is None:
        return store.durable
    return note.checkpoint is not None or note.status != status or "ended" not in note


def hide(store) -> bool:
    """Mark the finished run of ``store`` (None: nothing) removed, so no ``factory.runs()`` lists it from there
    again; its data stays. False when the store keeps no finished note of it (nothing to hide)."""
    note = run_note(store.get()) if store is not None else None
    if ended_of(note) is None:
        return False
    if not is_hidden(note):
        store.set(hide_patch())
    return True

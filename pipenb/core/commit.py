"""A stage commits all or nothing: its patches and what its plan writes, in one write.

With a store that keeps artifacts, the artifacts the stage put or replaced
(and its step outputs) are written in the same transaction; one that cannot
be pickled is skipped (named in the answer), never a failed commit. The
step outputs ride in the stage's history row; ``outputs_of`` and
``resumed_artifacts`` read them back, with the store's artifacts, for a
fork or a resume.

The engine has already merged the stage's patches into the state it hands
in, so a store that can swap that state in (``compare_and_set``) commits
without merging twice; any other store gets the patches in one
``transaction()``. What goes with them (a checkpoint, its removal, a history
row) is the stage's ``StagePlan``. A failure of any kind keeps nothing of
the stage and is reported as a ``StoreError`` naming the run and the stage.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .artifacts import ArtifactContainer
from .checkpoints import PipelineCheckpoint, checkpoint_patch
from .errors import StoreError
from .kept import end_patch, ended_note, keep_extras
from ._logs import warn
from .plan import StagePlan
from .state import PIPELINE_DATA_KEY, RunNote, run_note, with_note


class StageWork(NamedTuple):
    """What running a stage produced: its steps' patches and results, the state they made, the store
    snapshot that state was built on (None when the stage ran no steps) and its user state (``base``)."""

    patches: Any
    results: dict
    working: Any
    snapshot: Any
    base: Any


def commit_stage(store, run_id: str, plan: StagePlan, cp: PipelineCheckpoint | None, work: StageWork,
                 row: tuple | None = None, artifacts: list | None = None) -> dict | None:
    """Write a stage's patches with what ``plan`` says (``cp`` its checkpoint, ``row`` its history row,
    ``artifacts`` the ``(seq, items)`` groups for ``store.write_artifacts``); the artifacts not written (key -> why)."""
    patches, snapshot = work.patches, work.snapshot
    if not patches and cp is None and not plan.clear and row is None and artifacts is None:
        return None
    skipped = None
    try:
        if snapshot is not None and row is None and artifacts is None:
            note = snapshot.get(PIPELINE_DATA_KEY)  # what it says beside the checkpoint (a fork's source) stays
            if cp is not None:
                note = keep_extras(note, RunNote.make(cp, plan.router_only, plan.status))
            elif plan.clear:  # else the store's note stays (a Snapshot holds it as a RunNote; with_note takes any)
                note = ended_note(note, plan.terminated)
            new = work.working if note is None else with_note(work.working, note)
            if store.compare_and_set(snapshot, new):
                return None
        with store.transaction():
            for patch in patches:
                store.set(patch)
            if cp is not None:
                store.set(checkpoint_patch(cp, plan.router_only, plan.status))
            elif plan.clear:
                store.set(end_patch(run_note(store.get()), plan.terminated))
            if row is not None:
                store.append_history(row)
            if artifacts is not None:  # pickled now, written with the rest: an unpicklable one is only skipped
                skipped = {}
                for seq, items in artifacts:
                    skipped.update(store.write_artifacts(seq, items))
    except Exception as exc:
        where = "/".join(plan.address)
        raise StoreError(
            f"run {run_id}: commit of stage {where!r} failed, nothing of it was kept: "
            f"{type(exc).__name__}: {exc}" if not isinstance(exc, StoreError) else
            f"commit of stage {where!r} failed, nothing of it was kept: {exc}"
        ) from exc
    return skipped


def stage_artifacts(artifacts, address: tuple, results: dict, row: tuple | None, history, since: int) -> tuple | None:
    """``(tick, [(seq, items), ...])`` a stage commit writes to a store that keeps artifacts: what was put since the
    last commit and the stage's step outputs (recorded now, so they commit with it) unless its history row carries
    them (``HistoryRow.outputs``: no bytes of their own); None when nothing changed.

    ``seq`` is the stage's history row's, so a fork at record ``s`` reads what
    was written before ``s``; what was put before the stage began (tick
    ``since``: from a cell while the run was paused) gets the seq before it.
    A commit without a row writes at the seq before the next record (0
    without history)."""
    if results:
        artifacts.record("/".join(address) + "/", results, saved=row is not None and row[9] is not None)
    tick, items = artifacts.unsaved()
    if not items:
        return None
    if row is None:
        return tick, [(history.next_seq - 1 if history is not None else 0, items)]
    before = artifacts.unsaved(upto=since)[1]
    if not before:
        return tick, [(row[0], items)]
    early = {item[0] for item in before}
    return tick, [(row[0] - 1, before), (row[0], [item for item in items if item[0] not in early])]


def artifacts_saved(artifacts, tick: int, skipped: dict | None, logger, run_id: str) -> None:
    """The commit wrote the artifacts up to ``tick`` but ``skipped``: a warning names each newly skipped one once."""
    for key, why in artifacts.saved(tick, skipped).items():
        warn(logger, f"run {run_id}: artifact {key!r} was not saved to the run's store ({why}); it is lost if this "
                     f"kernel restarts, and reading it after a resume or fork raises ArtifactNotSavedError", None)


def outputs_of(rows, before: int | None = None) -> dict[int, list]:
    """Seq -> ``(key, output, True)`` of the step outputs the history ``rows`` (``HistoryRow``) carry (the artifacts
    ``"<address>/<step id>"`` of a store that keeps artifacts), for the rows before seq ``before`` if given."""
    out: dict[int, list] = {}
    for row in rows:
        if len(row) > 9 and row[9] and (before is None or row[0] < before):
            out.setdefault(row[0], []).extend((f"{row[1]}/{step}", value, True) for step, value in row[9].items())
    return dict(sorted(out.items()))


def resumed_artifacts(store, cp: PipelineCheckpoint, keep_log: bool) -> ArtifactContainer:
    """A resumed run's artifacts: the checkpoint's bundle (stores without ``keeps_artifacts``, and files written
    before they had one), with the step outputs its history rows carry and what the store committed on top."""
    container = ArtifactContainer.from_bundle(cp.container_bundle, keep_log=keep_log)
    if not store.keeps_artifacts:
        return container
    items = dict(container.items())
    items.update(store.load_artifacts())

    def step_outputs() -> dict:  # carried by the history rows: read when first needed, not at every resume
        return {key: value for outputs in outputs_of(store.load_history()).values() for key, value, _ in outputs}

    return ArtifactContainer(items, keep_log=keep_log, more=step_outputs if store.keeps_history else None)

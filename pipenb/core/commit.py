"""A stage commits all or nothing: its patches and the engine's checkpoint note in one write.

The engine has already merged the stage's patches into the state it hands
in, so a store that can swap that state in (``compare_and_set``) commits
without merging twice; any other store gets the patches in one
``transaction()``. A failure of any kind keeps nothing of the stage and is
reported as a ``StoreError`` naming the run and the stage.
"""

from __future__ import annotations

from .checkpoints import PipelineCheckpoint, checkpoint_patch
from .errors import StoreError
from .lifecycle import RUNNING
from .state import PIPELINE_DATA_KEY, FrozenDict, with_key


def commit_stage(store, run_id: str, addr: tuple, patches, cp: PipelineCheckpoint | None, snapshot, working,
                 clear: bool = False, router_only: bool = False, row: tuple | None = None,
                 status: str = RUNNING) -> None:
    """Write a stage's patches and its checkpoint (or the checkpoint's removal, ``clear``) together,
    with its history ``row`` when the store keeps history.

    ``snapshot`` is the store state the stage built ``working`` on (None when
    the stage ran no steps).
    """
    if not patches and cp is None and not clear and row is None:
        return
    try:
        if snapshot is not None and row is None:
            if cp is not None:
                reserved = (FrozenDict(checkpoint=cp, router_only=True, status=status) if router_only
                            else FrozenDict(checkpoint=cp, status=status))
            else:
                reserved = None if clear else snapshot.get(PIPELINE_DATA_KEY)
            new = working if reserved is None else with_key(working, PIPELINE_DATA_KEY, reserved)
            if store.compare_and_set(snapshot, new):
                return
        with store.transaction():
            for patch in patches:
                store.set(patch)
            if cp is not None or clear:
                store.set(checkpoint_patch(cp, router_only, status))
            if row is not None:
                store.append_history(row)
    except Exception as exc:
        raise StoreError(
            f"run {run_id}: commit of stage {'/'.join(addr)!r} failed, nothing of it was kept: "
            f"{type(exc).__name__}: {exc}" if not isinstance(exc, StoreError) else
            f"commit of stage {'/'.join(addr)!r} failed, nothing of it was kept: {exc}"
        ) from exc

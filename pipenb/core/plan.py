"""What a stage's answer means: where the run goes on and what the stage's commit writes.

One pure function, ``plan_stage``, decides it from the definition, the stage,
its address, the router's decision, where the level goes on when it ends,
whether the store is durable and what history is kept. No I/O, no lifecycle:
the engine runs a stage, asks for its plan, commits what the plan says and
reports it (the engine's ``_stage``). The decision table is in
``tests/test_plan.py``.

- ``Pause(s)``: a checkpoint at ``s`` (same level), status ``"paused"``.
- a durable store also learns where to continue after *every* stage, so a
  process that dies after this commit resumes at the next stage, never
  redoing this one: the next address, or the parent stage's router
  (``router_only``) when a sub-pipeline ends under a stage with a router, or
  a cleared checkpoint when the run ends. A sub-pipeline stage without a
  router writes nothing of its own: its sub-stages already wrote where the
  run goes on.
- a history row commits with a stage that has steps when the store keeps
  history rows; a record is kept in memory when the factory keeps history.
"""

from __future__ import annotations

from typing import NamedTuple

from .lifecycle import PAUSED, RUNNING
from .routing import Pause
from .sentinel import END

HISTORY_OFF, HISTORY_MEMORY, HISTORY_ROWS = 0, 1, 2
"""What history a run keeps: none, records in memory, records in memory and rows in its store."""


class RouterOnly(tuple):
    """``after`` of a sub-pipeline whose parent stage has a router: the run goes back to that router."""


class StagePlan(NamedTuple):
    """Where the run goes on after one stage, and what that stage's commit writes."""

    address: tuple          # the stage's address
    goto: int | None        # index of the next stage of the same level; None: the level ends here
    terminated: bool        # the level ended by ``END`` (else by running past its last stage, or a pause)
    paused: bool            # the router paused the run
    resume_at: tuple | None  # where the checkpoint written with the stage continues; None: none written
    router_only: bool       # ... at that (pipeline) stage's router only: its sub-pipeline already ran
    clear: bool             # the run ends with this commit: its checkpoint is removed
    status: str             # the run's status stored with the checkpoint: "paused" or "running"
    row: bool               # a history row commits with the stage
    record: bool            # a history record is kept in memory

    @property
    def writes(self) -> bool:
        """Whether the commit writes anything besides the stage's patches."""
        return self.resume_at is not None or self.clear or self.row


_new = tuple.__new__


def next_address(pipe, stage, addr: tuple, decision, after: tuple | None) -> tuple | None:
    """Where the run goes on after ``stage`` decided ``decision`` (not a pause): an address, ``()`` when the
    run ends, ``after`` (a ``RouterOnly`` included) when this level ends."""
    if decision is END:
        return after
    if decision is not None:
        return addr[:-1] + (decision,)
    i = pipe.position[stage.id] + 1
    return addr[:-1] + (pipe.ordered[i].id,) if i < len(pipe.ordered) else after


def sub_after(pipe, stage, addr: tuple, after: tuple | None) -> tuple | None:
    """Where the run goes on when the sub-pipeline of the pipeline stage ``stage`` ends."""
    if stage.router is not None:
        return RouterOnly(addr)
    return next_address(pipe, stage, addr, None, after)


def plan_stage(pipe, stage, addr: tuple, decision, after: tuple | None, durable: bool, history: int) -> StagePlan:
    """The plan of ``stage`` (at ``addr`` in ``pipe``) that decided ``decision`` (checked already).

    ``after``: where the run goes on when this level ends (``()``: the run
    ends; a ``RouterOnly``: the parent stage's router). ``durable``: the
    store outlives the process. ``history``: ``HISTORY_OFF``,
    ``HISTORY_MEMORY`` or ``HISTORY_ROWS``.
    """
    leaf = stage.pipeline is None
    row = history == HISTORY_ROWS and leaf
    record = history != HISTORY_OFF and leaf
    if decision is None and not durable:  # the hot path: advance, nothing written but the patches
        i = pipe.position[stage.id] + 1
        return _new(StagePlan, (addr, i if i < len(pipe.ordered) else None, False, False, None, False, False,
                                RUNNING, row, record))
    if decision is None:
        i = pipe.position[stage.id] + 1
        goto, terminated = (i, False) if i < len(pipe.ordered) else (None, False)
    elif decision is END:
        goto, terminated = None, True
    elif type(decision) is Pause:
        return _new(StagePlan, (addr, None, False, True, addr[:-1] + (decision.stage_id,), False, False, PAUSED,
                                row, record))
    else:
        goto, terminated = pipe.position[decision], False
    if not durable or (not leaf and stage.router is None):
        return _new(StagePlan, (addr, goto, terminated, False, None, False, False, RUNNING, row, record))
    if goto is not None:
        nxt = addr[:-1] + (pipe.ordered[goto].id,)
    else:
        nxt = after
    if type(nxt) is RouterOnly:
        return _new(StagePlan, (addr, goto, terminated, False, tuple(nxt), True, False, RUNNING, row, record))
    return _new(StagePlan, (addr, goto, terminated, False, nxt or None, False, nxt == (), RUNNING, row, record))

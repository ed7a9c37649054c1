"""How a drive ends: the ``Outcome`` the engine hands its context, and the ``PauseSignal`` a pause travels in.

Kept apart from the engine because both cross its edge: the context reads an
outcome, and a pause inside a sub-pipeline unwinds its parent stages as a
signal (each level closes its ``stage:start``/``pipeline:start`` with a
matching event on the way out), while a pause at the root level is simply
returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .checkpoints import PipelineCheckpoint
    from .errors import PipelineError


class Outcome:
    """How a drive ended: completed/terminated/paused (with its checkpoint and timeout), or failed/aborted (with
    the error)."""

    __slots__ = ("status", "checkpoint", "error", "timeout")

    def __init__(
        self,
        status: str,
        checkpoint: PipelineCheckpoint | None = None,
        error: PipelineError | None = None,
        timeout: float | None = None,
    ):
        self.status = status
        self.checkpoint = checkpoint
        self.error = error
        self.timeout = timeout  # a pause's own timeout (None: the registry's default)


class PauseSignal(Exception):
    """A pause on its way out of the levels: its checkpoint, timeout, reason (``"router"``, ``"breakpoint"``,
    ``"step"``, ``"request"``...) and the router's ``Pause`` instruction, if a router paused."""

    def __init__(self, checkpoint: PipelineCheckpoint, timeout: float | None, reason: str, instruction):
        self.checkpoint = checkpoint
        self.timeout = timeout
        self.reason = reason
        self.instruction = instruction

"""``StepContext``: what a step's second argument offers while it runs."""

from __future__ import annotations


class StepContext:
    """What a step's second argument offers: ids, the path, artifacts, signal, logger."""

    __slots__ = ("run_id", "stage_id", "step_id", "path", "artifacts", "signal", "logger")

    def __init__(self, run_id, stage_id, step_id, path, artifacts, signal, logger):
        self.run_id = run_id
        self.stage_id = stage_id
        self.step_id = step_id
        self.path = path
        self.artifacts = artifacts
        self.signal = signal
        self.logger = logger

    def __repr__(self) -> str:
        return f"StepContext(run_id={self.run_id!r}, stage={self.stage_id!r}, step={self.step_id!r})"

"""``RunKeeper``: the three things a run's context tells whoever keeps its run (its factory).

A context drives its run; its factory keeps it: the store provider holds the
run's store, the registry holds the live context. Three moments of a drive
concern them, and the context says each one through this one small
protocol, not through callbacks wired one by one: the run paused (the
registry arms its timeout, or exports and lets it go at once), the run
finished (a memory store may be freed), and a run the registry had let go
is driven again (it must hold the context again, or a later resume would
rebuild another one).
"""

from __future__ import annotations

from typing import Protocol


class RunKeeper(Protocol):
    """Whoever keeps a run (``PipelineFactory`` makes one for each of its contexts)."""

    def paused(self, run_id: str, timeout: float | None) -> bool:
        """The run paused (``timeout``: its pause's own, None for the default); True when the stored checkpoint
        was rewritten meanwhile (the artifacts exported into it), so the context reads it again."""

    def finished(self, run_id: str) -> None:
        """The run ended for good (completed or terminated)."""

    def rejoined(self, ctx) -> None:
        """``ctx``, whose run the registry had let go, is being driven again: keep it again."""

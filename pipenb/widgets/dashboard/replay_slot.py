"""The dashboard's replay slot: under the graph, the ``RunReplay`` its Replay and Compare with source buttons open.

It exists so the dashboard holds one part for replays: the slot makes the
replay with the events the dashboard recorded for both runs, replaces (and
closes) the one shown before, and closes it with the dashboard.
"""

from __future__ import annotations

import ipywidgets as widgets


class ReplaySlot(widgets.VBox):
    """Where the dashboard shows a replay; ``events_of(run_id)`` gives the events the dashboard saw of a run."""

    def __init__(self, events_of):
        super().__init__([], layout=widgets.Layout(width="100%"))
        self.add_class("pipenb-replay-box")
        self.events_of = events_of
        self.replay = None  # the RunReplay shown, if any

    def show(self, ctx, compare=None) -> None:
        """Show a replay of ``ctx`` (beside ``compare``: a context, or ``(factory, run_id)``), nothing run again."""
        from ..replay import RunReplay

        other = getattr(compare, "run_id", None)
        replay = RunReplay(
            ctx,
            compare=compare,
            events=self.events_of(ctx.run_id),
            compare_events=self.events_of(other) if other is not None else None,
        )
        if self.replay is not None:
            self.replay.close()
        self.replay = replay
        self.children = [replay]

    def close(self) -> None:
        """Close the replay shown and this slot."""
        if self.replay is not None:
            self.replay.close()
        super().close()

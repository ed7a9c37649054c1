"""Notebook widgets: a live stage graph, a live event table, a run dashboard, and a run's replay.

They use the engine's public API only (``ctx.on``, the run controls and the
registry), and load ipywidgets/anywidget/pandas on import of this package,
never on ``import pipenb``.
"""

from .dashboard import RunDashboard
from .event_table import EventTable
from .panel import RunPanel
from .replay import RunReplay
from .stage_graph import StageGraph
from .timeline_view import TimelineView

__all__ = ["EventTable", "RunDashboard", "RunPanel", "RunReplay", "StageGraph", "TimelineView"]

"""The run dashboard and its parts, one module each, with their JS and CSS beside them.

``RunDashboard`` (dashboard.py) owns the parts: ``RunControl`` (what the
buttons do to runs), the run buttons (toolbar.py), ``RunsList``,
``HistoryView``, ``StateEditor``, ``RunErrors`` and ``PickTable`` (the
compact table the runs and history lists are). They live in this package so
the views shared with other widgets (``StageGraph``, ``EventTable``, the
follower, snapshots) stay one level up, in ``pipenb.widgets``.
"""

from .dashboard import RunDashboard

__all__ = ["RunDashboard"]

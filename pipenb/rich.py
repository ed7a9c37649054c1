"""Rich display of runs in IPython, wired from outside the engine.

The engine knows nothing of notebooks. ``install()`` (called by ``import
pipenb``) registers, with the running IPython if there is one, how a
``RunContext`` shown as a cell's result becomes a live panel (plus a static
HTML snapshot under the panel's display id, refreshed when the run pauses or
ends) and how a ``PipelineRunResult`` becomes a small HTML summary. Widgets
are imported only when a run is actually shown.
"""

from __future__ import annotations

import sys

from .display import run_context_html, run_result_html


def _live_panel(ctx):
    """The context's one live ``RunPanel`` (or None where widgets are not installed)."""
    try:
        from .widgets.panel import RunPanel
    except ImportError:  # widgets not installed: the HTML summary is enough
        return None
    return RunPanel.for_context(ctx)


def run_context_mimebundle(ctx, include=None, exclude=None):
    """A live panel where widgets render; elsewhere a static snapshot of it (status, graph, state).

    Every display of one context shows the same panel (no new widget, no new listener).
    """
    bundle = {"text/plain": repr(ctx), "text/html": run_context_html(ctx)}
    panel = _live_panel(ctx)
    if panel is not None:
        data = panel.mimebundle(include=include, exclude=exclude)
        bundle.update(data)
        bundle["text/plain"] = repr(ctx)
    return bundle


def display_run_context(ctx) -> None:
    """Show ``ctx`` under its panel's display id, so the snapshot is refreshed when the run pauses or ends."""
    from IPython.display import display

    panel = _live_panel(ctx)
    if panel is None:
        display(run_context_mimebundle(ctx), raw=True)
        return
    display(run_context_mimebundle(ctx), raw=True, display_id=panel.display_id)
    panel.mark_shown()


def install() -> None:
    """Register the rich display of runs and results with the running IPython, if any.

    The engine knows nothing of notebooks: this is where a ``RunContext``
    shown as a cell's result becomes a live panel (plus its static snapshot,
    under the panel's display id), and a ``PipelineRunResult`` a small HTML
    summary.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    from .core.context import RunContext
    from .core.result import PipelineRunResult

    formatter = shell.display_formatter
    formatter.formatters["text/html"].for_type(PipelineRunResult, run_result_html)
    formatter.mimebundle_formatter.for_type(RunContext, run_context_mimebundle)
    formatter.ipython_display_formatter.for_type(RunContext, display_run_context)

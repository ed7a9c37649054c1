"""HTML for notebooks: a run's state (nested values folded, DataFrames as a head
preview), its checkpoint, and the rich display of runs and results.

Every piece of user text goes through ``html.escape`` (pandas' ``to_html``
escapes by default too). Plain HTML only: the widgets reuse it, and it loads
nothing heavy.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Mapping

_MAX_KEYS = 50


def _short(value, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def value_html(value, depth: int = 0) -> str:
    if isinstance(value, Mapping):
        inner = mapping_html(value, depth + 1)
        return f"<details{' open' if depth == 0 and len(value) <= 3 else ''}><summary>{len(value)} keys</summary>{inner}</details>"
    if type(value).__name__ == "DataFrame" and hasattr(value, "head") and hasattr(value, "shape"):
        rows, cols = value.shape
        preview = value.head(5).to_html(max_cols=12, border=0, classes="pipenb-df")
        return f"<details><summary>DataFrame {rows} × {cols}</summary>{preview}</details>"
    if isinstance(value, (list, tuple)) and len(value) > 5:
        items = "".join(f"<li>{html.escape(_short(v))}</li>" for v in value[:20])
        more = f"<li>… {len(value) - 20} more</li>" if len(value) > 20 else ""
        return f"<details><summary>{type(value).__name__} of {len(value)}</summary><ol>{items}{more}</ol></details>"
    return f"<code>{html.escape(_short(value))}</code>"


def mapping_html(state, depth: int = 0) -> str:
    if not state:
        return "<i>empty</i>"
    rows = []
    for i, (key, value) in enumerate(state.items()):
        if i == _MAX_KEYS:
            rows.append(f"<tr><td colspan=2>… {len(state) - _MAX_KEYS} more keys</td></tr>")
            break
        rows.append(f"<tr><th>{html.escape(str(key))}</th><td>{value_html(value, depth)}</td></tr>")
    return f'<table class="pipenb-state">{"".join(rows)}</table>'


def state_html(state) -> str:
    return f'<div class="pipenb-state-view"><b>state</b>{mapping_html(state)}</div>'


def checkpoint_html(cp) -> str:
    if cp is None:
        return '<div class="pipenb-checkpoint-view"><b>checkpoint</b> <i>none</i></div>'
    d = cp.to_dict()
    d["resume_at"] = "/".join(cp.resume_at)
    d["container_bundle"] = "exported: " + ", ".join(d["container_bundle"]) if d["container_bundle"] is not None \
        else "not exported (live in the kernel)"
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in d.items())
    return f'<div class="pipenb-checkpoint-view"><b>checkpoint</b><table class="pipenb-state">{rows}</table></div>'


def run_result_html(result) -> str:
    cp = result.checkpoint
    where = f" — resumes at <code>{html.escape('/'.join(cp.resume_at))}</code>" if cp is not None else ""
    return (
        f'<div class="pipenb-result"><b>run {html.escape(result.run_id)}</b>: '
        f"<b>{html.escape(result.status)}</b>{where}{mapping_html(result.state)}</div>"
    )


def run_context_html(ctx) -> str:
    cp = ctx.checkpoint
    info = {"status": ctx.status, "at": ctx.position}
    if cp is not None:
        info["paused_on"] = cp.paused_on
    return (
        f'<div class="pipenb-context"><b>{html.escape(ctx.pipeline_id)}</b> run '
        f"<code>{html.escape(ctx.run_id)}</code> <code>{html.escape(json.dumps(info))}</code>"
        f"{mapping_html(ctx.state)}</div>"
    )


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
        data, _ = panel._repr_mimebundle_(include=include, exclude=exclude)
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
    panel._snapshot_shown = True


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

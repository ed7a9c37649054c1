"""Rich notebook display of runs and results: small, escaped HTML summaries."""

from __future__ import annotations

import html
import json


def _short(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _state_rows(state, limit: int = 12) -> str:
    rows = []
    for i, (key, value) in enumerate(state.items()):
        if i == limit:
            rows.append(f"<tr><td colspan=2>… {len(state) - limit} more keys</td></tr>")
            break
        rows.append(f"<tr><td><code>{html.escape(str(key))}</code></td><td><code>{html.escape(_short(value))}</code></td></tr>")
    return "".join(rows) or "<tr><td colspan=2><i>empty</i></td></tr>"


def run_result_html(result) -> str:
    cp = result.checkpoint
    where = f" — resumes at <code>{html.escape('/'.join(cp.resume_at))}</code>" if cp is not None else ""
    return (
        f'<div class="pipenb-result"><b>run {html.escape(result.run_id)}</b>: '
        f"<b>{html.escape(result.status)}</b>{where}"
        f"<table>{_state_rows(result.state)}</table></div>"
    )


def run_context_html(ctx) -> str:
    cp = ctx.checkpoint
    info = {"status": ctx.status, "at": ctx.position}
    if cp is not None:
        info["paused_on"] = cp.paused_on
    return (
        f'<div class="pipenb-context"><b>{html.escape(ctx.pipeline_id)}</b> run '
        f"<code>{html.escape(ctx.run_id)}</code> <code>{html.escape(json.dumps(info))}</code>"
        f"<table>{_state_rows(ctx.state)}</table></div>"
    )


def run_context_mimebundle(ctx, include=None, exclude=None):
    """A live panel where widgets render, the static HTML summary everywhere else."""
    bundle = {"text/plain": repr(ctx), "text/html": run_context_html(ctx)}
    try:
        from .widgets.panel import RunPanel

        panel = RunPanel(ctx)
        bundle.update(panel._repr_mimebundle_(include=include, exclude=exclude) or {})
    except ImportError:  # widgets not installed: the HTML summary is enough
        pass
    bundle["text/html"] = run_context_html(ctx)
    return bundle

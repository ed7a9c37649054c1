"""One self-contained HTML page about a run, to keep, mail or read after the kernel is gone.

``ctx.report(path=None)`` and ``python -m pipenb report FILE.sqlite RUN_ID``
(SPEC 14) both land here: the graph with statuses, the path the run took
(visit counts, moves), the timeline, each record with its diff, the newest
events, the final state and any error. The page is plain HTML with inline
CSS and inline SVG: no script, no link, no font or image fetched, every
piece of user text escaped, so it opens offline and reads anywhere.

The engine knows nothing of reports (core imports nothing outside core):
``install()``, called by ``import pipenb`` as ``rich.install()`` is, attaches
``RunContext.report`` from out here. The drawing modules are imported only
when a report is made, so ``import pipenb`` stays as fast as it was.
"""

from __future__ import annotations

import html
import re
import time

from .display import checkpoint_html, clock, diff_html, duration_text, error_html, state_html

MAX_RECORDS = 500     # records listed (the newest; the timeline keeps them all)
MAX_EVENTS = 200      # newest events listed
_PROLOGUE = re.compile(r"\A\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.IGNORECASE)
_NAMESPACES = re.compile(r'\s+xmlns(?::xlink)?="[^"]*"')
_COMMENTS = re.compile(r"<!--.*?-->", re.DOTALL)

CSS = """
:root { color-scheme: light dark; --fg: #1f2937; --muted: #4b5563; --bg: #ffffff; --panel: #f8fafc;
  --line: rgba(100, 116, 139, 0.35); --bad: #b91c1c; --new: #15803d; --old: #b91c1c; }
@media (prefers-color-scheme: dark) { :root { --fg: #e5e7eb; --muted: #9ca3af; --bg: #111827; --panel: #1f2937;
  --line: rgba(148, 163, 184, 0.35); --bad: #f87171; --new: #4ade80; --old: #f87171; } }
body { font-family: Helvetica, Arial, sans-serif; font-size: 14px; color: var(--fg, inherit); background: var(--bg, transparent);
  margin: 24px auto; max-width: 1100px; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 20px; margin: 0 0 4px; overflow-wrap: anywhere; } h2 { font-size: 16px; margin: 28px 0 8px;
  border-bottom: 1px solid var(--line, rgba(128, 128, 128, 0.35)); padding-bottom: 4px; }
.meta, .note, .pipenb-hint, .pipenb-empty { color: var(--muted, inherit); }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: bold; color: #1f2937; }
.figure { overflow-x: auto; background: var(--panel, transparent); border: 1px solid var(--line, rgba(128, 128, 128, 0.35)); border-radius: 6px;
  padding: 8px; margin: 8px 0; }
.graphs { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.graphs .figure { flex: 0 1 auto; max-width: 100%; }
table { border-collapse: collapse; } th, td { text-align: left; vertical-align: top; padding: 3px 8px;
  border-bottom: 1px solid var(--line, rgba(128, 128, 128, 0.35)); overflow-wrap: anywhere; }
table.records, table.events { width: 100%; } table.records > tbody > tr > td:last-child { width: 45%; }
code { font-family: Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; white-space: pre-wrap; }
.pipenb-new { color: var(--new, #2b9a66); } .pipenb-old { color: var(--old, #e5484d); text-decoration: line-through; }
.pipenb-error-view { color: var(--bad, #e5484d); } .pipenb-diff-kind { color: var(--muted, inherit); }
table.events td:nth-child(-n+3), table.records > tbody > tr > td:nth-child(-n+4), table.records th { white-space: nowrap; }
table.records > tbody > tr > td:nth-child(-n+4) code { white-space: nowrap; overflow-wrap: normal; } table.events td:last-child { width: 70%; }
.pipenb-view-title { display: none; } .error { border-left: 4px solid var(--bad, #e5484d); padding-left: 10px; }
"""


def _inline(svg: str) -> str:
    """An SVG document as markup inside HTML: no prologue, no comments, no namespace URLs (HTML needs none)."""
    return _NAMESPACES.sub("", _COMMENTS.sub("", _PROLOGUE.sub("", svg, count=1)))


def _esc(text) -> str:
    from .graph import clean_text

    return html.escape(clean_text(str(text)), quote=True)


def _status_badge(status: str) -> str:
    from .timeline import colours

    return f'<span class="status" style="background:{colours(status)["fill"]}">{_esc(status)}</span>'


def _header(src) -> str:
    stopped = src.status in ("paused", "failed", "aborted", "prepared", "running", "interrupted")
    at = f" · at <code>{_esc(src.position)}</code>" if src.position and stopped else ""
    notes = "".join(f'<p class="note">{_esc(n)}</p>' for n in src.notes)
    return (f"<h1>Run <code>{_esc(src.run_id)}</code> of <code>{_esc(src.pipeline_id)}</code></h1>"
            f'<div class="meta">{_status_badge(src.status)}{at} · {len(src.history)} records · from '
            f"{_esc(src.where)} · report made {_esc(time.strftime('%Y-%m-%d %H:%M:%S'))}</div>{notes}")


def _error_section(src) -> str:
    if src.error is not None:
        return f'<h2>Error</h2><div class="error">{error_html(src.error)}</div>'
    if src.status in ("failed", "aborted"):
        return (f'<h2>Error</h2><p class="note">The run {_esc(src.status)}; its error was not recorded '
                f"(open <code>ctx.record()</code> before running, or pass <code>error=</code>).</p>")
    return ""


def _graph_status(src) -> dict:
    from .report_source import visits

    status = {address: "success" for address in visits(src.history)}
    if src.position and src.status in ("paused", "failed", "aborted", "running"):
        status[src.position] = src.status  # "aborted" has its own colour (pipenb.graph.PALETTE)
    return status


def _graph_section(src) -> str:
    from .graph import to_svg
    from .report_source import run_map_svg, transitions, visits

    parts = []
    if src.pipeline is not None:
        marks = {"visits": visits(src.history), "transitions": transitions(src.history)}
        svg = to_svg(src.pipeline, _graph_status(src), **marks)
        parts.append(f'<div class="figure"><div class="meta">the pipeline</div>{_inline(svg)}</div>')
    path = run_map_svg(src)
    if path:
        parts.append(f'<div class="figure"><div class="meta">the path the run took: visits and moves</div>'
                     f"{_inline(path)}</div>")
    if not parts:
        return '<h2>Graph</h2><p class="note">No stage has run, and no pipeline definition is at hand.</p>'
    hint = "" if src.pipeline is not None else (
        '<p class="note">No pipeline definition is at hand (a run read from a file): the graph is drawn from the '
        "stages the run reached.</p>")
    return f'<h2>Graph</h2>{hint}<div class="graphs">{"".join(parts)}</div>'


def _timeline_section(src) -> str:
    from .timeline import timeline_svg

    svg = timeline_svg(src.history, src.events, width=1040)
    steps = "" if src.events is not None else " (steps are shown when the run's events were recorded)"
    return (f'<h2>Timeline</h2><p class="note">One row per stage, one bar per visit; the longest is outlined'
            f"{steps}.</p><div class=\"figure\">{_inline(svg)}</div>")


def _decision(value) -> str:
    return "next" if value is None else value if isinstance(value, str) else repr(value)


def _history_section(src) -> str:
    h = src.history
    n = len(h)
    if not n:
        return '<h2>History</h2><p class="note">No record: no stage has committed (or history is off).</p>'
    first = max(0, n - MAX_RECORDS)
    rows = []
    for i in range(first, n):
        r = h[i]
        rows.append(f"<tr><td>{r.seq}</td><td><code>{_esc(r.address)}</code></td><td>{_esc(clock(r.started))}</td>"
                    f"<td>{_esc(duration_text(r.duration))}</td><td><code>{_esc(_decision(r.decision))}</code></td>"
                    f"<td>{diff_html(h.diff(i))}</td></tr>")
    cut = f'<p class="note">The first {first} records are left out.</p>' if first else ""
    return (f"<h2>History</h2>{cut}<table class=\"records\"><thead><tr><th>#</th><th>stage</th><th>started</th>"
            f"<th>took</th><th>then</th><th>what it changed</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _event_detail(e) -> str:
    from .graph import clean_text

    for name in ("error", "next", "step_id", "reason", "message"):
        value = getattr(e, name, None)
        if value is not None:
            text = f"{type(value).__name__}: {value}" if name == "error" else f"{name}: {_decision(value)}"
            return clean_text(text, 300)
    return ""


def _events_section(src) -> str:
    if src.events is None:
        return ('<h2>Events</h2><p class="note">No events were recorded for this run: open <code>log = '
                "ctx.record()</code> before running and pass <code>events=log</code> to include them.</p>")
    events = list(src.events)[-MAX_EVENTS:]
    if not events:
        return '<h2>Events</h2><p class="note">The event log is empty.</p>'
    from .core.events import stage_address

    rows = "".join(f"<tr><td>{_esc(clock(e.time))}.{int(e.time * 1000) % 1000:03d}</td><td>{_esc(e.name)}</td>"
                   f"<td><code>{_esc(stage_address(e.path) or '')}</code></td><td><code>{_esc(_event_detail(e))}</code></td>"
                   f"</tr>" for e in reversed(events))
    return (f'<h2>Events</h2><p class="note">The newest {len(events)}, newest first.</p><table class="events">'
            f"<thead><tr><th>time</th><th>event</th><th>stage</th><th>detail</th></tr></thead><tbody>{rows}"
            f"</tbody></table>")


def report_html(source, *, events=None, error=None) -> str:
    """The report page of ``source``: a ``RunContext`` or a ``report_source.RunSource``."""
    from .report_source import RunSource, from_context

    src = source if isinstance(source, RunSource) else from_context(source, events, error)
    if events is not None and src.events is None:
        src.events = events
    body = (_header(src) + _error_section(src) + _graph_section(src) + _timeline_section(src)
            + _history_section(src) + _events_section(src)
            + f"<h2>Final state</h2>{state_html(src.state)}{checkpoint_html(src.checkpoint)}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>pipenb run {_esc(src.run_id)}</title><style>{CSS}</style></head><body>{body}</body></html>")


def write_report(html_text: str, path) -> None:
    """Write a report page's HTML to ``path`` as UTF-8."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(html_text)


def context_report(ctx, path=None, *, events=None, error=None) -> str:
    """``ctx.report(path=None, *, events=None, error=None)``: the run's report page, written to ``path`` if given.

    ``events``: the ``EventLog`` of ``ctx.record()`` opened before running
    (step bars, the newest events, the error); ``error``: the run's error
    when no log recorded it (``result.error``).
    """
    page = report_html(ctx, events=events, error=error)
    if path is not None:
        write_report(page, path)
    return page


def install() -> None:
    """Attach ``report`` to ``RunContext`` from outside the engine (as rich.py attaches its display)."""
    from .core.context import RunContext

    RunContext.report = context_report

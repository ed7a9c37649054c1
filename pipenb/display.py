"""HTML for notebooks: a run's state (nested values folded, DataFrames as a head
preview), its checkpoint, and the rich display of runs and results.

Every piece of user text goes through ``html.escape`` (pandas' ``to_html``
escapes by default too). Plain HTML only: the widgets reuse it, and it loads
nothing heavy.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping

_MAX_KEYS = 50


def short_id(run_id: str) -> str:
    """The part of a run id a person can tell apart: a UUIDv7's random tail.

    Its first characters are the timestamp, the same for every run started
    within a minute, so headers, tables and lists show the last 8 instead.
    Short ids someone chose (``"demo-1"``) are shown whole.
    """
    if len(run_id) <= 12:
        return run_id
    return run_id[-8:]


def _short(value, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def value_html(value, depth: int = 0) -> str:
    """One state value as escaped HTML: mappings fold open, DataFrames preview their head, long text is cut."""
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


def mapping_html(state, depth: int = 0, marked=(), writers=None) -> str:
    """A state as a table; top-level keys in ``marked`` carry the class ``pipenb-changed`` and a "changed" tag;
    ``writers`` (key -> stage address) names beside each key the stage that last wrote it."""
    if not state:
        return '<div class="pipenb-empty"><i>empty</i></div>'
    rows = []
    for i, (key, value) in enumerate(state.items()):
        if i == _MAX_KEYS:
            rows.append(f"<tr><td colspan=2>… {len(state) - _MAX_KEYS} more keys</td></tr>")
            break
        mark = key in marked
        tag = ' <span class="pipenb-tag">changed</span>' if mark else ""
        if writers and key in writers:
            tag += (f' <span class="pipenb-writer" title="the stage that last wrote this key">by '
                    f"{html.escape(str(writers[key]))}</span>")
        cls = ' class="pipenb-changed"' if mark else ""
        rows.append(f"<tr{cls}><th>{html.escape(str(key))}{tag}</th>"
                    f"<td>{value_html(value, depth)}</td></tr>")
    return f'<table class="pipenb-state">{"".join(rows)}</table>'


def state_html(state, title: str = "state", marked=(), writers=None) -> str:
    # The title is a block of its own: "state" and "empty" never run together as "stateempty".
    """A state as escaped HTML under ``title``; ``marked`` keys are highlighted (the keys a stage changed);
    ``writers`` (key -> address, ``History.writers()``) says which stage last wrote each key."""
    return (f'<div class="pipenb-state-view"><div class="pipenb-view-title"><b>{html.escape(title)}</b></div>'
            f"{mapping_html(state, marked=marked, writers=writers)}</div>")


def clock(t: float | None) -> str:
    """A time as local clock time, ``14:03:12`` (an empty string for None)."""
    if t is None:
        return ""
    return time.strftime("%H:%M:%S", time.localtime(t))


def iso_local(stamp: str | None) -> str:
    """An ISO-8601 UTC stamp (``2026-11-25T12:00:00.123Z``) as local date and clock time; as given when
    it does not parse."""
    if not stamp:
        return ""
    import datetime

    try:
        t = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def time_left(seconds: float | None) -> str:
    """``4:46 left`` (minutes:seconds; hours when long), an empty string for None."""
    if seconds is None:
        return ""
    if seconds == float("inf"):
        return "no expiry"
    s = max(0, int(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d} left"
    return f"{s // 60}:{s % 60:02d} left"


def duration_text(seconds: float | None) -> str:
    """``12 ms``, ``1.25 s``, ``3:05 min``."""
    if seconds is None:
        return ""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d} min"


def size_text(size: int | None) -> str:
    """``640 kB``, ``12 MB``, ``1.5 GB`` (decimal units), an empty string for None."""
    if size is None:
        return ""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale * 0.9995:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"
    return f"{size} B"


def path_text(path: tuple) -> str:
    """A key path as text: ``("model", "coef")`` -> ``model.coef``."""
    return ".".join(map(str, path))


def diff_html(diff) -> str:
    """A ``StateDiff`` as a table: added, removed, changed (old → new), every value escaped."""
    rows = []
    for path, new in diff.added.items():
        rows.append(("added", path, None, new))
    for path, old in diff.removed.items():
        rows.append(("removed", path, old, None))
    for path, (old, new) in diff.changed.items():
        rows.append(("changed", path, old, new))
    if not rows:
        return '<div class="pipenb-diff-view"><div class="pipenb-empty"><i>no change</i></div></div>'
    body = []
    for kind, path, old, new in rows:
        if kind == "added":
            what = f'<code class="pipenb-new">{html.escape(_short(new))}</code>'
        elif kind == "removed":
            what = f'<code class="pipenb-old">{html.escape(_short(old))}</code>'
        else:
            what = (f'<code class="pipenb-old">{html.escape(_short(old))}</code> → '
                    f'<code class="pipenb-new">{html.escape(_short(new))}</code>')
        body.append(f'<tr class="pipenb-diff-{kind}"><td class="pipenb-diff-kind">{kind}</td>'
                    f"<th>{html.escape(path_text(path))}</th><td>{what}</td></tr>")
    return f'<div class="pipenb-diff-view"><table class="pipenb-diff">{"".join(body)}</table></div>'


def error_chain(error) -> list[tuple[str, str]]:
    """(type name, full message) of an error and each cause or context behind it, outermost first."""
    out, seen = [], set()
    while error is not None and id(error) not in seen and len(out) < 8:
        seen.add(id(error))
        out.append((type(error).__name__, str(error)))
        error = error.__cause__ if error.__cause__ is not None else (
            None if error.__suppress_context__ else error.__context__)
    return out


def error_html(error) -> str:
    """The full error: its type and whole message, then each cause's, escaped and wrapped, never cut."""
    if error is None:
        return '<div class="pipenb-error-view"><div class="pipenb-empty"><i>no error</i></div></div>'
    parts = []
    said = ""  # every message shown so far
    for i, (name, message) in enumerate(error_chain(error)):
        if i and f"{name}: {message}" in said:  # a wrapper that quotes its cause ("raised KeyError: 'x'"): once
            continue
        lead = "" if i == 0 else '<span class="pipenb-cause-lead">caused by </span>'
        if i and message and message in said:
            text = '<span class="pipenb-hint">(message above)</span>'
        else:
            text = f'<span class="pipenb-error-message">{html.escape(message)}</span>'
        parts.append(f'<div class="pipenb-error-line">{lead}<b class="pipenb-error-type">{html.escape(name)}</b>: '
                     f"{text}</div>")
        said += "\n" + message
    return f'<div class="pipenb-error-view">{"".join(parts)}</div>'


def checkpoint_html(cp) -> str:
    """A checkpoint (or None) as escaped HTML: where the run continues, when it paused, its exported artifacts."""
    if cp is None:
        return '<div class="pipenb-checkpoint-view"><b>checkpoint</b> <i>none</i></div>'
    # People's words for the checkpoint's fields (the names are the engine's: cp.to_dict() has them).
    bundle = cp.container_bundle
    arts = sorted(bundle.get("artifacts", {})) if bundle is not None else None
    d = {"continues at": "/".join(cp.resume_at),
         "paused at stage": cp.paused_at_stage_id if cp.paused_at_stage_label in (None, cp.paused_at_stage_id)
         else f"{cp.paused_at_stage_id} ({cp.paused_at_stage_label})",
         "since": iso_local(cp.paused_on),
         "artifacts": ("saved with the checkpoint: " + (", ".join(arts) or "none")) if arts is not None
         else "in the kernel's memory only (saved when the pause times out)"}
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in d.items())
    return f'<div class="pipenb-checkpoint-view"><b>checkpoint</b><table class="pipenb-state">{rows}</table></div>'


def run_result_html(result) -> str:
    """A ``PipelineRunResult`` as escaped HTML: run id, status, where it resumes, its state (its rich display)."""
    cp = result.checkpoint
    where = f" — resumes at <code>{html.escape('/'.join(cp.resume_at))}</code>" if cp is not None else ""
    return (
        f'<div class="pipenb-result"><b>run {html.escape(result.run_id)}</b>: '
        f"<b>{html.escape(result.status)}</b>{where}{mapping_html(result.state)}</div>"
    )


def run_context_html(ctx) -> str:
    """A ``RunContext`` as escaped HTML: pipeline, run, status, position and state."""
    cp = ctx.checkpoint
    info = {"status": ctx.status, "at": ctx.position}
    if cp is not None:
        info["since"] = iso_local(cp.paused_on)
    return (
        f'<div class="pipenb-context"><b>{html.escape(ctx.pipeline_id)}</b> run '
        f"<code>{html.escape(ctx.run_id)}</code> <code>{html.escape(json.dumps(info))}</code>"
        f"{mapping_html(ctx.state)}</div>"
    )

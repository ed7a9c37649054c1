"""``RunErrors``: why a run failed, as the dashboard shows it (its error banner and Error tab).

A checkpoint keeps where a run stopped, not why: the exception lives only in
the process that saw it. So the dashboard keeps, per run id, the error each
run failed with while it watched (``keep``), shows it whole (every chained
cause, the traceback folded) for the shown run, and for a failed or aborted
run whose error it never saw says so plainly instead of showing nothing.
The dashboard owns the two widgets; this is the memory and the HTML.
"""

from __future__ import annotations

import html
import traceback

from pipenb.display import short_id
from pipenb.core.lifecycle import ABORTED, FAILED

from ...display import error_html


EMPTY = ("", error_html(None))  # (banner, Error tab) with no run shown


class RunErrors:
    """The errors runs failed with, by run id, while the dashboard watched."""

    def __init__(self):
        self._errors: dict[str, BaseException] = {}  # run id -> the error it failed with (seen here)

    def keep(self, run_id: str, error: BaseException) -> None:
        self._errors[run_id] = error

    def forget(self, run_id: str) -> None:
        self._errors.pop(run_id, None)

    def _error_of(self, ctx):
        error = self._errors.get(ctx.run_id)
        if error is None and ctx.status in (FAILED, ABORTED):
            return None, (f"run {short_id(ctx.run_id)} {ctx.status} at {ctx.position}; its error was raised "
                          f"before this dashboard showed it (the checkpoint keeps where, not why)")
        return error, ""

    def html_for(self, ctx) -> tuple[str, str]:
        """``ctx``'s error (or what is known of it): the banner (above the graph, only for a failed or
        aborted run) and the Error tab."""
        error, note = self._error_of(ctx)
        if error is None:
            banner = (f'<div class="pipenb-error-note">{html.escape(note)}</div>' if note else "")
            detail = error_html(None) if not note else f'<div class="pipenb-error-view">{html.escape(note)}</div>'
        else:
            where = html.escape(ctx.position)
            banner = (f'<div class="pipenb-error-box"><div class="pipenb-error-where">run '
                      f"{html.escape(short_id(ctx.run_id))} {html.escape(ctx.status)} at <code>{where}</code>"
                      f"</div>{error_html(error)}</div>")
            tb = "".join(traceback.format_exception(error))
            detail = (f"{error_html(error)}<details><summary>traceback</summary>"
                      f'<pre class="pipenb-traceback">{html.escape(tb)}</pre></details>')
        if ctx.status not in (FAILED, ABORTED):
            banner = ""
        return banner, detail

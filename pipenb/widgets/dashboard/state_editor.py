"""``StateEditor``: set one key of a waiting run's state from the dashboard.

A person debugging a paused or failed run often needs to change one value
(approve a step, fix a threshold) and go on. The editor takes a key and a
Python literal, parses it with ``ast.literal_eval`` (never ``eval``: the text
is data, not code) and applies it with ``ctx.update_state``, which records the
edit in the run's history. A value that is not a literal, or a run that cannot
be edited now (running, finished), applies nothing and the editor says why.
"""

from __future__ import annotations

import ast
import html

import ipywidgets as widgets

from pipenb.display import short_id
from pipenb.core.lifecycle import can_edit


class StateEditor(widgets.VBox):
    """Key, value, Apply and a message line. ``run()`` gives the run to edit (or None); ``applied()`` is
    called after an edit went in; ``call(fn)`` runs ``fn`` on the kernel's loop (clicks may come on another
    thread)."""

    def __init__(self, run, applied, call):
        self._run = run
        self._applied = applied
        self.key = widgets.Text(placeholder="key", layout=widgets.Layout(width="30%", min_width="80px"))
        self.key.add_class("pipenb-edit-key")
        self.value = widgets.Text(placeholder="value: 3, 'text', True, [1, 2]",
                                  layout=widgets.Layout(flex="1 1 auto", width="auto", min_width="100px"))
        self.value.add_class("pipenb-edit-value")
        self.apply_button = widgets.Button(description="Apply", icon="check", layout=widgets.Layout(width="80px"))
        self.apply_button.add_class("pipenb-edit-apply")
        self.apply_button.on_click(lambda _b: call(self.apply))
        self.message = widgets.HTML("")
        self.message.add_class("pipenb-edit-message")
        super().__init__([
            widgets.HTML('<div class="pipenb-view-title"><b>edit the state</b> '
                         '<span class="pipenb-hint">(a paused, failed or aborted run; the value is a Python '
                         'literal)</span></div>'),
            widgets.HBox([self.key, self.value, self.apply_button],
                         layout=widgets.Layout(width="100%", flex_flow="row wrap")),
            self.message,
        ], layout=widgets.Layout(width="100%"))
        self.add_class("pipenb-editor")

    def clear(self) -> None:
        """Empty key, value and message: what was typed was about the run shown before."""
        self.key.value = self.value.value = self.message.value = ""

    def show_for(self, status: str) -> None:
        """Shown only for a run whose state can be edited now."""
        self.layout.display = None if can_edit(status) else "none"

    def edit(self, key: str, text: str) -> bool:
        """Fill in ``key`` and ``text`` and press Apply; True when applied."""
        self.key.value, self.value.value = key, text
        return self.apply()

    def _says(self, text: str, ok: bool) -> None:
        cls = "pipenb-done" if ok else "pipenb-why"
        self.message.value = f'<span class="{cls}">{html.escape(text)}</span>'

    def apply(self) -> bool:
        """What Apply does: set the key to the literal in the run, or say why nothing was applied."""
        ctx, key, text = self._run(), self.key.value.strip(), self.value.value
        if ctx is None:
            self._says("pick a run first", False)
            return False
        if not key:
            self._says("name the key to set", False)
            return False
        if not can_edit(ctx.status):
            self._says(f"run {short_id(ctx.run_id)} is {ctx.status}: the state can be edited on a prepared, "
                       f"paused, failed or aborted run (pause it first); nothing applied", False)
            return False
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
            why = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
            self._says(f"the value {text!r} for {key!r} is not a Python literal (a number, a quoted string, "
                       f"True, False, None, or a list, tuple, dict or set of those): {why}; nothing applied", False)
            return False
        try:
            ctx.update_state({key: value})
        except Exception as exc:
            self._says(f"{type(exc).__name__}: {exc}; nothing applied", False)
            return False
        self._says(f"set {key} = {value!r}", True)
        self._applied()
        return True

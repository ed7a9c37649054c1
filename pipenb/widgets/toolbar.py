"""``Toolbar``: the dashboard's run buttons and the line where they answer.

It exists so the lifecycle rules of the buttons live in one table: which
button applies to a run in which status (``APPLIES``), and what a button says
when pressed where it does not apply (``WHY_NOT``). The dashboard asks these
tables before acting and the toolbar greys out, from the same tables, what
cannot be pressed. A click may arrive on any thread: the toolbar hands the
button's name to the dashboard's ``clicked`` and does nothing else itself.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from pipenb.core.lifecycle import ABORTED, FAILED, RUNNING, can_abort, can_pause, can_run

# What each button needs (status None: no run picked yet), and what it says when it does not apply.
APPLIES = {
    "run": lambda status: status != RUNNING,       # on a finished run: a new run
    "pause": lambda status: status is not None and can_pause(status),
    "step": lambda status: status != RUNNING,      # on a finished run: a new run, one stage
    "resume": lambda status: status is not None and can_run(status),
    "abort": lambda status: status is not None and can_abort(status),
    "retry": lambda status: status in (FAILED, ABORTED),
    "discard": lambda status: status is not None,
}
WHY_NOT = {
    "run": "a run is going: pause or abort it first",
    "pause": "only a running run can be paused",
    "step": "stepping needs a run that is not running",
    "resume": "only a prepared, paused, failed or aborted run can be resumed",
    "abort": "only a running, paused or prepared run can be aborted",
    "retry": "only a failed or aborted run can be retried",
    "discard": "pick a run first",
}
ICONS = {"run": "play", "pause": "pause", "step": "step-forward", "resume": "forward", "abort": "stop",
         "retry": "redo", "discard": "trash"}


class Toolbar(widgets.HBox):
    """One button per ``ICONS`` entry, then the message line; ``clicked(name)`` hears every click."""

    def __init__(self, clicked):
        self.buttons = {}
        for name, icon in ICONS.items():
            b = widgets.Button(description=name.capitalize(), icon=icon,
                               layout=widgets.Layout(width="auto", min_width="76px"))
            b.add_class(f"pipenb-btn-{name}")
            b.on_click(lambda _b, name=name: clicked(name))
            self.buttons[name] = b
        self.message = widgets.HTML("")
        self.message.add_class("pipenb-message")
        super().__init__(list(self.buttons.values()) + [self.message],
                         layout=widgets.Layout(width="100%", flex_flow="row wrap", align_items="center"))
        self.add_class("pipenb-toolbar")

    def refresh(self, status: str | None) -> None:
        """Grey out what does not apply to a run in ``status``; Retry shows only where it applies."""
        for name, button in self.buttons.items():
            button.disabled = not APPLIES[name](status)
        self.buttons["retry"].layout.display = None if APPLIES["retry"](status) else "none"

    def say(self, text: str, cls: str = "pipenb-why") -> None:
        self.message.value = f'<span class="{cls}">{html.escape(text)}</span>'

    def why_not(self, name: str) -> None:
        self.say(f"{name.capitalize()}: {WHY_NOT[name]}")

"""The dashboard's run buttons: which applies when, what each says when it does not.

It exists so the lifecycle rules of the buttons live in one table: which
button applies to a run in which status (``APPLIES``), and what a button says
when pressed where it does not apply (``WHY_NOT``). The dashboard asks these
tables before acting and the toolbar greys out, from the same tables, what
cannot be pressed. A click may arrive on any thread: a button hands its name
to the dashboard's ``RunControl.clicked`` and does nothing else itself. The
buttons are a plain dict the dashboard owns (``dash.buttons``); this module
makes them and greys them out.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from pipenb.core.lifecycle import ABORTED, FAILED, RUNNING, can_abort, can_pause, can_run, is_finished

# What each button needs (status None: no run picked yet), and what it says when it does not apply.
APPLIES = {
    "run": lambda status: status != RUNNING,       # on a finished run: a new run
    "pause": lambda status: status is not None and can_pause(status),
    "step": lambda status: status != RUNNING,      # on a finished run: a new run, one stage
    "resume": lambda status: status is not None and can_run(status),
    "abort": lambda status: status is not None and can_abort(status),
    "retry": lambda status: status in (FAILED, ABORTED),
    "discard": lambda status: status is not None,
    "replay": lambda status: status is not None,   # scrub through the shown run's records (nothing runs)
    "compare": lambda status: status is not None,  # a fork beside the run it was forked from (see refresh_buttons)
}
WHY_NOT = {
    "run": "a run is going: pause or abort it first",
    "pause": "only a running run can be paused",
    "step": "stepping needs a run that is not running",
    "resume": "only a prepared, paused, failed or aborted run can be resumed",
    "abort": "only a running, paused or prepared run can be aborted",
    "retry": "only a failed or aborted run can be retried",
    "discard": "pick a run first",
    "replay": "pick a run first",
    "compare": "only a fork (forked here, in code or in another kernel) can be compared with its source",
}
FINISHED_WHY = {  # a finished run is looked at and forked, never continued
    "resume": "run {status}: a finished run is never resumed; fork it from the History tab, or press Run",
    "abort": "run {status}: nothing to abort",
    "pause": "run {status}: nothing to pause",
}
TIPS = {"run": "start a new run", "pause": "pause the run at the next stage", "step": "run one stage, then pause",
        "resume": "continue the run from where it stopped", "abort": "stop the run now (it can be resumed)",
        "retry": "run the failed stage again", "discard": "forget the run (a finished one: remove it from the list)",
        "replay": "scrub through the run's records on its graph (nothing runs again)",
        "compare": "replay this fork beside the run it was forked from"}


def why_not(name: str, status: str | None) -> str:
    """What button ``name`` says when it does not apply to a run in ``status``."""
    if status == "gone" and name in FINISHED_WHY:
        return f"the run was completed or discarded elsewhere (its checkpoint left the store): nothing to {name}"
    if status is not None and is_finished(status) and name in FINISHED_WHY:
        return FINISHED_WHY[name].format(status=status)
    return WHY_NOT[name]


ICONS = {"run": "play", "pause": "pause", "step": "step-forward", "resume": "forward", "abort": "stop",
         "retry": "redo", "discard": "trash",
         "replay": "film", "compare": "columns"}
LABELS = {"compare": "Compare with source"}


def run_buttons(clicked) -> dict[str, widgets.Button]:
    """One button per ``ICONS`` entry, by name; ``clicked(name)`` hears every click (on any thread)."""
    buttons = {}
    for name, icon in ICONS.items():
        b = widgets.Button(description=LABELS.get(name, name.capitalize()), icon=icon,
                           layout=widgets.Layout(width="auto", min_width="76px"))
        b.add_class(f"pipenb-btn-{name}")
        b.on_click(lambda _b, name=name: clicked(name))
        buttons[name] = b
    return buttons


def refresh_buttons(buttons: dict[str, widgets.Button], status: str | None, forked: bool = False) -> None:
    """Grey out what does not apply to a run in ``status`` (its tooltip says why); Retry shows only where it
    applies, Compare with source only for a run ``forked`` from another."""
    for name, button in buttons.items():
        if name not in APPLIES:  # a button another part of the dashboard owns
            continue
        applies = APPLIES[name](status)
        tip = TIPS[name] if applies else why_not(name, status)
        if button.disabled == applies or button.tooltip != tip:
            button.disabled, button.tooltip = not applies, tip
    buttons["retry"].layout.display = None if APPLIES["retry"](status) else "none"
    buttons["compare"].layout.display = None if forked and APPLIES["compare"](status) else "none"


def message_html(text: str, cls: str = "pipenb-why") -> str:
    """A line of the message beside the buttons (empty text: no line)."""
    return f'<span class="{html.escape(cls)}">{html.escape(text)}</span>' if text else ""

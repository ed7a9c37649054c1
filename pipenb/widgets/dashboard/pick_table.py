"""``PickTable``: a compact table whose rows are picked by a click, with action buttons per row.

The dashboard's runs list and history list. Rows travel as plain text (the
browser sets ``textContent``), so user text is never parsed as HTML.
``value`` is the picked row's id (a click sets it, code may too); an action
button sends ``{"action": name, "id": row id}``, handed to ``on_action``
listeners (on whatever thread the message came: hand work to your loop).
Its JS and CSS are the files beside this module, given to anywidget as paths
(hot reload with ``ANYWIDGET_HMR=1``).
"""

from __future__ import annotations

import pathlib

import anywidget
import traitlets

HERE = pathlib.Path(__file__).parent


class PickTable(anywidget.AnyWidget):
    """A compact table whose rows can be picked (``value`` is the picked row's id) and carry action buttons; the runs and history lists are ones."""

    _esm = HERE / "pick_table.js"
    _css = HERE / "pick_table.css"

    columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    # Each row: {"id": str, "cells": [str, ...], "cls": str (CSS class suffixes), "actions": [str, ...]}.
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    value = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    empty = traitlets.Unicode("nothing yet").tag(sync=True)

    def __init__(self, columns, **kwargs):
        super().__init__(columns=list(columns), **kwargs)
        self._action_listeners: list = []
        self.on_msg(self._message)

    def on_action(self, listener) -> None:
        """Call ``listener(action, row_id)`` when a row's action button is clicked."""
        self._action_listeners.append(listener)

    def act(self, action: str, row_id: str) -> None:
        """What clicking the row's ``action`` button does (from code)."""
        for listener in list(self._action_listeners):
            listener(action, row_id)

    def _message(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and isinstance(content.get("action"), str) and isinstance(content.get("id"), str):
            self.act(content["action"], content["id"])

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]

    def row(self, row_id: str) -> dict | None:
        return next((r for r in self.rows if r["id"] == row_id), None)

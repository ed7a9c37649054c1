"""The JavaScript of a view: the shared helpers (``dom.js``) followed by the view's own file.

anywidget loads one ES module per widget; prepending the helpers keeps each
view's file about that view and the helpers in one place.
"""

from __future__ import annotations

import pathlib

HERE = pathlib.Path(__file__).parent


def view_module(name: str) -> str:
    return (HERE / "dom.js").read_text() + (HERE / name).read_text()

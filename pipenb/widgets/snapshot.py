"""Static snapshots beside the live widgets (SPEC 12), and closing widget trees.

A widget's output carries, beside ``application/vnd.jupyter.widget-view+json``,
a ``text/html`` snapshot of what it shows and a short ``text/plain``: what a
viewer without a widget manager (nbconvert HTML, GitHub, nbviewer) shows.
Shown with a display id of its own, the output is updated in place
(``update_display_data``) when the followed run pauses or ends, so a saved
notebook keeps the last state. The snapshot is plain HTML and inline SVG: no
script, no link, nothing fetched.

``Snapshot`` is a base class, not an owned helper, for one reason: IPython's
display protocol (``_repr_mimebundle_``, ``_ipython_display_``) is looked up
on the displayed object's class, so the widget itself must have those
methods. It holds the display protocol and nothing else: when to refresh is
the view's call (``refresh_snapshot()``, from its follower's ``settled``
callback), and how an update reaches the notebook is outbox.py's.
"""

from __future__ import annotations

import html
import re
import uuid

import ipywidgets

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_XML_PROLOGUE = re.compile(r"\A\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.IGNORECASE)


def inline_svg(svg: str) -> str:
    """An SVG document as markup to inline in HTML (no XML declaration, no DOCTYPE and its DTD URL)."""
    return _XML_PROLOGUE.sub("", svg, count=1)


def rows_html(columns, rows, css_class: str = "pipenb-snapshot-events") -> str:
    """A plain, escaped HTML table."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{'' if cell is None else html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def close_tree(widget, close_self=None) -> None:
    """Close the widgets inside ``widget`` (children recursively, with their own ``close()``, and
    every ``layout`` and ``style`` widget), then ``widget`` itself with ``close_self`` (a
    ``close()`` override passes ``super().close``), or as a plain ipywidgets widget."""
    seen: set[int] = {id(widget)}

    def parts(w):
        for child in getattr(w, "children", ()) or ():
            if isinstance(child, ipywidgets.Widget):
                yield child
        for name in ("layout", "style"):
            part = getattr(w, name, None) if w.has_trait(name) else None
            if isinstance(part, ipywidgets.Widget):
                yield part

    def walk(w) -> None:
        for part in list(parts(w)):
            if id(part) not in seen:
                seen.add(id(part))
                walk(part)
                part.close()

    walk(widget)
    if close_self is not None:
        close_self()
    else:
        ipywidgets.Widget.close(widget)


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipywidgets needs IPython
        return None
    return get_ipython()


class Snapshot:
    """The display protocol of a widget (listed before the ipywidgets base): ``snapshot_html`` beside the view.

    ``_repr_mimebundle_`` adds ``text/html`` and a short ``text/plain``;
    ``_ipython_display_`` shows that bundle under this widget's display id, and
    ``refresh_snapshot()`` updates every output showing it.
    """

    _display_id: str | None = None

    def snapshot_html(self) -> str:
        """What the widget shows, as static HTML (inline SVG, escaped text; no script, nothing fetched): the ``text/html`` a saved or exported notebook shows."""
        raise NotImplementedError

    def snapshot_text(self) -> str:
        """A one-line ``text/plain`` description of the widget (what a viewer without HTML shows)."""
        return type(self).__name__

    def _repr_mimebundle_(self, **kwargs):
        out = super()._repr_mimebundle_(**kwargs)
        data, metadata = out if isinstance(out, tuple) else (out or {}, {})
        data = dict(data)
        data["text/plain"] = self.snapshot_text()
        try:
            data["text/html"] = self.snapshot_html()
        except Exception as exc:  # a snapshot never breaks the live view
            data["text/html"] = f"<pre>{html.escape(self.snapshot_text())} (no snapshot: {html.escape(repr(exc))})</pre>"
        return data, dict(metadata or {})

    @property
    def display_id(self) -> str:
        """The display id this widget's outputs are shown (and refreshed) under."""
        if self._display_id is None:
            self._display_id = f"pipenb-{uuid.uuid4().hex}"
        return self._display_id

    def mimebundle(self, include=None, exclude=None) -> dict:
        """The output data: the live view, a short ``text/plain`` and the ``text/html`` snapshot."""
        return self._repr_mimebundle_(include=include, exclude=exclude)[0]

    def mark_shown(self) -> None:
        """This widget was displayed under ``display_id``: refresh that output when its run stops."""
        self._snapshot_shown = True
        shell = _shell()
        if shell is not None and getattr(shell, "events", None) is not None:
            from .outbox import Outbox

            Outbox.of(shell)  # hooked to the cells from now on

    def _ipython_display_(self) -> None:
        from IPython.display import display

        data, metadata = self._repr_mimebundle_()
        display(data, metadata=metadata, raw=True, display_id=self.display_id)
        self.mark_shown()

    def refresh_snapshot(self) -> None:
        """Update the outputs showing this widget: the live view stays, the snapshot is redrawn.

        Sent under the cell running now, whichever cell started the run (outbox.py).
        """
        shell = _shell()
        if not getattr(self, "_snapshot_shown", False) or getattr(self, "comm", None) is None or shell is None:
            return
        from .outbox import Outbox

        Outbox.of(shell).send(self)

    def refresh_snapshot_later(self) -> None:
        """Refresh the outputs showing this widget when the running cell ends (or, between cells, when the
        next one starts): for a view that changes many times in a cell and needs only its last look kept."""
        shell = _shell()
        if getattr(self, "_snapshot_shown", False) and shell is not None and getattr(shell, "events", None) is not None:
            from .outbox import Outbox

            Outbox.of(shell).later(self)

    def send_snapshot_update(self) -> None:
        """Send the snapshot update now, under whatever cell the current context names (the outbox picks it)."""
        from IPython.display import update_display

        if getattr(self, "comm", None) is None:  # closed meanwhile
            return
        data, metadata = self._repr_mimebundle_()
        update_display(data, metadata=metadata, raw=True, display_id=self.display_id)

"""Getting a snapshot's update to the notebook, whichever cell is running when the run stops.

A run started with ``ctx.start()`` runs in a task that carries the context of
the cell that started it; under ipykernel 7 that includes the cell's message
header, so an ``update_display_data`` sent from the task names that cell as
its parent. Once that cell has ended, nbclient (``jupyter nbconvert
--execute``) reads only the messages of the cell it runs now and drops the
update: the exported notebook kept each widget as it was displayed.

So an update is sent under the header of the cell running now (captured by
a ``pre_run_cell`` hook). One that comes while no cell runs (a background
run ending between cells) is sent as it is and sent again when the next cell
starts and when it ends, which is where a notebook that waits for its run in
a later cell gets it.
"""

from __future__ import annotations

import contextvars
import threading
import weakref

_OUTBOXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # shell -> its Outbox
_LOCK = threading.Lock()


class Outbox:
    """One per IPython shell: the running cell's context, and the updates still to resend."""

    def __init__(self, shell):
        self.cell: contextvars.Context | None = None  # the context of the cell running now
        self.pending: weakref.WeakSet = weakref.WeakSet()  # widgets whose last update went out between cells
        self._lock = threading.Lock()
        shell.events.register("pre_run_cell", self._cell_starts)
        shell.events.register("post_run_cell", self._cell_ends)

    @classmethod
    def of(cls, shell) -> Outbox:
        with _LOCK:
            box = _OUTBOXES.get(shell)
            if box is None:
                box = _OUTBOXES[shell] = cls(shell)
            return box

    def send(self, widget) -> None:
        """Send ``widget``'s snapshot update under the running cell (and again later if none runs)."""
        cell = self.cell
        if cell is None:
            with self._lock:
                self.pending.add(widget)
            widget.send_snapshot_update()
        else:
            cell.copy().run(widget.send_snapshot_update)

    def later(self, widget) -> None:
        """Send ``widget``'s snapshot update when the running cell ends (or when the next one starts)."""
        with self._lock:
            self.pending.add(widget)

    def _flush(self) -> None:
        with self._lock:
            widgets, self.pending = list(self.pending), weakref.WeakSet()
        for widget in widgets:
            widget.refresh_snapshot()

    def _cell_starts(self, info=None) -> None:
        self.cell = contextvars.copy_context()
        self._flush()

    def _cell_ends(self, result=None) -> None:
        self._flush()
        self.cell = None

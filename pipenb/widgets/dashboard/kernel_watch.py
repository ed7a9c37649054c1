"""``KernelWatch``: makes an open dashboard say so when its kernel is gone.

After a kernel restart the page keeps the dashboard as it was drawn: it looks
live, with enabled buttons whose clicks reach nobody. This small view (no
traits of its own) listens in the browser for what marks the kernel gone: the
widget manager dropping its comms (``comm_live_update``, on a restart) and the
kernel's status turning ``restarting``, ``autorestarting`` or ``dead``. Then
it greys the dashboard out, disables its controls, and says that what is
shown is the last snapshot and how to get a live one. Its JS and CSS are the
files beside this module.
"""

from __future__ import annotations

import pathlib

import anywidget

HERE = pathlib.Path(__file__).parent


class KernelWatch(anywidget.AnyWidget):
    """Put inside a dashboard (a ``.pipenb-dashboard`` ancestor): marks it ``pipenb-kernel-gone`` when the
    kernel goes."""

    _esm = HERE / "kernel_watch.js"
    _css = HERE / "kernel_watch.css"

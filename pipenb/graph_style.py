"""What every drawing of a stage graph shares: the colours, and user text made fit for SVG.

The Graphviz drawing (graph.py), the built-in one (graph_builtin.py), the
StageGraph widget and the HTML report all read these, so a status or a mark
looks the same wherever a run is drawn. User text is stripped of ANSI escapes
and of the characters XML 1.0 forbids, and cut to ``LABEL_CHARS`` characters
with the full text (capped at ``TOOLTIP_CHARS``) kept for a tooltip.
"""

from __future__ import annotations

import re

# The one palette of stage statuses: the static SVGs, and the StageGraph widget
# (synced as its ``palette`` trait, applied as CSS custom properties) read it.
# Fills are light pastels, so the text on them stays dark in every theme.
# "aborted" (the user stopped the stage) is not "failed" (the stage's code raised): its own colour.
PALETTE: dict[str, dict[str, str]] = {
    "pending": {"fill": "#f4f4f5", "stroke": "#334155", "text": "#1f2937"},
    "running": {"fill": "#fde68a", "stroke": "#b45309", "text": "#1f2937"},
    "success": {"fill": "#bbf7d0", "stroke": "#15803d", "text": "#1f2937"},
    "paused": {"fill": "#bfdbfe", "stroke": "#1d4ed8", "text": "#1f2937"},
    "failed": {"fill": "#fecaca", "stroke": "#b91c1c", "text": "#1f2937"},
    "aborted": {"fill": "#fed7aa", "stroke": "#c2410c", "text": "#1f2937"},
}
STATUSES = tuple(PALETTE)
STATUS_COLOURS = {status: colours["fill"] for status, colours in PALETTE.items()}  # older name: fills only
# Line colours read on light and dark backgrounds (contrast >= 3:1 on white and on #111).
BREAKPOINT_COLOUR = "#dc2626"
ROUTE_COLOUR = "#8b5cf6"
CLUSTER_COLOUR = "#64748b"
EDGE_COLOUR = "#475569"
TAKEN_COLOUR = "#0284c7"  # an edge the run took
UNDECLARED_COLOUR = "#db2777"  # a move the run made that no edge of the graph declares
CURRENT_COLOUR = "#c026d3"  # the stage at the position shown (RunReplay)
STALE_COLOUR = "#a16207"  # a stage whose code changed since its records ran

LABEL_CHARS = 60  # characters of a label shown in a node
TOOLTIP_CHARS = 4000  # characters of the full text kept in a tooltip

# ANSI escape sequences (CSI "\x1b[31m", OSC "\x1b]...\x07", two-character ones): dropped whole.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
# What XML 1.0 forbids even as a character reference, plus C1 controls and DEL.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NONCHAR = re.compile("[\ud800-\udfff\ufffe\uffff]")  # lone surrogates and U+FFFE/U+FFFF
_ID_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: str, limit: int | None = None) -> str:
    """``text`` fit for XML: ANSI escapes and control characters dropped, lone
    surrogates replaced by U+FFFD, line ends made ``\\n``, tabs spaces; cut to
    ``limit`` characters (the last one an ellipsis "…") when longer."""
    text = _ANSI.sub("", str(text)).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _NONCHAR.sub("\ufffd", _CONTROL.sub("", text))
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


def node_id(address: str) -> str:
    """The SVG element id of a stage (stable, so widgets can recolour it).

    Characters XML cannot hold (controls, tabs and line ends, lone surrogates)
    become U+FFFD, one for one; stage_graph.js's ``nodeId`` does the same.
    """
    return "pipenb-stage-" + _ID_BAD.sub("\ufffd", address).replace("/", "--")


def shown_text(stage, sep: str) -> str:
    """A node's text: its label, and its id when that differs, each cut short."""
    label = clean_text(stage.label, LABEL_CHARS)
    return label if stage.label == stage.id else f"{label}{sep}({clean_text(stage.id, LABEL_CHARS)})"


def tooltip_text(stage, key: str) -> str:
    """A node's tooltip: its address, then its full label when that differs from its id."""
    tip = clean_text(key, TOOLTIP_CHARS // 4)
    return tip if stage.label == stage.id else tip + "\n" + clean_text(stage.label, TOOLTIP_CHARS)

"""The bench's figures as the docs' performance page: ``docs/performance.md`` between two markers.

``bench/run.py`` hands its rows here at the end of a run, so the page always holds the figures of
one whole run of one tree, never a hand-edited mix; the prose around the markers (what was missed
and why) is written by people and kept as it is.
"""

from __future__ import annotations

import pathlib

BEGIN = "<!-- bench:begin (written by python bench/run.py; edit the text around it, not this) -->"
END = "<!-- bench:end -->"
PAGE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def cell(text: str) -> str:
    """A table cell: a ``|`` in a figure's name must not split the row."""
    return str(text).replace("|", "\\|")


def render(rows, about: str) -> str:
    """The block between the markers: what ran (``about``) and one table row per figure."""
    lines = [BEGIN, "", about, "", "| measure | figure | ratio | target |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join([*lines, "", END])


def write(rows, about: str, path: pathlib.Path = PAGE) -> None:
    """Replace the block between the markers of ``path`` (a new page holds only the block)."""
    block = render(rows, about)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text.count(BEGIN) > 1 or text.count(END) > 1 or (BEGIN in text) != (END in text):
        raise SystemExit(f"{path}: expected one {BEGIN!r} ... {END!r} block")
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"
    path.write_text(text, encoding="utf-8")


def rows_of(path: pathlib.Path = PAGE) -> list[list[str]]:
    """The figures a page holds, as ``[measure, figure, ratio, target]`` rows."""
    text = path.read_text(encoding="utf-8")
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("| measure ")]
    return [[c.strip().replace("\\|", "|") for c in _split(line)] for line in rows]


def _split(line: str) -> list[str]:
    """The cells of ``| a | b \\| c |`` (an escaped bar stays inside its cell)."""
    cells, current, i = [], "", 1
    while i < len(line) - 1:
        if line[i] == "\\" and line[i + 1] == "|":
            current, i = current + "\\|", i + 2
            continue
        if line[i] == "|":
            cells.append(current)
            current = ""
        else:
            current += line[i]
        i += 1
    return [*cells, current]

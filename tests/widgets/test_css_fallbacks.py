"""SPEC 13: the widgets render in VS Code, Voila and Notebook 7, where JupyterLab's theme variables
may be missing. Every ``var(...)`` the widgets read (CSS, JS and Python sources under pipenb/)
has a fallback, and the last fallback of a colour reads on a light and on a dark background:
the host's own colour (``inherit``, ``currentColor``), ``transparent`` or a semi-transparent paint
(backgrounds, borders), or a mid-tone with a contrast of at least 3:1 on both white and #1e1e1e
(VS Code's dark editor background)."""

import pathlib
import re

import pytest

PIPENB = pathlib.Path(__file__).resolve().parents[2] / "pipenb"
SOURCES = sorted(p for ext in ("css", "js", "py") for p in PIPENB.rglob(f"*.{ext}"))
LIGHT, DARK = (255, 255, 255), (0x1E, 0x1E, 0x1E)
NOT_COLOURS = re.compile(r"^(font|font-family|font-size|line-height|width|height|margin|padding|gap)$")


def split_args(text: str, start: int) -> tuple[list[str], int]:
    """The top-level comma-separated arguments of the call whose "(" is at ``start``, and its ")"."""
    depth, args, begin = 0, [], start + 1
    for i in range(start, len(text)):
        ch = text[i]
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
            if depth == 0:
                args.append(text[begin:i].strip())
                return args, i
        elif ch == "," and depth == 1:
            args.append(text[begin:i].strip())
            begin = i + 1
    raise AssertionError(f"unbalanced var( at {start}: {text[start:start + 80]!r}")


def var_calls(text: str):
    """Each ``var(`` call in ``text``: (offset, name, fallback or None); nested ones too."""
    for found in re.finditer(r"\bvar\(", text):
        args, _ = split_args(text, found.end() - 1)
        yield found.start(), args[0], (",".join(args[1:]).strip() if len(args) > 1 else None)


def last_fallback(value: str) -> str | None:
    """Follow ``var(--a, var(--b, X))`` to X (None when a nested var has none: reported on its own)."""
    value = value.strip()
    while value.startswith("var("):
        args, _ = split_args(value, 3)
        if len(args) == 1:
            return None
        value = ",".join(args[1:]).strip()
    return value


def property_at(text: str, offset: int) -> str:
    """The CSS property (or custom property) of the declaration holding ``offset``."""
    begin = max(text.rfind(c, 0, offset) for c in "{;\n")
    declaration = text[begin + 1:offset]
    return declaration.split(":")[0].strip().lower() if ":" in declaration else ""


def rgba(value: str):
    """(r, g, b, alpha) of a hex, rgb() or rgba() colour, else None."""
    value = value.strip().lower()
    if m := re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6})", value):
        h = m.group(1) if len(m.group(1)) == 6 else "".join(c * 2 for c in m.group(1))
        return (*(int(h[i:i + 2], 16) for i in (0, 2, 4)), 1.0)
    if m := re.fullmatch(r"rgba?\(([^)]*)\)", value):
        parts = [p for p in re.split(r"[\s,/]+", m.group(1)) if p]
        alpha = float(parts[3].rstrip("%")) / (100 if parts[3].endswith("%") else 1) if len(parts) > 3 else 1.0
        return (*(int(float(p)) for p in parts[:3]), alpha)
    return None


def contrast(a, b) -> float:
    def lum(c):
        ch = [x / 255 for x in c[:3]]
        ch = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in ch]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def why_unreadable(prop: str, value: str) -> str | None:
    """None when ``value``, the last fallback of ``prop``, reads in light and dark themes."""
    if NOT_COLOURS.match(prop):
        return None
    text = prop == "color" or prop.endswith("-text")
    word = value.lower()
    if word in ("inherit", "currentcolor", "unset"):
        return None
    if word == "transparent":
        return "transparent text" if text else None
    colour = rgba(value)
    if colour is None:
        return f"not a colour this test knows: {value!r}"
    if colour[3] <= 0.4 and not text:
        return None  # a tint over whatever the background is
    worst = min(contrast(colour, LIGHT), contrast(colour, DARK))
    return None if worst >= 3 else f"{value} has contrast {worst:.2f}:1 on white or #1e1e1e"


def test_the_scanner_parses_nested_fallbacks_and_catches_missing_ones():
    text = ".a { color: var(--jp-x, var(--vscode-y, #222)); border: 1px solid var(--jp-z); }"
    calls = list(var_calls(text))
    assert [(name, fb) for _, name, fb in calls] == [
        ("--jp-x", "var(--vscode-y, #222)"), ("--vscode-y", "#222"), ("--jp-z", None)]
    assert last_fallback(calls[0][2]) == "#222" and property_at(text, calls[0][0]) == "color"
    assert property_at(text, calls[2][0]) == "border"
    assert why_unreadable("color", "#222")  # dark grey: unreadable on a dark background
    assert why_unreadable("background", "#eee")  # a light box: light text on it in a dark theme
    assert why_unreadable("color", "transparent")
    assert why_unreadable("color", "#808080") is None and why_unreadable("background", "rgba(128,128,128,.25)") is None
    assert why_unreadable("font-family", "sans-serif") is None


def test_there_are_sources_with_theme_variables():
    assert sum(1 for p in SOURCES for _ in var_calls(p.read_text(encoding="utf-8"))) > 50


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PIPENB)))
def test_every_variable_has_a_fallback_readable_in_light_and_dark(path):
    text = path.read_text(encoding="utf-8")
    problems = []
    for offset, name, fallback in var_calls(text):
        line = text.count("\n", 0, offset) + 1
        if not fallback:
            problems.append(f"line {line}: var({name}) has no fallback")
            continue
        prop, last = property_at(text, offset), last_fallback(fallback)
        why = why_unreadable(prop, last) if last is not None else None
        if why:
            problems.append(f"line {line}: {prop}: var({name}, {fallback}): {why}")
    assert not problems, "\n".join(problems)

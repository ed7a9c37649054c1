"""What a run adds to a drawn stage graph: visit counts, edges taken, undeclared moves, stale and current stages.

``to_svg`` (Graphviz) and ``fallback_svg`` (built-in) take the same keyword
arguments; ``RunMarks.of`` checks them once and answers the questions both
drawings ask: which drawn edge a move of the run went along (a move out of a
sub-pipeline goes along the edge leaving its cluster), which moves no edge
declares (a router jump to a stage not in its ``routes``), and what a node's
tooltip says about the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .graph_style import TOOLTIP_CHARS, clean_text


def _within(address: str, stage_key: str) -> bool:
    return address == stage_key or address.startswith(stage_key + "/")


def _count(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{what}: a count must be an int >= 0, got {value!r}")
    return value


def _condition_name(when) -> str:
    """A condition as a tooltip names it: a string as given, a callable by its name."""
    if when is None:
        return ""
    name = (
        when
        if isinstance(when, str)
        else (getattr(when, "__name__", None) or getattr(when, "__qualname__", None) or repr(when))
    )
    return clean_text(name, TOOLTIP_CHARS // 4)


@dataclass(frozen=True)
class RunMarks:
    """The run's marks on a pipeline's graph, checked (see ``RunMarks.of``)."""

    visits: dict = field(default_factory=dict)  # address -> committed records of it
    edge_counts: dict = field(default_factory=dict)  # index into pipeline.edges() -> moves along it
    undeclared: list = field(default_factory=list)  # (from_address, to_address, count), in first-seen order
    current: str | None = None
    stale: frozenset = frozenset()
    conditional: dict = field(default_factory=dict)  # address -> its condition's name ("" when unnamed)

    @classmethod
    def of(cls, pipeline, visits=None, transitions=None, current=None, stale=(), conditional=()) -> RunMarks:
        """Check the drawing functions' keyword arguments (TypeError/ValueError naming the culprit) and
        match each move of ``transitions`` with the drawn edge it went along, or call it undeclared.
        Addresses the pipeline does not have (records of an older definition) are left undrawn."""
        known = {info.key for info in pipeline.walk()}
        if visits is not None and not isinstance(visits, Mapping):
            raise TypeError(f"visits must be a mapping {{address: count}}, got {type(visits).__name__}")
        seen = {str(a): _count(n, f"visits[{a!r}]") for a, n in (visits or {}).items()}
        if transitions is not None and not isinstance(transitions, Mapping):
            raise TypeError(
                f"transitions must be a mapping {{(from_address, to_address): count}}, got {type(transitions).__name__}"
            )
        if current is not None and not isinstance(current, str):
            raise TypeError(f"current must be a stage address (str) or None, got {current!r}")
        for name, value in (("stale", stale), ("conditional", conditional)):
            if isinstance(value, str):
                raise TypeError(f"{name} must be an iterable of stage addresses, not the string {value!r}")
        names = (
            {str(a): _condition_name(w) for a, w in conditional.items()}
            if isinstance(conditional, Mapping)
            else {str(a): "" for a in conditional}
        )
        counts, undeclared = _match_moves(pipeline, transitions or {}, known)
        return cls(
            visits=seen,
            edge_counts=counts,
            undeclared=undeclared,
            current=current,
            stale=frozenset(str(a) for a in stale),
            conditional=names,
        )

    def node_note(self, key: str, breakpoint: bool) -> str:
        """What the run adds to a stage's tooltip (empty when nothing): visits, stale code, breakpoint, position."""
        lines = []
        n = self.visits.get(key, 0)
        if n:
            lines.append(f"visited {n} time{'s' if n != 1 else ''}")
        if key in self.stale:
            lines.append("code changed since it ran: its records are stale")
        if key in self.conditional:
            name = self.conditional[key]
            lines.append(f"conditional breakpoint: when {name}" if name else "conditional breakpoint")
        elif breakpoint:
            lines.append("breakpoint")
        if key == self.current:
            lines.append("the stage at this position")
        return "\n".join(lines)

    def visit_badge(self, key: str) -> str:
        """``"×3"`` for a stage visited more than once, else ``""``."""
        n = self.visits.get(key, 0)
        return f"×{n}" if n > 1 else ""


def _match_moves(pipeline, transitions: Mapping, known: set) -> tuple[dict, list]:
    """Each move counted on the drawn edge it went along (exact stages first, then the edge leaving or entering
    a sub-pipeline around them); a move into a sub-pipeline from its own stage is no edge; the rest undeclared."""
    edges = [(tail.key, head.key) for tail, head, _kind in pipeline.edges()]
    counts: dict[int, int] = {}
    undeclared: list = []
    for pair, n in transitions.items():
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(a, str) for a in pair)):
            raise TypeError(f"transitions: a key must be a (from_address, to_address) pair of str, got {pair!r}")
        n = _count(n, f"transitions[{pair!r}]")
        a, b = pair
        if n == 0 or a not in known or b not in known or (a != b and (_within(b, a) or _within(a, b))):
            continue  # nothing to draw, or the move in and out of a sub-pipeline's own cluster
        matches = [i for i, (t, h) in enumerate(edges) if _within(a, t) and _within(b, h)]
        if matches:
            best = max(matches, key=lambda i: len(edges[i][0]) + len(edges[i][1]))  # the innermost edge
            counts[best] = counts.get(best, 0) + n
        else:
            undeclared.append((a, b, n))
    return counts, undeclared

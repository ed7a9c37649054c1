"""What a router may answer: a stage id, ``None``, ``END`` or a ``Pause``.

The TypeScript seed uses ``undefined`` (advance) and ``null`` (terminate);
Python has one ``None``, so terminate is the ``END`` sentinel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import RoutingError
from .lifecycle import check_timeout
from .sentinel import END


@dataclass(frozen=True, slots=True, init=False)
class Pause:
    """Suspend the run; it continues at ``stage_id`` (same pipeline) when resumed.

    ``timeout`` (seconds) is how long the registry keeps the live context for
    an instant resume; None means the registry's default, 0 export at once.
    ``persist`` also writes the artifacts into the checkpoint at pause time.
    """

    stage_id: str
    timeout: float | None = None
    persist: bool = False

    def __init__(self, stage_id: str, timeout: float | None = None, persist: bool = False):
        # Made by a router at every pause: the slots are filled directly (the frozen dataclass's own __init__
        # costs twice as much).
        if not isinstance(stage_id, str) or not stage_id:
            raise TypeError(f"Pause needs a stage id (non-empty str), got {stage_id!r}")
        if not (timeout is None or (type(timeout) is int or type(timeout) is float) and timeout >= 0):  # nan fails
            try:
                check_timeout(timeout, f"Pause({stage_id!r}) timeout")
            except ValueError as exc:
                raise TypeError(str(exc)) from None
        _PAUSE_SET[0](self, stage_id)
        _PAUSE_SET[1](self, timeout)
        _PAUSE_SET[2](self, persist)


_PAUSE_SET = (Pause.stage_id.__set__, Pause.timeout.__set__, Pause.persist.__set__)


def is_pause_instruction(value: object) -> bool:
    """True when a router's answer asks the run to pause."""
    return isinstance(value, Pause)


def describe(value: Any) -> str:
    """A short repr for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def where(pipe, stage) -> str:
    """``router of stage 'x' in pipeline 'p'``: how error messages name a router."""
    return f"router of stage {stage.id!r} in pipeline {pipe.id!r}"


def check_decision(pipe, stage, decision):
    """The router's answer if it is one the pipeline can follow, else a ``RoutingError`` naming both."""
    if decision is None or decision is END:
        return decision
    if type(decision) is str or type(decision) is Pause:
        target = decision if type(decision) is str else decision.stage_id
        if target in pipe.position:
            return decision
        raise RoutingError(
            f"{where(pipe, stage)} returned {describe(decision)}: pipeline {pipe.id!r} has no stage "
            f"{target!r} (stages: {', '.join(s.id for s in pipe.ordered)})",
            stage_id=stage.id, value=decision,
        )
    raise RoutingError(
        f"{where(pipe, stage)} returned {type(decision).__name__} {describe(decision)}; expected a "
        f"stage id, None, END or Pause(...)",
        stage_id=stage.id, value=decision,
    )

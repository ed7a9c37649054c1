"""What a router may answer: a stage id, ``None``, ``END`` or a ``Pause``.

The TypeScript seed uses ``undefined`` (advance) and ``null`` (terminate);
Python has one ``None``, so terminate is the ``END`` sentinel.
"""

from __future__ import annotations

from dataclasses import dataclass


class _End:
    __slots__ = ()
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "END"

    def __reduce__(self):
        return (_End, ())


END = _End()


@dataclass(frozen=True, slots=True)
class Pause:
    """Suspend the run; it continues at ``stage_id`` (same pipeline) when resumed.

    ``timeout`` (seconds) is how long the registry keeps the live context for
    an instant resume; None means the registry's default, 0 export at once.
    ``persist`` also writes the artifacts into the checkpoint at pause time.
    """

    stage_id: str
    timeout: float | None = None
    persist: bool = False

    def __post_init__(self):
        if not isinstance(self.stage_id, str) or not self.stage_id:
            raise TypeError(f"Pause needs a stage id (non-empty str), got {self.stage_id!r}")
        if self.timeout is not None and (
            isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)) or self.timeout < 0
        ):
            raise TypeError(f"Pause timeout must be seconds >= 0 or None, got {self.timeout!r}")


def is_pause_instruction(value: object) -> bool:
    """True when a router's answer asks the run to pause."""
    return isinstance(value, Pause)

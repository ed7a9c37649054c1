"""``RunRecord``: one line of a registry's (or a factory's) list of runs, as people read it.

It is its own module so the registry module is about keeping runs, and this
one about showing them: times as local datetimes, durations as timedeltas.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field


def _when(t: float | None) -> str:
    """Epoch seconds as local time for people: ``2026-12-07 14:03:12`` (``None``: ``None``)."""
    return "None" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


@dataclass(frozen=True, repr=False)
class RunRecord:
    """One line of ``registry.runs()`` (``registry.finished()`` for the completed and terminated runs) and of
    ``factory.runs()``, which adds the runs of its store: ``ended`` (epoch seconds) for a finished run whose store
    says when, ``forked_from`` (a ``ForkSource``) for a fork."""

    run_id: str
    pipeline_id: str
    status: str
    paused_at: str | None
    expires_at: float | None
    live: bool
    note: str = ""
    size: int | None = None  # approximate bytes of the run's state held in memory (None: not held)
    ended: float | None = field(default=None, kw_only=True)  # a finished run: when it ended (epoch s), if known
    forked_from: object = field(default=None, kw_only=True)  # a fork: ``ForkSource(run_id, at, seq)`` of its source

    @property
    def time_left(self) -> float | None:
        """Seconds until the held run is let go (exported into its store), or None when it has no expiry."""
        return None if self.expires_at is None else max(0.0, self.expires_at - time.time())

    def to_dict(self) -> dict:
        """The record for people and frames (``pd.DataFrame([r.to_dict() for r in registry.runs()])``):
        ``expires_at`` as a local ``datetime`` and ``time_left`` as a ``timedelta``, not seconds."""
        left = self.time_left
        return {
            "run_id": self.run_id,
            "pipeline_id": self.pipeline_id,
            "status": self.status,
            "paused_at": self.paused_at,
            "live": self.live,
            "expires_at": None
            if self.expires_at is None or left == float("inf")
            else datetime.datetime.fromtimestamp(self.expires_at).astimezone(),
            "time_left": None if left is None or left == float("inf") else datetime.timedelta(seconds=round(left)),
            "note": self.note,
            "size": self.size,
            "ended": None if self.ended is None else datetime.datetime.fromtimestamp(self.ended).astimezone(),
            "forked_from": None if self.forked_from is None else self.forked_from.run_id,
        }

    def __repr__(self) -> str:
        # People read this: expires_at in local time with the time left, not epoch seconds.
        left = self.time_left
        expires = (
            f"{_when(self.expires_at)} ({left:.0f} s left)"
            if left is not None and left != float("inf")
            else _when(self.expires_at)
            if left is None
            else "never"
        )
        fields = (
            f"run_id={self.run_id!r}, pipeline_id={self.pipeline_id!r}, status={self.status!r}, "
            f"paused_at={self.paused_at!r}, expires_at={expires}, live={self.live!r}"
        )
        return (
            f"RunRecord({fields}"
            + (f", note={self.note!r}" if self.note else "")
            + (f", size={self.size!r}" if self.size is not None else "")
            + (f", ended={_when(self.ended)}" if self.ended is not None else "")
            + (f", forked_from={self.forked_from!r}" if self.forked_from is not None else "")
            + ")"
        )

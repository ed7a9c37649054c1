"""``ArtifactContainer``: heavy per-run objects that should not live in the state.

State is merged, snapshotted and (in SQLite) pickled at every stage commit;
a fitted model or a big DataFrame belongs here instead. One container serves a
run and all its sub-pipelines; step outputs are recorded under namespaced keys
(``"train/fit/fit_model"``).

A durable store that keeps artifacts (``StoreBase.keeps_artifacts``) writes,
with each stage commit, only the artifacts put or recorded since the last
commit: the container keeps those keys apart (``unsaved``) until the engine
says they were committed (``saved``). An artifact the store could not write
(put with ``durable=False``, or unpicklable) comes back after a restart as a
``NotSaved`` marker, which ``get`` and ``[]`` turn into an
``ArtifactNotSavedError`` naming it, never a silent ``None``. A store without
that capability gets the whole container as a bundle (``export`` /
``from_bundle``) when the registry releases a paused run.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator, NamedTuple

from .errors import ArtifactNotSavedError

BUNDLE_VERSION = 1
_MISSING = object()
NOT_DURABLE = "put with durable=False: kept in memory only"
"""The reason a store gives for an artifact put with ``durable=False``."""


class NotSaved(NamedTuple):
    """Where an artifact was that the run's store did not write: its key, why, and the run."""

    key: str
    reason: str
    run_id: str = ""

    def error(self) -> ArtifactNotSavedError:
        """The error reading it raises, naming the artifact, the run and why."""
        run = f"run {self.run_id}: " if self.run_id else ""
        return ArtifactNotSavedError(
            f"{run}artifact {self.key!r} was not saved to the run's store ({self.reason}), so it did not survive the "
            f"restart; put it again (a picklable object, durable=True) or re-run the stage that made it",
            key=self.key,
            reason=self.reason,
        )


class ArtifactContainer:
    """``keep_log``: also keep every write in order, so ``as_of(mark)`` can give the
    artifacts as they were at an earlier point (forks of a run with history)."""

    __slots__ = ("_items", "_lock", "_log", "_tick", "_changed", "_volatile", "_skipped", "_more", "_filled")

    def __init__(self, items: dict | None = None, keep_log: bool = False, *, more: Callable[[], dict] | None = None):
        self._items: dict[str, Any] = dict(items or {})
        self._lock = threading.Lock()
        self._log: list | None = list(self._items.items()) if keep_log else None
        # ``more()``: artifacts that were there before this container was made but are costly to read (the step
        # outputs a durable store's history rows carry), read on the first look that needs them; the keys given
        # in ``items`` win. Kept apart from the log, so the marks taken meanwhile stay right.
        self._more = more
        self._filled: dict[str, Any] = {}
        self._tick = 0  # counts writes: ``unsaved`` / ``saved`` speak in ticks
        self._changed: dict[str, int] = {}  # key -> tick of its last write not yet committed, oldest first
        self._volatile: set[str] = set()  # keys put with durable=False
        # key -> why the store did not write its current value (a marker read back from a store included)
        self._skipped: dict[str, str] = {v.key: v.reason for v in self._items.values() if type(v) is NotSaved}

    def put(self, key: str, value: Any, durable: bool = True) -> None:
        """Keep ``value`` under ``key``. ``durable=False``: in memory only, never written to a durable store
        (reading it after a restart raises ``ArtifactNotSavedError``)."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"artifact key must be a non-empty str, got {key!r}")
        with self._lock:
            self._items[key] = value
            if self._log is not None:
                self._log.append((key, value))
            if durable:
                self._volatile.discard(key)
            else:
                self._volatile.add(key)
            self._touch(key)

    def _touch(self, key: str) -> None:
        self._tick += 1
        changed = self._changed
        changed.pop(key, None)  # to the end: ``_changed`` stays ordered by tick
        changed[key] = self._tick

    def record(self, prefix: str, outputs: dict, *, saved: bool = False) -> None:
        """Record a stage's step outputs under ``prefix + step_id`` (the engine's hot path). ``saved``: the commit
        that records them writes them some other way (its history row), so they are not ``unsaved``."""
        items = self._items
        log = self._log
        if saved and not self._changed:  # the hot path of a store that keeps no artifacts: nothing to track
            for step_id, patch in outputs.items():
                key = prefix + step_id
                items[key] = patch
                if log is not None:
                    log.append((key, patch))
            return
        with self._lock:
            for step_id, patch in outputs.items():
                key = prefix + step_id
                items[key] = patch
                if log is not None:
                    log.append((key, patch))
                if saved:
                    self._changed.pop(key, None)
                else:
                    self._touch(key)

    def tick(self) -> int:
        """The count of writes so far: a point to give ``unsaved(upto=...)``."""
        return self._tick

    def unsaved(self, upto: int | None = None) -> tuple[int, list[tuple[str, Any, bool]]]:
        """(the tick now, ``(key, value, durable)`` of every artifact written since the last ``saved``, and last
        written by tick ``upto`` if given): what the next stage commit writes to a store that keeps artifacts."""
        with self._lock:
            items, volatile = self._items, self._volatile
            return self._tick, [
                (key, items[key], key not in volatile)
                for key, at in self._changed.items()
                if upto is None or at <= upto
            ]

    def saved(self, tick: int, skipped: dict[str, str] | None = None) -> dict[str, str]:
        """The writes up to ``tick`` were committed, but not the keys of ``skipped`` (key -> why); returns those of
        ``skipped`` that were saved before (or never seen), so a warning names each artifact once."""
        with self._lock:
            changed = self._changed
            if not skipped and not self._skipped and changed and next(reversed(changed.values())) <= tick:
                changed.clear()  # the usual case: everything written, nothing skipped now or before
                return {}
            while changed:
                key = next(iter(changed))
                if changed[key] > tick:
                    break
                del changed[key]
                if key not in (skipped or ()):
                    self._skipped.pop(key, None)
            new = {k: why for k, why in (skipped or {}).items() if self._skipped.get(k) != why}
            self._skipped.update(skipped or {})
            return new

    def withhold(self, since: int) -> None:
        """The stage that began at tick ``since`` did not commit (it failed, or was aborted): what it put stays
        readable here, for a look while debugging, but no later save writes it (its retry puts it again)."""
        with self._lock:
            changed = self._changed  # ordered by tick: the stage's writes are the newest
            while changed and next(reversed(changed.values())) > since:
                changed.popitem()

    def not_saved(self) -> dict[str, str]:
        """Key -> why, for each artifact whose current value the run's durable store did not write."""
        with self._lock:
            return dict(self._skipped)

    def _fill(self) -> None:
        more = self._more
        if more is None:
            return
        found = more()
        with self._lock:
            if self._more is None:
                return
            self._more = None
            items = self._items
            for key, value in found.items():
                if key not in items:
                    items[key] = self._filled[key] = value

    def mark(self) -> int:
        """A point in this container's writes, for ``as_of`` (0 when it keeps no log)."""
        return len(self._log) if self._log is not None else 0

    def as_of(self, mark: int) -> ArtifactContainer:
        """A new container holding what this one held at ``mark`` (the objects shared, not copied)."""
        self._fill()
        if self._log is None:
            return ArtifactContainer(self._items, keep_log=False)
        with self._lock:
            writes = self._log[:mark]
        return ArtifactContainer({**self._filled, **dict(writes)}, keep_log=True)

    def get(self, key: str, default: Any = None) -> Any:
        """The artifact under ``key``, or ``default``; ``ArtifactNotSavedError`` if it did not survive a restart."""
        value = self._items.get(key, _MISSING)
        if value is _MISSING:
            if self._more is None:
                return default
            self._fill()
            value = self._items.get(key, default)
        if type(value) is NotSaved:
            raise value.error()
        return value

    def __getitem__(self, key: str) -> Any:
        value = self._items.get(key, _MISSING)
        if value is _MISSING and self._more is not None:
            self._fill()
            value = self._items.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(f"no artifact {key!r}; known: {sorted(self._items)[:20]}")
        if type(value) is NotSaved:
            raise value.error()
        return value

    def __contains__(self, key: object) -> bool:
        if key not in self._items and self._more is not None:
            self._fill()
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return iter(list(self._items))

    def __len__(self) -> int:
        self._fill()
        return len(self._items)

    def keys(self) -> list[str]:
        """The artifact keys, in the order they were first put."""
        self._fill()
        return list(self._items)

    def items(self) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs, in the order they were first put; an artifact that did not survive a restart is
        its ``NotSaved`` marker."""
        self._fill()
        return list(self._items.items())

    def export(self) -> dict:
        """A bundle (plain dict) that ``from_bundle`` turns back into a container."""
        self._fill()
        with self._lock:
            return {"version": BUNDLE_VERSION, "artifacts": dict(self._items)}

    @classmethod
    def from_bundle(cls, bundle: dict | None, keep_log: bool = False) -> ArtifactContainer:
        """A container from a bundle ``export()`` made (None: an empty one); a bundle of another version is a ``ValueError``."""
        if bundle is None:
            return cls(keep_log=keep_log)
        if not isinstance(bundle, dict) or bundle.get("version") != BUNDLE_VERSION:
            raise ValueError(f"not an artifact bundle of version {BUNDLE_VERSION}: {type(bundle).__name__}")
        return cls(bundle["artifacts"], keep_log=keep_log)

    def __repr__(self) -> str:
        return f"ArtifactContainer({len(self._items)} items: {', '.join(list(self._items)[:5])})"


def not_saved_note(container: ArtifactContainer) -> str:
    """What a run's ``RunRecord.note`` says of the artifacts its store did not write ("" when none)."""
    skipped = container.not_saved()
    if not skipped:
        return ""
    named = "; ".join(f"artifact {key!r} cannot be saved ({why})" for key, why in sorted(skipped.items()))
    return f"{named}: lost if this kernel restarts"


def save_unsaved(container: ArtifactContainer, store, history) -> str:
    """Before a paused run is let go: write what was put since its last stage commit (from a cell) to ``store``,
    which keeps artifacts, as existing before the run's next record (``history``: the run's, or None). Why the
    run must stay live instead (an artifact not saved, the write failed), or ""."""
    tick, items = container.unsaved()
    try:
        if items:
            container.saved(tick, store.write_artifacts(history.next_seq - 1 if history is not None else 0, items))
        note = not_saved_note(container)
    except Exception as exc:
        note = f"the artifacts put since its last stage cannot be written: {type(exc).__name__}: {exc}"
    return f"the run stays live in this kernel only: {note}" if note else ""


def unsaveable_artifact(artifacts) -> tuple[str, str] | None:
    """(key, type name) of the first artifact that cannot be pickled, if any (only on the failure path)."""
    import pickle

    for key, value in artifacts.items():
        try:
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return key, type(value).__name__
    return None

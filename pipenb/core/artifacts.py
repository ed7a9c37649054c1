"""``ArtifactContainer``: heavy per-run objects that should not live in the state.

State is merged, snapshotted and (in SQLite) pickled at every stage commit;
a fitted model or a big DataFrame belongs here instead. One container serves a
run and all its sub-pipelines; step outputs are recorded under namespaced keys
(``"train/fit/fit_model"``). The registry exports it into the checkpoint when
a paused run's live context is released, and ``from_bundle`` rebuilds it.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator

BUNDLE_VERSION = 1
_MISSING = object()


class ArtifactContainer:
    """``keep_log``: also keep every write in order, so ``as_of(mark)`` can give the
    artifacts as they were at an earlier point (forks of a run with history)."""

    __slots__ = ("_items", "_lock", "_log")

    def __init__(self, items: dict | None = None, keep_log: bool = False):
        self._items: dict[str, Any] = dict(items or {})
        self._lock = threading.Lock()
        self._log: list | None = list(self._items.items()) if keep_log else None

    def put(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key`` (a non-empty str): ``ctx.artifacts.put("model", model)``."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"artifact key must be a non-empty str, got {key!r}")
        with self._lock:
            self._items[key] = value
            if self._log is not None:
                self._log.append((key, value))

    def record(self, prefix: str, outputs: dict) -> None:
        """Record a stage's step outputs under ``prefix + step_id`` (the engine's hot path)."""
        items = self._items
        log = self._log
        for step_id, patch in outputs.items():
            items[prefix + step_id] = patch
            if log is not None:
                log.append((prefix + step_id, patch))

    def mark(self) -> int:
        """A point in this container's writes, for ``as_of`` (0 when it keeps no log)."""
        return len(self._log) if self._log is not None else 0

    def as_of(self, mark: int) -> ArtifactContainer:
        """A new container holding what this one held at ``mark`` (the objects shared, not copied)."""
        if self._log is None:
            return ArtifactContainer(self._items, keep_log=False)
        with self._lock:
            writes = self._log[:mark]
        return ArtifactContainer(dict(writes), keep_log=True)

    def get(self, key: str, default: Any = None) -> Any:
        """The artifact under ``key``, or ``default``."""
        return self._items.get(key, default)

    def __getitem__(self, key: str) -> Any:
        value = self._items.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(f"no artifact {key!r}; known: {sorted(self._items)[:20]}")
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[str]:
        """The artifact keys, in the order they were first put."""
        return list(self._items)

    def items(self) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs, in the order they were first put."""
        return list(self._items.items())

    def export(self) -> dict:
        """A bundle (plain dict) that ``from_bundle`` turns back into a container."""
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

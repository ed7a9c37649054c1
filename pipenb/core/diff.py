"""What a record changed: ``StateDiff`` and ``diff_states``, and the exact patch that makes one state another."""

from __future__ import annotations

from dataclasses import dataclass

from .state import is_mapping


@dataclass(frozen=True)
class StateDiff:
    """What a record changed, by key path (tuples): ``added``, ``removed``, ``changed`` (old, new)."""

    added: dict
    removed: dict
    changed: dict

    @property
    def keys(self) -> list:
        """The changed top-level keys, in order of first appearance."""
        seen: dict = {}
        for part in (self.added, self.removed, self.changed):
            for path in part:
                seen.setdefault(path[0], None)
        return list(seen)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff_states(before, after, prefix: tuple = (), keys=None) -> StateDiff:
    """Compare two states key by key; identical objects (shared structure) are skipped at once.

    ``keys``: the only top-level keys that can differ (a record's patch touched no
    others: merges share every other value), so a big state costs nothing.
    """
    added: dict = {}
    removed: dict = {}
    changed: dict = {}

    def walk(a, b, path, only=None):
        if only is not None:
            for key in only:
                if key not in b and key in a:
                    removed[path + (key,)] = a[key]
            b = {key: b[key] for key in only if key in b}
            a_keys = ()
        else:
            a_keys = a.items()
        for key, new in b.items():
            old = a.get(key, _MISSING)
            if old is new:
                continue
            if old is _MISSING:
                added[path + (key,)] = new
            elif is_mapping(old) and is_mapping(new):
                walk(old, new, path + (key,))
            elif not same(old, new):
                changed[path + (key,)] = (old, new)
        for key, old in a_keys:
            if key not in b:
                removed[path + (key,)] = old

    walk(before, after, prefix, keys)
    return StateDiff(added, removed, changed)


_MISSING = object()


def same(a, b) -> bool:
    """``a == b`` as a bool, False when the comparison raises or is ambiguous (arrays, frames): such values count as changed."""
    try:
        return bool(a == b)
    except Exception:  # arrays and frames compare element-wise: different objects count as changed
        return False


def exact_patch(diff: StateDiff) -> dict:
    """A patch that merges ``diff``'s before-state into its after-state exactly."""
    from .sentinel import DELETE

    out: dict = {}
    parts = [(path, new) for path, new in diff.added.items()]
    parts += [(path, new) for path, (_old, new) in diff.changed.items()]
    parts += [(path, DELETE) for path in diff.removed]
    for path, value in parts:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out

"""The states of a run's history records, kept in proportion to what the stages changed (SPEC 15).

Each merge copies a state's top level (the values themselves are shared), so
a record holding its whole state would cost the width of the state: 1,000
stages over 10,000 keys would keep 1,000 top-level copies (about 200 MB).
Instead a record's state is a ``Link``: the newest one holds the state itself
(the store's, shared: it costs nothing), and when a newer record comes it
keeps only the top-level values its stage wrote, by key, beside a reference
to the link before it. Now and then a link keeps its whole state (a
*keyframe*): when the values written since the last keyframe reach
``1 / KEYFRAME_EVERY`` of the state's width, so keyframes cost at most about
``KEYFRAME_EVERY`` times what the stages wrote, and rebuilding any record's
state copies one top level and sets at most that many keys.

Rebuilt states hold the very value objects the run's states held (nothing
re-merged or re-frozen), so they are equal to them and share their values.
"""

from __future__ import annotations

from .sentinel import DELETE
from .state import FrozenDict, is_mapping

KEYFRAME_EVERY = 8
"""A link keeps its whole state once the keys written since the last kept state reach width / this."""

GONE = object()
"""A key the stage removed (in ``Link.changes``)."""

_set = dict.__setitem__
_pop = dict.pop


STATE, PARENT, CHANGES, SINCE = range(4)


Link = list
"""One record's state, as a list (one is made per stage): ``[STATE]`` whole (None once only the changes are
kept), ``[CHANGES]`` (key -> value or ``GONE``) over ``[PARENT]``'s state (``[PARENT]`` None: always whole),
``[SINCE]`` the keys written since the last link that keeps its whole state."""


def root(state) -> Link:
    """The link of a state kept whole for good (a history's initial or base state)."""
    return [state, None, None, 0]


_SCALARS = frozenset({int, float, str, bool, bytes, type(None)})


def after(prev: Link | None, base, state, patch, _scalars=_SCALARS, _frozen=FrozenDict,
          _every=KEYFRAME_EVERY) -> Link:
    """The link of ``state``, made by a stage that wrote ``patch`` (top-level keys) on ``base``.

    When ``base`` is not ``prev``'s state (something changed the state between
    the two records, or there is no ``prev``), the new link stays whole.
    ``prev`` (the newest link until now) settles: it keeps only its changes unless it is due to stay whole.
    """
    # Indexes by number on this path (one link a stage): 0 STATE, 1 PARENT, 3 SINCE.
    if prev is None or base is not prev[0] or base is None:
        return [state, None, None, 0]
    changes = patch
    if patch is None:
        changes = _NONE
    elif type(patch) is dict or type(patch) is _frozen:
        for value in patch.values():  # a patch of plain values is its own change set
            if type(value) not in _scalars and (value is DELETE or is_mapping(value)):
                get = state.get
                changes = {key: get(key, GONE) for key in patch}
                break
    else:
        get = state.get
        changes = {key: get(key, GONE) for key in patch}
    since = prev[3]
    if prev[1] is not None and since * _every < len(base):  # prev keeps only its changes
        prev[0] = None
    else:
        since = 0  # prev stays whole: count again from here
    return [state, prev, changes, since + (len(changes) or 1)]


_NONE: dict = {}


def state_of(link: Link):
    """The whole state of ``link``: its own, or rebuilt from the nearest whole one before it."""
    state = link[STATE]
    if state is not None:
        return state
    chain = []
    while state is None:
        chain.append(link[CHANGES])
        link = link[PARENT]
        state = link[STATE]
    out = FrozenDict(state)
    for changes in reversed(chain):
        for key, value in changes.items():
            if value is GONE:
                _pop(out, key, None)
            else:
                _set(out, key, value)
    return out


def value_of(link: Link, key, default):
    """``state_of(link).get(key, default)`` without rebuilding the state."""
    while link[STATE] is None:
        changes = link[CHANGES]
        if key in changes:
            value = changes[key]
            return default if value is GONE else value
        link = link[PARENT]
    return link[STATE].get(key, default)


class KeyView:
    """A link's state as ``diff_states`` reads it for a few keys: ``in``, ``[key]``, ``get``."""

    __slots__ = ("link",)

    def __init__(self, link: Link):
        self.link = link

    def get(self, key, default=None):
        return value_of(self.link, key, default)

    def __contains__(self, key) -> bool:
        return value_of(self.link, key, GONE) is not GONE

    def __getitem__(self, key):
        value = value_of(self.link, key, GONE)
        if value is GONE:
            raise KeyError(key)
        return value

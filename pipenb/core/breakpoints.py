"""``Breakpoints``: the stage addresses a run pauses before, each with an optional condition (SPEC 14).

A set of addresses (``add``, ``discard``, ``in``, ``len``, iteration,
``clear``, ``update``, comparisons with sets), as widgets and code used it
when it was a plain ``set``. ``add(address, when=None)`` takes a condition
``when(state) -> bool``, checked before the stage runs with the user state
then: the run pauses only when it is true; a condition that raises pauses the
run, and the pause's reason names the breakpoint and the exception. An
address that is not a stage of the run's pipeline is a ``ValueError`` naming
it and the closest stages.
"""

from __future__ import annotations

import difflib
from collections.abc import MutableSet
from typing import Callable, Iterable, Iterator

BREAKPOINT = "breakpoint"


class Breakpoints(MutableSet):
    """Stage addresses (``"train/fit"``) to pause before; ``pipeline`` is the definition they must name."""

    def __init__(self, pipeline=None, addresses: Iterable[str] = ()):
        self.pipeline = pipeline  # kept current by the run's context (rebinding keeps the breakpoints)
        self._when: dict[str, Callable | None] = {}
        self.errors: dict[str, BaseException] = {}  # address -> what its condition raised when it last ran
        self.update(addresses)

    @classmethod
    def _from_iterable(cls, it) -> set:
        return set(it)  # ``bps - other``, ``bps | other``: plain sets

    # -- the set ------------------------------------------------------------
    def __contains__(self, address) -> bool:
        return address in self._when

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._when))  # a copy: widgets change breakpoints from another thread

    def __len__(self) -> int:
        return len(self._when)

    def add(self, address: str, when: Callable | None = None) -> None:
        """Pause before the stage at ``address``; only when ``when(state)`` is true, if given (replaces any
        condition the address had)."""
        self._check(address)
        if when is not None and not callable(when):
            raise TypeError(f"breakpoint {address!r}: when must be a callable when(state) -> bool, got {when!r}")
        self._when[address] = when

    def discard(self, address: str) -> None:
        self._when.pop(address, None)
        self.errors.pop(address, None)

    def update(self, *others: Iterable[str]) -> None:
        """Add every address of ``others``; an address already set keeps its condition."""
        for other in others:
            for address in ([other] if isinstance(other, str) else list(other)):
                if address not in self._when:
                    self.add(address)

    def __ior__(self, other):
        self.update(other)  # ``bps |= {...}``: like update, conditions kept
        return self

    def difference_update(self, *others: Iterable[str]) -> None:
        """Remove every address of ``others`` (addresses that have no breakpoint are ignored)."""
        for other in others:
            for address in list(other):
                self.discard(address)

    def copy(self) -> set:
        """The addresses as a plain ``set`` (without their conditions)."""
        return set(self._when)

    # -- conditions -----------------------------------------------------------
    def condition(self, address: str) -> Callable | None:
        """The condition of the breakpoint at ``address`` (None: unconditional, or no breakpoint there)."""
        return self._when.get(address)

    @property
    def conditional(self) -> set[str]:
        """The addresses whose breakpoint has a condition (a graph may draw them differently)."""
        return {address for address, when in list(self._when.items()) if when is not None}

    def check(self, address: str, view: Callable | None) -> str | None:
        """Whether to pause before ``address`` (asked by the run): None, or the pause's reason."""
        try:
            when = self._when[address]
        except KeyError:
            return None
        if when is None:
            return BREAKPOINT
        try:
            hit = when(view() if view is not None else None)
        except Exception as exc:  # the run pauses and says why; the user fixes the condition
            self.errors[address] = exc
            return f"{BREAKPOINT} {address!r}: its condition raised {type(exc).__name__}: {exc}"
        self.errors.pop(address, None)
        return BREAKPOINT if hit else None

    # -- addresses ------------------------------------------------------------
    def _check(self, address) -> None:
        if not isinstance(address, str):
            raise TypeError(f"a breakpoint is a stage address such as 'train/fit', got {type(address).__name__}: "
                            f"{address!r}")
        pipeline = self.pipeline
        if pipeline is None:
            return
        known = [info.key for info in pipeline.walk()]
        if address not in known:
            close = difflib.get_close_matches(address, known, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise ValueError(f"no stage {address!r} in pipeline {pipeline.id!r} for a breakpoint: {hint}"
                             f"its stages are {', '.join(known)}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{a!r} (when {w!r})" if w is not None else repr(a) for a, w in list(self._when.items()))
        return f"Breakpoints({{{shown}}})"

"""``EventBus``: who hears a run's events, and the delivery rules.

The bus builds an event only when someone listens to its name or to ``"*"``:
a run with no listener pays one dict lookup per event, which is what keeps a
stage in a few microseconds. Each event has its own emit method with its
fields as named parameters (``bus.stage_start(path, stage_id=..., label=...)``),
generated in ``eventlog`` with the row layout. Sync handlers run inline, in
emission order; an async handler makes the emit return an awaitable. A
handler that raises is logged and never changes the run's outcome.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from .eventlog import EMITTERS, EventLog, Recording
from .events import EVENT_NAMES, EVENT_TYPES, RunEvent

Handler = Callable[[RunEvent], Any]


class EventBus:
    """Who hears what of one run: the handlers subscribed by ``ctx.on`` (by name or ``"*"``)
    and the open ``EventLog`` recordings. The engine asks it first whether anyone hears an
    event, so an unheard event is never built.
    """

    __slots__ = ("run_id", "_named", "_wildcard", "heard", "_logger", "recording")

    def __init__(self, run_id: str, logger):
        self.run_id = run_id
        self._named: dict[str, tuple[Handler, ...]] = {}
        self._wildcard: tuple[Handler, ...] = ()
        # name -> handlers in delivery order (named first, then "*"), only for names
        # someone hears; () when only EventLogs record it.
        self.heard: dict[str, tuple[Handler, ...]] = {}
        self._logger = logger
        self.recording = Recording(self._replan)

    def _replan(self) -> None:
        recording = self.recording.rows is not None
        self.heard = {
            name: self._named.get(name, ()) + self._wildcard
            for name in EVENT_NAMES
            if recording or self._named.get(name) or self._wildcard
        }

    def record(self) -> EventLog:
        """Open an ``EventLog`` of the events from now on."""
        return EventLog(self.run_id, self.recording)

    def on(self, name: str, handler: Handler) -> Callable[[], None]:
        if not callable(handler):
            raise TypeError(f"event handler for {name!r} must be callable, got {handler!r}")
        if name == "*":
            self._wildcard = self._wildcard + (handler,)
        elif name in EVENT_TYPES:
            self._named[name] = self._named.get(name, ()) + (handler,)
        else:
            raise ValueError(f"unknown event {name!r}; known: '*', {', '.join(EVENT_NAMES)}")
        self._replan()

        def unsubscribe() -> None:
            if name == "*":
                self._wildcard = tuple(h for h in self._wildcard if h is not handler)
            else:
                self._named[name] = tuple(h for h in self._named.get(name, ()) if h is not handler)
            self._replan()

        return unsubscribe

    def deliver(self, event: RunEvent, handlers: tuple):
        """Hand ``event`` to ``handlers``; an awaitable when an async one must be awaited."""
        i = 0
        for handler in handlers:
            i += 1
            try:
                out = handler(event)
            except Exception as exc:  # a listener never changes the run's outcome
                self._log_failure(event.name, handler, exc)
                continue
            if out is not None and inspect.isawaitable(out):
                return self._finish(event, out, handlers[i:])
        return None

    async def _finish(self, event, pending, rest):
        try:
            await pending
        except Exception as exc:
            self._log_failure(event.name, None, exc)
        for handler in rest:
            try:
                out = handler(event)
                if out is not None and inspect.isawaitable(out):
                    await out
            except Exception as exc:
                self._log_failure(event.name, handler, exc)

    def _log_failure(self, name, handler, exc) -> None:
        who = getattr(handler, "__qualname__", repr(handler)) if handler else "async handler"
        try:
            self._logger.error(
                f"listener {who} for {name!r} of run {self.run_id} raised {type(exc).__name__}: {exc}",
                {"run_id": self.run_id, "event": name, "error": exc},
            )
        except Exception:
            pass


for _name, _emit in EMITTERS.items():
    setattr(EventBus, _name, _emit)

"""Accept either the seed's ``{info, error}`` logger or a ``logging.Logger``."""

from __future__ import annotations

import logging


class _StdLogger:
    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger):
        self._logger = logger

    # "%s" keeps user text containing "%" from breaking logging's formatting.
    def info(self, msg, ctx=None):
        self._logger.info("%s", msg, extra={"pipenb": ctx})

    def error(self, msg, ctx=None):
        self._logger.error("%s", msg, extra={"pipenb": ctx})

    def warning(self, msg, ctx=None):
        self._logger.warning("%s", msg, extra={"pipenb": ctx})


def warn(logger, msg: str, ctx=None) -> None:
    """A warning through ``logger``; a seed-style logger with only ``info``/``error`` gets ``error``."""
    method = getattr(logger, "warning", None)
    (method if callable(method) else logger.error)(msg, ctx)


def adapt_logger(logger):
    """The logger pipenb writes to: ``logging.getLogger("pipenb")`` for None, a wrapper for a standard ``Logger``, or any object with callable ``info(msg, ctx)`` and ``error(msg, ctx)`` (else a ``TypeError``)."""
    if logger is None:
        logger = logging.getLogger("pipenb")
    if isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
        return _StdLogger(logger)
    for method in ("info", "error"):
        if not callable(getattr(logger, method, None)):
            raise TypeError(f"logger needs callable info() and error() methods, got {logger!r}")
    return logger

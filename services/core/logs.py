"""structlog set-up: JSON lines for services, readable lines in a terminal.

Log events are past-tense facts (``envelope_stored``, ``receipt_sent``) with the message's routing
metadata bound: ``msg_id``, ``kind``, ``sender``, ``recipients``. Never a body, a key or a seed:
callers pass metadata only, and nothing here can reach a message's plaintext.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured (a
    host that swaps the stream, such as a test runner capturing output, must not leave the
    services writing to a closed one)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


#: One stream object for every configuration: structlog keeps a lock per stream object, and two
#: loggers bound under different configurations would otherwise write under different locks.
_STDERR = _Stderr()

LEVELS = ("debug", "info", "warning", "error", "critical")


def log_level(value: str) -> str:
    """A log level as the logging module names it, whatever its case; a clear error if unknown."""
    name = value.strip().upper()
    if name.lower() not in LEVELS:
        raise ValueError(f"log level {value!r} is not one of {', '.join(LEVELS)}")
    return name


#: The level of each logging method's name (``exception`` logs at error).
_METHOD_LEVEL = {name.lower(): n for name, n in logging.getLevelNamesMapping().items()}
_METHOD_LEVEL["exception"] = logging.ERROR


class _Settings:
    """What :func:`configure` sets, read on every event: the least level logged and the renderer.

    structlog binds a logger to the configuration of the moment on its first use and keeps it
    (``cache_logger_on_first_use``, which spares every later call the lookup). A process that logs
    before it has read its settings (``cifta node run`` reads the node's, after the command's own
    terminal set-up) would leave every logger used meanwhile with the first renderer and level:
    a node's events then missing from its JSON log. So the chain is the same object in every
    configuration, and only what this holds changes; cached loggers follow.
    """

    def __init__(self) -> None:
        self.level = logging.INFO
        self.renderer: Any = structlog.processors.JSONRenderer()

    def gate(self, _logger: object, method: str, event: Any) -> Any:
        """First in the chain: an event below the level goes no further."""
        if _METHOD_LEVEL.get(method, logging.CRITICAL) < self.level:
            raise structlog.DropEvent
        return event

    def render(self, logger: object, method: str, event: Any) -> Any:
        return self.renderer(logger, method, event)


_SETTINGS = _Settings()
_CHAIN: list[Any] = [
    _SETTINGS.gate,
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
    _SETTINGS.render,
]


def configure(*, json: bool = True, level: str = "INFO") -> None:
    """Log JSON lines (a service) or readable lines (a terminal), ``level`` and worse, to stderr.
    Called again, it changes every logger got from :func:`get_logger`, including those already
    used since the first call."""
    _SETTINGS.level = logging.getLevelName(log_level(level))
    _SETTINGS.renderer = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=_CHAIN,
        # every level reaches the gate, which applies the level configured now
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)

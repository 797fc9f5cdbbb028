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


LEVELS = ("debug", "info", "warning", "error", "critical")


def log_level(value: str) -> str:
    """A log level as the logging module names it, whatever its case; a clear error if unknown."""
    name = value.strip().upper()
    if name.lower() not in LEVELS:
        raise ValueError(f"log level {value!r} is not one of {', '.join(LEVELS)}")
    return name


def configure(*, json: bool = True, level: str = "INFO") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(log_level(level))),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)

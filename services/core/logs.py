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
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)

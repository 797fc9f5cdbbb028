"""Plain-text tables for people; the commands print JSON instead with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*headers).rstrip(), line.format(*("-" * w for w in widths))]
    out += [line.format(*row).rstrip() for row in cells]
    return "\n".join(out)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


# Times in tables stay ISO 8601 (read alike in the four languages) and in UTC, as the node stores
# them: a time a body carries with another state's offset is shown converted, never as written.


def utc_minute(t: datetime | None) -> str:
    """``t`` in UTC to the minute, as the tables' ``(UTC)`` columns show it: 2026-12-01 09:30."""
    return "" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def utc_second(t: datetime) -> str:
    """``t`` in UTC to the second with its ``Z``: 2026-12-01T09:30:00Z."""
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

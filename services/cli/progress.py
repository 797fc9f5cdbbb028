"""A progress bar on standard error, shown only to a person at a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO


def progress_bar(label: str, stream: TextIO | None = None) -> Callable[[int, int], None]:
    """A callback ``(done, total)`` drawing ``label [#####     ]  42%  4.2/10.0 MiB`` in place;
    a callback that draws nothing when ``stream`` (standard error) is not a terminal, so logs and
    scripts get no control characters."""
    out = stream or sys.stderr
    if not out.isatty():
        return lambda done, total: None
    width = 30

    def draw(done: int, total: int) -> None:
        share = 1.0 if total == 0 else done / total
        filled = int(share * width)
        mib = 1024 * 1024
        out.write(
            f"\r{label} [{'#' * filled}{' ' * (width - filled)}] {share:4.0%} "
            f"{done / mib:.1f}/{total / mib:.1f} MiB"
        )
        if done >= total:
            out.write("\n")
        out.flush()

    return draw

"""The demonstration's photograph of a pistol's markings: a small PNG drawn here, so that no
binary file lives in the repository."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

WIDTH, HEIGHT = 240, 96


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def _pixel(x: int, y: int) -> tuple[int, int, int]:
    """A slide's brushed steel with an engraved band of marks (a stand-in for the serial)."""
    steel = 120 + (x * 7 + y * 3) % 23
    engraved = 30 <= y < 66 and 16 <= x < 224 and (x // 6) % 3 != 2 and (y // 4) % 2 == 0
    level = 50 if engraved else steel
    return level, level, level + 8


def markings_photo(path: Path) -> Path:
    """Write the photograph (an RGB PNG of a few kilobytes) to ``path`` and return it."""
    rows = b"".join(
        b"\x00" + bytes(c for x in range(WIDTH) for c in _pixel(x, y)) for y in range(HEIGHT)
    )
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path

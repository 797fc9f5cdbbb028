"""Files that hold secrets: written atomically, readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path


def write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600, in a directory only its owner enters."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never a leftover's mode
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)

"""Files an officer attaches in the compose form: kept between the preview and the sending under
a random token (the browser cannot send a file input twice), then handed to the application
layer, which seals each one into the node's store; the staged plaintext is deleted once the
message is queued.

A request announcing more than its files may weigh is refused before its body is read (the
console's ``max_upload_bytes``, for the compose and reply forms alone), and cut off when a body
without a length passes it; each file is checked against the node's cap
(``attachment_max_bytes``) as it is copied.

A draft abandoned after its preview leaves its files staged: folders untouched for longer than a
session may live (``ABSOLUTE_LIFETIME``: no form of theirs can be sent after it) are removed when
the console starts and whenever a new draft stages files.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from schemas.attachment import FileName
from services.console.officer.node import node
from services.core.accounts import ABSOLUTE_LIFETIME, Officer
from services.node.application import ApplicationError
from services.node.attachments import DEFAULT_MAX_BYTES

_TOKEN = re.compile(r"[0-9a-f]{32}")
_NAME: TypeAdapter[str] = TypeAdapter(FileName)


def max_bytes(request: Request) -> int:
    """The node's cap per attachment (100 MB unless its settings say otherwise)."""
    settings = node(request).settings
    return settings.attachment_max_bytes if settings is not None else DEFAULT_MAX_BYTES


def _mb(n: int) -> str:
    """A limit in SI units, as most readers write them (``4 kB``, ``100 MB``)."""
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n / 1e3:g} kB"


#: Under the node's home: one folder per officer and draft.
STAGING = "console-uploads"


def _staging(request: Request, officer: Officer, token: str) -> Path:
    """The officer's own staging folder for ``token``: another officer's token finds nothing."""
    who = hashlib.sha256(officer.login.encode()).hexdigest()[:16]
    return Path(request.app.state.home) / STAGING / f"{who}-{token}"


def sweep(
    home: Path, now: float | None = None, older_than: timedelta = ABSOLUTE_LIFETIME
) -> list[str]:
    """Remove the staging folders of drafts abandoned for longer than ``older_than`` (``now``
    in seconds since the epoch, as file times are); the names of those removed."""
    now = time.time() if now is None else now
    removed = []
    root = home / STAGING
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir():  # a stray file (a desktop's index): not a draft, left alone
            continue
        try:
            touched = max((p.stat().st_mtime for p in (folder, *folder.iterdir())), default=0.0)
        except FileNotFoundError:  # removed meanwhile, by its own sending or another sweep
            continue
        if now - touched > older_than.total_seconds():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


async def stage(request: Request, officer: Officer, form: Any) -> tuple[str, list[Path]]:
    """Save the form's new files beside those staged before (hidden ``staged`` token); the
    token and every staged file, in the order attached."""
    token = str(form.get("staged") or "")
    if not _TOKEN.fullmatch(token):  # a new draft: the abandoned ones go
        token = secrets.token_hex(16)
        sweep(Path(request.app.state.home))
    folder = _staging(request, officer, token)
    for upload in form.getlist("files"):
        if isinstance(upload, UploadFile) and upload.filename:
            await _save(upload, folder, max_bytes(request))
    files = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns) if folder.is_dir() else []
    return token, files


async def _save(upload: UploadFile, folder: Path, limit: int) -> None:
    typed = Path(upload.filename or "").name  # a browser may send a path: keep its last part
    try:
        name = _NAME.validate_python(typed)
    except ValidationError:
        raise ApplicationError("attachment.no_file", field="attachments", path=typed) from None
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target, written = folder / name, 0
    with target.open("wb") as sink:
        while piece := await upload.read(1 << 20):
            written += len(piece)
            if written > limit:
                sink.close()
                target.unlink()
                raise ApplicationError("attachment.too_large", name=name, limit=_mb(limit))
            sink.write(piece)


def forget(request: Request, officer: Officer, token: str) -> None:
    """The message is queued: its files are sealed in the node's store; drop the plaintext."""
    shutil.rmtree(_staging(request, officer, token), ignore_errors=True)

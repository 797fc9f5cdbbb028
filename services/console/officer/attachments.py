"""A message's attachments in the console: the download of one, decrypted and verified by the
node as it streams (one chunk in memory at a time), recorded under the officer's name."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from services.console.officer.node import identity, node, record
from services.console.web import SignedIn

router = APIRouter()


@router.get("/messages/{msg_id}/attachments/{name}")
async def download(request: Request, msg_id: str, name: str, officer: SignedIn) -> Response:
    """The file as its sender named it. Always ``application/octet-stream`` and ``attachment``:
    the media type is the sender's word, and a file the browser rendered on this origin (an HTML
    or SVG "photograph") would run inside the console."""
    view, chunks = node(request).open_attachment(msg_id, name, identity(officer))
    record(request, officer, "attachment_downloaded", msg_id=msg_id, name=view.name,
           sha256=view.ciphertext_sha256)  # fmt: skip
    headers = {
        # RFC 6266 / RFC 8187: the UTF-8 name, and an ASCII fallback for old clients
        "Content-Disposition": f'attachment; filename="{_ascii(view.name)}"; '
        f"filename*=UTF-8''{quote(view.name, safe='')}",
        "Content-Length": str(view.size),
        "Cache-Control": "no-store",
    }
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)

"""Art. XII in the console: telling a message's originator, before it happens, that it must be
disclosed (a disclosure notice), and taking a message out of the network (an export, recorded
under the officer's name). The rules (what H2 and H3 allow, what needs consent) are the node's:
a refusal comes back as its code, in the officer's language."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.console.officer.node import identity, node, record
from services.console.web import SignedIn
from services.node.application.procedure_models import (
    Exported,
    ExportMessage,
    NotifyDisclosure,
)

router = APIRouter()


@router.post("/messages/{msg_id}/disclosure")
async def disclosure(request: Request, msg_id: str, officer: SignedIn) -> Response:
    form = await request.form()
    queued = node(request).notify_disclosure(
        NotifyDisclosure(
            officer=identity(officer), msg_id=msg_id,
            to=str(form.get("disclosed_to") or ""),
            legal_basis=str(form.get("legal_basis") or ""),
            scope=str(form.get("scope") or ""),
            at=str(form.get("at") or "") or None,
        )
    )  # fmt: skip
    record(request, officer, "disclosure_notified", subject=msg_id, msg_id=queued.msg_id)
    return RedirectResponse(f"/messages/{msg_id}?sent={','.join(queued.recipients)}", 303)


@router.post("/messages/{msg_id}/export")
async def export(request: Request, msg_id: str, officer: SignedIn) -> Response:
    """The export record as a JSON file the browser saves; the node records the export (and the
    audit log learns of it) once the record is written, here into the answer."""
    form = await request.form()
    written: list[bytes] = []

    def write(exported: Exported) -> None:
        written.append(json.dumps(exported.record, ensure_ascii=False, indent=2).encode())

    done = node(request).export(
        ExportMessage(officer=identity(officer), msg_id=msg_id,
                      judicial=form.get("judicial") == "on"),
        write,
    )  # fmt: skip
    record(request, officer, "message_exported", msg_id=done.msg_id, kind=done.kind)
    headers = {
        "Content-Disposition": f'attachment; filename="cifta-export-{done.msg_id}.json"',
        "Cache-Control": "no-store",
    }
    return Response(b"".join(written), media_type="application/json", headers=headers)

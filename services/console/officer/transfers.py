"""Licensed transfers (Art. IX) in the console: the list of this state's transfers, with the step
each one awaits from this state: the importing state's confirmation or a transit state's
authorization, the exporter's dispatch, the importer's receipt; a receipt short of the dispatch
shows as the discrepancy the importer's node reports by itself. The rules are the node's."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from services.console.officer.node import identity, node, record
from services.console.web import SignedIn, render
from services.node.application.procedure_models import (
    ConfirmTransfer,
    DispatchTransfer,
    ReceiveTransfer,
)

router = APIRouter()


@router.get("/transfers")
async def transfers(request: Request, officer: SignedIn) -> Response:
    application = node(request)
    context = {"transfers": application.transfers(), "party": application.party}
    return render(request, "officer/transfers.html", context)


def _quantities(typed: object) -> dict[int, int]:
    """``line=quantity`` pairs as typed, one per line or separated by commas; a pair that is not
    two whole numbers is left out (the node then takes the line as notified or dispatched)."""
    out: dict[int, int] = {}
    for part in str(typed or "").replace(",", "\n").splitlines():
        line, _, quantity = part.partition("=")
        if line.strip().isdigit() and quantity.strip().isdigit():
            out[int(line)] = int(quantity)
    return out


@router.post("/transfers/{exporter}/{transfer_id}/{step}")
async def transfer_step(
    request: Request, exporter: str, transfer_id: str, step: str, officer: SignedIn
) -> Response:
    form = await request.form()
    application, who = node(request), identity(officer)
    if step == "confirm":
        queued = application.confirm_transfer(ConfirmTransfer(
            officer=who, transfer_id=transfer_id, exporter=exporter,
            decision=str(form.get("decision") or "authorized"),
            reason=str(form.get("reason") or "") or None,
            number=str(form.get("number") or "") or None,
            valid_until=str(form.get("valid_until") or "") or None,
        ))  # fmt: skip
    elif step == "dispatch":
        queued = application.dispatch_transfer(DispatchTransfer(
            officer=who, transfer_id=transfer_id, carrier=str(form.get("carrier") or ""),
            document=str(form.get("document") or ""),
            seals=str(form.get("seals") or "").split(), lines=_quantities(form.get("lines")),
            arrival=str(form.get("arrival") or "") or None,
        ))  # fmt: skip
    elif step == "receive":
        queued = application.receive_transfer(ReceiveTransfer(
            officer=who, transfer_id=transfer_id, exporter=exporter,
            place=str(form.get("place") or ""), lines=_quantities(form.get("lines")),
        ))  # fmt: skip
    else:
        raise HTTPException(404)
    record(request, officer, f"transfer_{step}", transfer_id=transfer_id, msg_id=queued.msg_id)
    return RedirectResponse("/transfers", status_code=303)

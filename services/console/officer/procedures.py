"""Procedures: tracing (Art. XIII.3) with its statistics, controlled deliveries (Art. XVIII) with
a supervisor's consent, the deadlines dashboard, and search over metadata."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from schemas.controlled_delivery import ClosureOutcome, InterceptionDecision
from services.console.officer.node import identity, node, record
from services.console.web import ConsoleRefusal, SignedIn, render, require_role
from services.core.accounts import Officer, Role
from services.node.application.models import InboxQuery
from services.node.application.procedure_models import (
    AnswerConsent,
    AnswerTrace,
    CloseDelivery,
    ConsentDelivery,
    DeclineDelivery,
    ForwardMessage,
    RecordHandover,
    RecordInterception,
    RequestConsent,
)

router = APIRouter()

#: Art. XII and XVIII decisions are a supervisor's (issue 14: supervisors answer consents).
Supervisor = Annotated[Officer, Depends(require_role(Role.SUPERVISOR))]


@router.get("/tracing")
async def tracing(request: Request, officer: SignedIn) -> Response:
    application = node(request)
    context = {"traces": application.traces(), "stats": application.trace_stats()}
    return render(request, "officer/tracing.html", context)


@router.post("/tracing/{request_msg_id}/answer")
async def answer_trace(request: Request, request_msg_id: str, officer: SignedIn) -> Response:
    form = await request.form()
    queued = node(request).answer_trace(
        AnswerTrace(
            officer=identity(officer), request_msg_id=request_msg_id,
            outcome=form.get("outcome") or None,
            narrative=str(form.get("narrative") or "") or None,
        )
    )  # fmt: skip
    record(request, officer, "trace_answered", request_msg_id=request_msg_id,
           msg_id=queued.msg_id)  # fmt: skip
    return RedirectResponse("/tracing", status_code=303)


@router.get("/deliveries")
async def deliveries(request: Request, officer: SignedIn) -> Response:
    return render(request, "officer/deliveries.html", {"operations": node(request).operations()})


@router.post("/deliveries/{operation_id}/consent")
async def consent(request: Request, operation_id: str, officer: Supervisor) -> Response:
    form = await request.form()
    conditions = [c.strip() for c in str(form.get("conditions", "")).splitlines() if c.strip()]
    queued = node(request).consent_delivery(
        ConsentDelivery(
            officer=identity(officer), operation_id=operation_id,
            proposer=str(form.get("proposer") or "") or None, conditions=conditions,
        )
    )  # fmt: skip
    record(request, officer, "delivery_consented", operation_id=operation_id,
           msg_id=queued.msg_id)  # fmt: skip
    return RedirectResponse("/deliveries", status_code=303)


@router.post("/deliveries/{operation_id}/decline")
async def decline(request: Request, operation_id: str, officer: Supervisor) -> Response:
    form = await request.form()
    queued = node(request).decline_delivery(
        DeclineDelivery(
            officer=identity(officer), operation_id=operation_id,
            proposer=str(form.get("proposer") or "") or None,
            reason=str(form.get("reason") or ""),
        )
    )  # fmt: skip
    record(request, officer, "delivery_declined", operation_id=operation_id,
           msg_id=queued.msg_id)  # fmt: skip
    return RedirectResponse("/deliveries", status_code=303)


@router.get("/deliveries/{proposer}/{operation_id}")
async def operation(
    request: Request, proposer: str, operation_id: str, officer: SignedIn
) -> Response:
    """One operation: its one timeline, and the steps this state may record next."""
    op = node(request).operation(operation_id, proposer)
    context = {"op": op, "decisions": list(InterceptionDecision), "outcomes": list(ClosureOutcome)}
    return render(request, "officer/operation.html", context)


def _lines(typed: object) -> list[str]:
    return [line.strip() for line in str(typed or "").splitlines() if line.strip()]


def _inventory(typed: object) -> list[dict[str, object]]:
    """Items as typed, one per line: ``quantity | category | description`` (the model names
    what is wrong in a line that is not)."""
    items: list[dict[str, object]] = []
    for n, line in enumerate(_lines(typed), start=1):
        quantity, category, description = ([*line.split("|", 2), "", ""])[:3]
        q = quantity.strip()
        items.append({"line": n, "quantity": int(q) if q.isdigit() else q,
                      "category": category.strip(),
                      "description": description.strip()})  # fmt: skip
    return items


@router.post("/deliveries/{proposer}/{operation_id}/{step}")
async def operation_step(
    request: Request, proposer: str, operation_id: str, step: str, officer: SignedIn
) -> Response:
    """A hand-over of custody, an interception decision (XVIII.2) or the closure; the node
    decides who may record which, and when."""
    form = await request.form()
    application = node(request)
    common = {"officer": identity(officer), "operation_id": operation_id, "proposer": proposer}
    at = str(form.get("at") or "") or None
    if step == "handover":
        queued = application.record_handover(RecordHandover(
            **common, from_state=str(form.get("from_state") or ""),
            to_state=str(form.get("to_state") or ""), place=str(form.get("place") or ""), at=at,
            seals=_lines(form.get("seals")), seals_intact=form.get("seals_broken") != "on",
            remarks=str(form.get("remarks") or "") or None,
        ))  # fmt: skip
    elif step == "interception":
        queued = application.record_interception(RecordInterception(
            **common, decision=str(form.get("decision") or ""), at=at,
            new_seals=_lines(form.get("new_seals")), inventory=_inventory(form.get("inventory")),
        ))  # fmt: skip
    elif step == "closure":
        queued = application.close_delivery(CloseDelivery(
            **common, outcome=str(form.get("outcome") or ""),
            summary=str(form.get("summary") or ""),
        ))  # fmt: skip
    else:
        raise HTTPException(404)
    record(request, officer, f"delivery_{step}", operation_id=operation_id, msg_id=queued.msg_id)
    return RedirectResponse(f"/deliveries/{proposer}/{quote(operation_id, safe='')}", 303)


@router.get("/deadlines")
async def deadlines(request: Request, officer: SignedIn) -> Response:
    return render(request, "officer/deadlines.html", {"deadlines": node(request).deadlines()})


@router.get("/search")
async def search(request: Request, officer: SignedIn) -> Response:
    """Metadata only (kind, states, case, id): no body is opened or indexed to search."""
    text = request.query_params.get("q", "").strip()
    found = []
    if text:
        needle = text.lower()
        for m in node(request).inbox(InboxQuery(direction="all")):
            haystack = " ".join([m.msg_id, m.kind, m.sender, *m.recipients, m.case_id or ""])
            if needle in haystack.lower():
                found.append(m)
    return render(request, "officer/search.html", {"q": text, "messages": found})


# -- Article XII: consent to share, and forwarding ---------------------------------------------


def _states(typed: object) -> list[str]:
    """ISO codes as typed, separated by commas or spaces (the layer checks each one)."""
    return [s for s in str(typed or "").replace(",", " ").split() if s]


@router.post("/messages/{msg_id}/consent-request")
async def request_consent(request: Request, msg_id: str, officer: SignedIn) -> Response:
    form = await request.form()
    to = _states(form.get("consent_to"))
    queued = node(request).request_consent(
        RequestConsent(
            officer=identity(officer), msg_id=msg_id, to=to,
            use=str(form.get("use") or "onward_sharing"),
            purpose=str(form.get("purpose") or ""),
        )
    )  # fmt: skip
    record(request, officer, "consent_requested", subject=msg_id, msg_id=queued.msg_id)
    return RedirectResponse(f"/messages/{msg_id}?sent={','.join(queued.recipients)}", 303)


@router.post("/messages/{msg_id}/consent-answer")
async def answer_consent(request: Request, msg_id: str, officer: Supervisor) -> Response:
    form = await request.form()
    conditions = [c.strip() for c in str(form.get("conditions", "")).splitlines() if c.strip()]
    queued = node(request).answer_consent(
        AnswerConsent(
            officer=identity(officer), request_msg_id=msg_id, conditions=conditions,
            decision=str(form.get("decision") or ""),
            reason=str(form.get("reason") or "") or None,
        )
    )  # fmt: skip
    record(request, officer, "consent_answered", request_msg_id=msg_id, msg_id=queued.msg_id)
    return RedirectResponse(f"/messages/{msg_id}?sent={','.join(queued.recipients)}", 303)


#: Handling codes whose release to another state a supervisor approves (issue 14's roles).
RELEASED_BY_SUPERVISOR = frozenset({"H2", "H3"})


@router.post("/messages/{msg_id}/forward")
async def forward(request: Request, msg_id: str, officer: SignedIn) -> Response:
    if node(request).summary(msg_id).handling in RELEASED_BY_SUPERVISOR and not officer.may(
        Role.SUPERVISOR
    ):  # Art. XII: an H2 or H3 message leaves this state only on a supervisor's decision
        raise ConsoleRefusal(403, "forbidden.role", role=Role.SUPERVISOR.value)
    form = await request.form()
    to = _states(form.get("forward_to"))
    cmd = ForwardMessage(officer=identity(officer), msg_id=msg_id, to=to)
    queued = await node(request).forward_attached(cmd)  # its files, if any, stored first
    record(request, officer, "message_forwarded", original=msg_id, msg_id=queued.msg_id)
    return RedirectResponse(f"/messages/{queued.msg_id}?sent={','.join(queued.recipients)}", 303)

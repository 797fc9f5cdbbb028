"""Procedures: tracing (Art. XIII.3) with its statistics, controlled deliveries (Art. XVIII) with
a supervisor's consent, the deadlines dashboard, and search over metadata."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from services.console.officer.node import identity, node, record
from services.console.web import ConsoleRefusal, SignedIn, render, require_role
from services.core.accounts import Officer, Role
from services.node.application.models import InboxQuery
from services.node.application.procedure_models import (
    AnswerConsent,
    AnswerTrace,
    ConsentDelivery,
    DeclineDelivery,
    ForwardMessage,
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
    queued = node(request).forward(ForwardMessage(officer=identity(officer), msg_id=msg_id, to=to))
    record(request, officer, "message_forwarded", original=msg_id, msg_id=queued.msg_id)
    return RedirectResponse(f"/messages/{queued.msg_id}?sent={','.join(queued.recipients)}", 303)

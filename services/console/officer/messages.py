"""Inbox, reading, writing and replying: parse the request, call the application layer, render."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from schemas import HandlingCode
from schemas.attachment import MAX_ATTACHMENTS
from services.console.officer import forms, labels, uploads
from services.console.officer.node import identity, node, record
from services.console.web import SignedIn, render
from services.core.accounts import Officer
from services.node.application import ApplicationError
from services.node.application.models import InboxQuery, Queued, ReplyMessage, SendMessage
from services.node.application.procedure_models import (
    FileTracingRequest,
    NotifyTransfer,
    ProposeDelivery,
)

router = APIRouter()

#: What the compose page offers: the Art. XIII exchanges, and the procedures' opening messages.
INFORMATION_KINDS = (
    "info.trafficking_routes", "info.concealment_methods", "info.authorized_parties",
    "info.legislative_measures", "info.money_laundering", "info.scientific_technological",
)  # fmt: skip
OPENING_KINDS = ("tracing.request", "transfer.notice", "delivery.proposal")
#: Opening messages whose recipients the body names (the delivery's states, the transfer's
#: importing and transit states, Art. IX.1): the form asks for no "To".
ADDRESSED_BY_BODY = ("delivery.proposal", "transfer.notice")


def _query(request: Request) -> InboxQuery:
    """The inbox's filters from the query string; a date the officer typed that is no date is
    refused by the model (``value.invalid``, naming the field and the format expected)."""
    q = request.query_params
    direction = q.get("direction") if q.get("direction") in ("in", "out", "all") else "in"
    try:
        return InboxQuery(
            direction=direction,
            kind=q.get("kind") or None,
            case_id=q.get("case") or None,
            state=q.get("state") or None,
            unread=q.get("unread") == "1",
            since=q.get("since") or None,
            until=_day_after(q.get("until")),
        )
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors() else "since"
        typed = q.get(field, "")
        raise ApplicationError("value.invalid", field=field, value=typed, expected="date") from None


def _day_after(day: str | None) -> str | None:
    """The inbox's "until" is a day the officer includes: the query takes the instant after it."""
    if not day:
        return None
    try:
        return (date.fromisoformat(day.strip()) + timedelta(days=1)).isoformat()
    except ValueError:
        return day  # the model refuses it, naming what was typed


@router.get("/inbox")
async def inbox(request: Request, officer: SignedIn) -> Response:
    messages = node(request).inbox(_query(request))
    context = {"messages": messages, "filters": dict(request.query_params), "kinds": labels.KINDS}
    return render(request, "officer/inbox.html", context)


@router.get("/inbox/rows")
async def inbox_rows(request: Request, officer: SignedIn) -> Response:
    """The inbox's rows alone: htmx asks for them every few seconds, so new messages appear
    without reloading."""
    messages = node(request).inbox(_query(request))
    return render(request, "officer/inbox_rows.html", {"messages": messages})


@router.get("/messages/{msg_id}")
async def message(request: Request, msg_id: str, officer: SignedIn) -> Response:
    application = node(request)
    view = application.show(msg_id, identity(officer))  # the opening is audited by the node
    record(request, officer, "message_opened", msg_id=view.summary.msg_id, kind=view.summary.kind)
    thread = application.thread(view.summary.case_id) if view.summary.case_id else []
    context = {
        "view": view, "thread": thread, "reply_kinds": _reply_kinds(view.summary.kind),
        "notice": request.query_params.get("sent"),
        "attachments": application.attachments_shown(view),
    }  # fmt: skip
    return render(request, "officer/message.html", context)


@router.get("/messages/{msg_id}/trail")
async def audit_trail(request: Request, msg_id: str, officer: SignedIn) -> Response:
    """The message's audit trail, each inclusion proof checked by this node against the audit
    log's signed checkpoint (RFC 9162 section 2.1.3), and shown so; it opens no body."""
    trail = await node(request).audit_trail(msg_id)
    return render(request, "officer/trail.html", {"trail": trail})


def _reply_kinds(kind: str) -> list[str]:
    if kind.startswith("info."):
        return [kind, *[k for k in INFORMATION_KINDS if k != kind]]
    return []


@router.get("/compose")
async def compose_menu(request: Request, officer: SignedIn) -> Response:
    context = {"information": INFORMATION_KINDS, "opening": OPENING_KINDS}
    return render(request, "officer/compose_menu.html", context)


def _defaults(kind: str, officer: Officer, party: str) -> dict[str, str]:
    """The officer's own identity where the body names the acting official; this state as a
    transfer's exporter, and its first line numbered."""
    values = {"exporter.country": party, "items.0.line": "1"} if kind == "transfer.notice" else {}
    for field in forms.form_fields(kind):
        parent = field.group.rsplit(".", 1)[-1]
        acting = parent in ("requesting_officer", "responding_officer", "contact", "officer")
        if acting and field.name in ("name", "position", "agency"):
            values[field.path] = getattr(officer, field.name)
    return values


def _compose_page(
    request: Request, kind: str, values: dict[str, str], *, reply_to: str | None = None,
    error: Any = None, problems: dict[str, Any] | None = None, preview: Queued | None = None,
    status_code: int = 200, staged: tuple[str, list[Path]] = ("", []),
) -> Response:  # fmt: skip
    context = {
        "attaching": _attaching(kind, reply_to), "staged_token": staged[0],
        "staged": [(p.name, p.stat().st_size) for p in staged[1]],
        "max_bytes": uploads.max_bytes(request),
        "kind": kind, "fields": forms.form_fields(kind), "values": values,
        "states": node(request).states(), "reply_to": reply_to, "error": error,
        "addressed_by_body": kind in ADDRESSED_BY_BODY,
        "problems": problems or {}, "preview": preview, "handling_codes": list(HandlingCode),
    }  # fmt: skip
    return render(request, "officer/compose.html", context, status_code=status_code)


@router.get("/compose/{kind}")
async def compose_form(request: Request, kind: str, officer: SignedIn) -> Response:
    if kind not in INFORMATION_KINDS + OPENING_KINDS:
        raise ApplicationError("kind.unknown", kind=kind)
    return _compose_page(request, kind, _defaults(kind, officer, node(request).party))


@router.get("/messages/{msg_id}/reply/{kind}")
async def reply_form(request: Request, msg_id: str, kind: str, officer: SignedIn) -> Response:
    if kind not in INFORMATION_KINDS:
        raise ApplicationError("kind.unknown", kind=kind)
    defaults = _defaults(kind, officer, node(request).party)
    return _compose_page(request, kind, defaults, reply_to=msg_id)


async def _submit(
    request: Request, officer: Officer, kind: str, form: Any, reply_to: str | None,
    files: list[Path],
) -> Queued:  # fmt: skip
    body = forms.body_from_form(kind, form)
    dry_run = form.get("action") != "send"
    common: dict[str, Any] = {
        "officer": identity(officer), "dry_run": dry_run,
        "handling": form.get("handling") or None, "note": form.get("note") or None,
        "confidential": form.get("confidential") == "on",
    }  # fmt: skip
    application = node(request)
    to = [str(s) for s in form.getlist("to")]
    case_id = form.get("case_id") or None
    if reply_to is not None:
        return application.reply(ReplyMessage(msg_id=reply_to, kind=kind, body=body, **common))
    if kind == "delivery.proposal":
        return application.propose_delivery(ProposeDelivery(body=body, case_id=case_id, **common))
    if kind == "transfer.notice":
        return application.notify_transfer(NotifyTransfer(body=body, case_id=case_id, **common))
    cmd: SendMessage | FileTracingRequest
    if kind == "tracing.request":
        cmd = FileTracingRequest(body=body, to=to, case_id=case_id, attachments=files, **common)
    else:
        cmd = SendMessage(kind=kind, body=body, to=to, case_id=case_id, attachments=files, **common)
    if files:  # each file sealed and stored at the hub for every recipient, then the message
        return await application.send_attached(cmd)
    if isinstance(cmd, FileTracingRequest):
        return application.file_trace(cmd)
    return application.send(cmd)


def _attaching(kind: str, reply_to: str | None) -> bool:
    """Whether the form takes files: what the layer sends with attachments."""
    return reply_to is None and kind not in ADDRESSED_BY_BODY


async def _post(request: Request, officer: Officer, kind: str, reply_to: str | None) -> Response:
    form = await request.form(max_files=MAX_ATTACHMENTS)
    values = {
        k: str(v) for k, v in form.items() if k not in ("csrf_token", "action", "files", "staged")
    }
    values["to"] = ",".join(str(s) for s in form.getlist("to"))
    for field in forms.form_fields(kind):  # lists of checkboxes: every box ticked
        if field.widget == "list" and field.directory:
            values[field.path] = ",".join(str(s) for s in form.getlist(field.path))
    staged: tuple[str, list[Path]] = ("", [])
    try:
        if _attaching(kind, reply_to):
            staged = await uploads.stage(request, officer, form)
        queued = await _submit(request, officer, kind, form, reply_to, staged[1])
    except ApplicationError as exc:
        problems = forms.problems_by_field(exc.params.get("problems", []))
        params = {k: v for k, v in exc.params.items() if isinstance(v, str | int)}
        return _compose_page(request, kind, values, reply_to=reply_to, error=(exc.code, params),
                             problems=problems, status_code=422, staged=staged)  # fmt: skip
    if not queued.sealed:
        return _compose_page(request, kind, values, reply_to=reply_to, preview=queued,
                             staged=staged)  # fmt: skip
    if staged[0]:
        uploads.forget(request, officer, staged[0])
    record(request, officer, "message_sent", msg_id=queued.msg_id, kind=kind,
           recipients=queued.recipients, attachments=[p.name for p in staged[1]])  # fmt: skip
    target = f"/messages/{queued.msg_id}?sent={','.join(queued.recipients)}"
    return RedirectResponse(target, status_code=303)


@router.post("/compose/{kind}")
async def compose(request: Request, kind: str, officer: SignedIn) -> Response:
    if kind not in INFORMATION_KINDS + OPENING_KINDS:
        raise ApplicationError("kind.unknown", kind=kind)
    return await _post(request, officer, kind, None)


@router.post("/messages/{msg_id}/reply/{kind}")
async def reply(request: Request, msg_id: str, kind: str, officer: SignedIn) -> Response:
    if kind not in INFORMATION_KINDS:
        raise ApplicationError("kind.unknown", kind=kind)
    return await _post(request, officer, kind, msg_id)

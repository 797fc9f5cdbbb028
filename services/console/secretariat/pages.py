"""The secretariat console's pages: each parses the request, calls the secretariat's application
layer, records the action under the operator's identity, and renders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from services.console.secretariat import charts
from services.console.web.auth import current_officer, require_role
from services.core.accounts import Accounts, Officer, Role
from services.hub.home import HubHome
from services.i18n import N_
from services.secretariat.audit_desk import Verifier, audit_view
from services.secretariat.directory_desk import DirectoryDesk, apply_to_hub
from services.secretariat.errors import ErrorCode, SecretariatError
from services.secretariat.network import network_view
from services.secretariat.statistics import messages_csv, study_statistics, tracing_csv

#: The message families of the wire contract (schemas/), as the statistics name them.
FAMILY_NAMES = {
    "info": N_("Information exchange (Art. XIII)"),
    "tracing": N_("Tracing (Art. XIII.3)"),
    "transfer": N_("Licensed transfers (Art. IX)"),
    "delivery": N_("Controlled deliveries (Art. XVIII)"),
    "confidentiality": N_("Confidentiality (Art. XII)"),
    "protocol": N_("Receipts and rejections"),
}

router = APIRouter()
Viewer = Depends(current_officer)
#: approving, declining and revoking change what every state trusts: a supervisor's acts
Approver = Depends(require_role(Role.SUPERVISOR))


def _hub(request: Request) -> HubHome:
    return request.app.state.hub  # type: ignore[no-any-return]


def _desk(request: Request) -> DirectoryDesk:
    return request.app.state.desk  # type: ignore[no-any-return]


def _now(request: Request) -> datetime:
    return request.app.state.config.clock()  # type: ignore[no-any-return]


def _record(request: Request, officer: Officer, action: str, **detail: Any) -> None:
    accounts: Accounts = request.app.state.accounts
    accounts.record(officer.login, action, _now(request), **detail)


def _render(request: Request, template: str, code: int = 200, **context: Any) -> Response:
    return request.app.state.renderer.render(  # type: ignore[no-any-return]
        request, template, context, status_code=code
    )


def _can_approve(request: Request) -> bool:
    session = request.state.session
    return session is not None and bool(session.officer.may(Role.SUPERVISOR))


def _refusal(error: SecretariatError) -> tuple[str, dict[str, Any]]:
    """A refusal as the templates' ``message(code, params)`` shows it."""
    return f"secretariat.{error.code.value}", dict(error.params)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.get("/")
async def start(officer: Officer = Viewer) -> Response:
    return RedirectResponse("/network", status_code=303)


# -- network -------------------------------------------------------------------------------------


async def _network(request: Request) -> dict[str, Any]:
    try:
        return {"view": await network_view(_hub(request), _now(request)), "error": None}
    except SecretariatError as exc:
        return {"view": None, "error": _refusal(exc)}


@router.get("/network")
async def network(request: Request, officer: Officer = Viewer) -> Response:
    return _render(request, "secretariat/network.html", **await _network(request))


@router.get("/network/states")
async def network_states(request: Request, officer: Officer = Viewer) -> Response:
    """The states' table alone, which the network page asks for again every few seconds."""
    return _render(request, "secretariat/network_states.html", **await _network(request))


# -- directory -----------------------------------------------------------------------------------


@router.get("/directory")
async def directory(request: Request, officer: Officer = Viewer) -> Response:
    desk = _desk(request)
    return _render(
        request, "secretariat/directory.html", entries=desk.entries(), pending=desk.pending()
    )


@router.get("/directory/requests/{request_id}")
async def review(request: Request, request_id: str, officer: Officer = Viewer) -> Response:
    return _review(request, request_id)


def _review(
    request: Request, request_id: str, status: int = 200, error: Any = None, typed: str = ""
) -> Response:
    try:
        pending = _desk(request).request(request_id)
    except SecretariatError as exc:
        return _render(request, "error.html", 404, error=_refusal(exc), status=404)
    return _render(
        request,
        "secretariat/review.html",
        status,
        pending=pending,
        error=error,
        typed=typed,
        can_approve=_can_approve(request),
    )


@router.post("/directory/requests/{request_id}/approve")
async def approve(request: Request, request_id: str, officer: Officer = Approver) -> Response:
    """Approve: a registration only with the key id typed as the state read it out."""
    desk = _desk(request)
    typed = (await _form(request)).get("key_id", "")
    try:
        pending = desk.request(request_id)
        if pending.kind == "registration":
            approval = desk.approve_registration(request_id, typed)
        else:
            approval = desk.approve_rotation(request_id)
    except SecretariatError as exc:
        if exc.code in (ErrorCode.KEY_ID_MISMATCH, ErrorCode.KEY_ID_MALFORMED):
            _record(request, officer, "secretariat.approval_refused", request_id=request_id,
                    reason=exc.code.value)  # fmt: skip
        # what was typed goes back to the operator (it is theirs); the expected id never does
        return _review(request, request_id, 422, error=_refusal(exc), typed=typed[:64])
    _record(request, officer, "secretariat.approved", party=approval.party,
            version=approval.version, kind=pending.kind)  # fmt: skip
    notice: tuple[str, dict[str, Any]] = (
        "secretariat.approved",
        {"party": approval.party, "version": approval.version},
    )
    try:
        await apply_to_hub(desk, approval.party if approval.new_state else None)
    except SecretariatError as exc:
        notice = _refusal(exc)
    return _render(request, "secretariat/done.html", notice=notice, party=approval.party)


@router.post("/directory/requests/{request_id}/decline")
async def decline(request: Request, request_id: str, officer: Officer = Approver) -> Response:
    try:
        pending = _desk(request).decline(request_id)
    except SecretariatError as exc:
        return _render(request, "error.html", 404, error=_refusal(exc), status=404)
    _record(request, officer, "secretariat.declined", party=pending.party, request_id=request_id)
    notice = ("secretariat.declined", {"party": pending.party})
    return _render(request, "secretariat/done.html", notice=notice, party=None)


@router.get("/directory/entries/{party}")
async def entry(request: Request, party: str, officer: Officer = Viewer) -> Response:
    return _entry(request, party)


def _entry(request: Request, party: str, status: int = 200, **context: Any) -> Response:
    try:
        history = _desk(request).history(party)
    except SecretariatError as exc:
        return _render(request, "error.html", 404, error=_refusal(exc), status=404)
    context.setdefault("error", None)
    context.setdefault("notice", None)
    current = history[-1]
    revocable = [(k.kid, k.kid) for k in current.keys if k.status != "revoked"]
    return _render(
        request, "secretariat/entry.html", status, entry=current, revocable=revocable,
        can_approve=_can_approve(request), history=list(reversed(history)), **context,
    )  # fmt: skip


@router.post("/directory/entries/{party}/revoke")
async def revoke(request: Request, party: str, officer: Officer = Approver) -> Response:
    """Revoke one key, now or from a stated earlier moment ("compromised since")."""
    form = await _form(request)
    kid, when = form.get("kid", ""), form.get("effective", "").strip()
    try:
        at = datetime.fromisoformat(when) if when else None
    except ValueError:
        error = ("secretariat.bad_time", {"typed": when[:40]})
        return _entry(request, party, 422, error=error)
    if at is not None and at.tzinfo is None:
        error = ("secretariat.bad_time", {"typed": when[:40]})
        return _entry(request, party, 422, error=error)
    try:
        view = _desk(request).revoke(party, kid, at)
        await apply_to_hub(_desk(request))
    except SecretariatError as exc:
        return _entry(request, party, 422, error=_refusal(exc))
    _record(request, officer, "secretariat.revoked", party=party, kid=kid, version=view.version)
    return _entry(request, party, notice=("secretariat.revoked", {"party": party, "kid": kid}))


# -- audit ---------------------------------------------------------------------------------------


@router.get("/audit")
async def audit(request: Request, officer: Officer = Viewer) -> Response:
    verifier: Verifier = request.app.state.verifier
    try:
        view, error = audit_view(_hub(request)), None
    except SecretariatError as exc:
        view, error = None, _refusal(exc)
    return _render(request, "secretariat/audit.html", view=view, error=error,
                   verification=verifier.state)  # fmt: skip


@router.post("/audit/verify")
async def verify(request: Request, officer: Officer = Viewer) -> Response:
    verifier: Verifier = request.app.state.verifier
    try:
        verifier.start(_now(request))
    except SecretariatError as exc:
        return _render(request, "secretariat/verification.html", 409,
                       verification=verifier.state, error=_refusal(exc))  # fmt: skip
    _record(request, officer, "secretariat.verification_started")
    return _render(request, "secretariat/verification.html", verification=verifier.state,
                   error=None)  # fmt: skip


@router.get("/audit/verification")
async def verification(request: Request, officer: Officer = Viewer) -> Response:
    verifier: Verifier = request.app.state.verifier
    return _render(request, "secretariat/verification.html", verification=verifier.state,
                   error=None)  # fmt: skip


# -- statistics ----------------------------------------------------------------------------------


@router.get("/statistics")
async def statistics(request: Request, officer: Officer = Viewer) -> Response:
    try:
        stats, error = study_statistics(_hub(request).audit_log_path), None
    except SecretariatError as exc:
        stats, error = None, _refusal(exc)
    peak = max((r.messages for r in stats.by_family_month), default=0) if stats else 0
    monthly = charts.monthly_chart(stats.by_family_month, list(FAMILY_NAMES)) if stats else None
    responses = charts.response_chart(stats.tracing) if stats else None
    return _render(request, "secretariat/statistics.html", stats=stats, error=error, peak=peak,
                   family_names=FAMILY_NAMES, monthly=monthly, responses=responses)  # fmt: skip


@router.get("/statistics/{table}.csv")
async def statistics_csv(request: Request, table: str, officer: Officer = Viewer) -> Response:
    if table not in ("messages", "tracing"):
        return _render(request, "error.html", 404, status=404,
                       error=("not_found", {"what": request.url.path}))  # fmt: skip
    try:
        stats = study_statistics(_hub(request).audit_log_path)
    except SecretariatError as exc:
        return _render(request, "error.html", 404, error=_refusal(exc), status=404)
    body = messages_csv(stats) if table == "messages" else tracing_csv(stats)
    _record(request, officer, "secretariat.statistics_exported", table=table)
    stamp = _now(request).strftime("%Y%m%d")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="cifta-{table}-{stamp}.csv"'},
    )

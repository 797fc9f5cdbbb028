"""Security keys in a console: enrolment from the account page, and sign-in with password and
key (services/core/security_keys.py checks the answers).

A console offers them when its ``app.state.security_keys`` is set (the officer console). The
browser's side is ``static/webauthn.js``: it asks for the options, hands them to
``navigator.credentials``, and posts the answer back as JSON with the session's CSRF token.
WebAuthn needs a secure context: HTTPS, or ``http://localhost`` (Chromium and Firefox treat
loopback as potentially trustworthy); and its RP ID is a host name, never an IP address. The
relying party is the console's configured public origin (``cifta console --public-origin``),
never the Host a request names.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services import i18n
from services.console.web.auth import SignedIn, SignInRequired, set_session_cookie
from services.console.web.rendering import render, request_language
from services.core.accounts import AccountError, Accounts, Session
from services.core.security_keys import RelyingParty, SecurityKeys

router = APIRouter()

#: The largest answer a browser sends for one key (an attestation with its certificates).
MAX_ANSWER_BYTES = 64 * 1024


def _keys(request: Request) -> SecurityKeys:
    return request.app.state.security_keys  # type: ignore[no-any-return]


def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts  # type: ignore[no-any-return]


def relying_party(request: Request) -> RelyingParty:
    """The console as WebAuthn names it: its configured public origin (RP ID its host name),
    whatever Host the request names, so that a request under another name can neither enrol
    nor use a key for another relying party. Without one configured, the console as the
    browser reached it, only under a loopback name (development on this machine)."""
    config = request.app.state.config
    if config.public_origin is not None:
        host = urlsplit(config.public_origin).hostname or ""
        return RelyingParty(id=host, origin=config.public_origin, name=config.title)
    hostname = request.url.hostname or ""
    if not _loopback(hostname):
        raise AccountError("key.origin_unset", host=hostname)
    scheme = "https" if config.secure else request.url.scheme
    host = request.headers.get("host") or request.url.netloc
    return RelyingParty(id=hostname, origin=f"{scheme}://{host}", name=config.title)


def _loopback(host: str) -> bool:
    """Whether ``host`` names this machine (RFC 6761 6.3: ``localhost`` and its subdomains)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _awaiting_key(request: Request) -> Session:
    """The session whose password was accepted and which only a key's answer completes."""
    session: Session | None = request.state.session
    if session is None or session.complete or session.pending_totp is not None:
        raise SignInRequired
    return session


def _refused(request: Request, exc: AccountError, status: int = 400) -> Response:
    session: Session | None = request.state.session
    language = request_language(request, session.officer if session else None)
    text = i18n.translate(exc.code, exc.params, language)
    return JSONResponse({"error": text}, status_code=status)


async def _answer(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_ANSWER_BYTES:
        raise AccountError("key.refused")
    return body.decode("utf-8", errors="replace")


@router.get("/login/key")
async def key_page(request: Request) -> Response:
    session = _awaiting_key(request)
    return render(request, "login_key.html", {"awaiting": session.officer})


@router.post("/login/key/options")
async def key_options(request: Request) -> Response:
    session, now = _awaiting_key(request), request.app.state.config.clock()
    try:
        rp = relying_party(request)
        options = _keys(request).authentication_options(
            session.officer.login, request.state.session_token, rp, now
        )
    except AccountError as exc:
        return _refused(request, exc)
    return Response(options, media_type="application/json")


@router.post("/login/key")
async def key_sign_in(request: Request) -> Response:
    session, now = _awaiting_key(request), request.app.state.config.clock()
    accounts, login, token = _accounts(request), session.officer.login, request.state.session_token
    locked = accounts.get(login).locked_until
    if locked is not None and locked > now:  # the key's failures count towards the lockout too
        accounts.close_session(token)
        return _refused(request, AccountError("login.locked", until=locked), 429)
    try:
        answer = await _answer(request)
        key = _keys(request).authenticate(login, token, answer, relying_party(request), now)
        completed = accounts.complete_session(token, now)
    except AccountError as exc:
        if exc.code == "key.refused":
            accounts.count_failure(login, now)
        accounts.record(login, "sign_in_refused", now, reason=exc.code, second_factor="key")
        return _refused(request, exc)
    accounts.record(login, "signed_in", now, second_factor="security_key",
                    credential=key.credential_id[:16])  # fmt: skip
    response = JSONResponse({"next": request.app.state.config.home})
    # the half-open session's token, which someone may have planted, opens nothing any more
    set_session_cookie(request, response, completed.token)
    return response


@router.post("/account/keys/options")
async def enrol_options(request: Request, officer: SignedIn) -> Response:
    now = request.app.state.config.clock()
    try:
        rp = relying_party(request)
        options = _keys(request).registration_options(officer, request.state.session_token, rp, now)
    except AccountError as exc:
        return _refused(request, exc)
    return Response(options, media_type="application/json")


@router.post("/account/keys")
async def enrol_key(request: Request, officer: SignedIn) -> Response:
    now = request.app.state.config.clock()
    try:
        answer = await _answer(request)
        key = _keys(request).register(
            officer, request.state.session_token, answer, relying_party(request), now
        )
    except AccountError as exc:
        _accounts(request).record(officer.login, "security_key_refused", now, reason=exc.code)
        return _refused(request, exc)
    detail = {"credential": key.credential_id[:16], "transports": list(key.transports)}
    _accounts(request).record(officer.login, "security_key_enrolled", now, **detail)
    return JSONResponse({"next": "/account?key=enrolled"})

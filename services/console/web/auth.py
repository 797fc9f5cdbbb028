"""Sessions, sign-in with password and second factor, enrolment of the second factor, roles.

A session cookie is HttpOnly, SameSite=Strict, and Secure with the ``__Host-`` prefix under TLS;
it holds a random token the store keeps only hashed (services/core/accounts.py). Every request
looks its session up again, so a disabled officer's next request finds none.

Sign-in answers the same for an unknown login, a wrong password or code, and a locked or disabled
account (the record keeps the real reason); the password's Argon2id verification runs in a worker
thread, a few at a time, so that the console's other pages keep answering meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
import anyio.to_thread
import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from services.console.web.rendering import render
from services.console.web.security import ConsoleRefusal, PresessionSigner, RateLimit, client_key
from services.core import accounts as account_store
from services.core.accounts import (
    AccountError,
    Accounts,
    Officer,
    Role,
    Session,
    SignInRefused,
    totp_uri,
)

router = APIRouter()


class SignInRequired(Exception):
    """No complete session: the reader is sent to the sign-in page."""


class PasswordVerifier:
    """Argon2id verifications off the event loop, in worker threads, at most ``slots`` at once:
    a flood of sign-in attempts takes that many threads, never the pool of the whole console."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._threads = anyio.CapacityLimiter(slots)

    async def verify(self, password_hash: str, password: str) -> bool | None:
        """Whether the password matches; None, at once, when every slot is taken."""
        if self._free <= 0:
            return None
        self._free -= 1
        try:
            return await anyio.to_thread.run_sync(
                account_store.verify_password, password_hash, password, limiter=self._threads
            )
        finally:
            self._free += 1


def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts  # type: ignore[no-any-return]


#: Sent by every element that polls (hx-headers in the templates).
POLL_HEADER = "X-Console-Poll"


async def load_session(request: Request) -> None:
    """Attach the request's live session (or None) to ``request.state`` (a global dependency)."""
    config = request.app.state.config
    token = request.cookies.get(config.session_cookie)
    request.state.session_token = token
    # A page refreshing itself (htmx polling, marked by the header below) keeps no session
    # alive: an unattended console signs out after the idle timeout like any other.
    polled = request.headers.get(POLL_HEADER) == "1"
    request.state.session = _accounts(request).session(token, config.clock(), touch=not polled)


async def current_officer(request: Request) -> Officer:
    """The signed-in officer (password and second factor done), or off to the sign-in page."""
    session: Session | None = request.state.session
    if session is None or not session.complete:
        raise SignInRequired
    return session.officer


def require_role(role: Role) -> Callable[[Request], Awaitable[Officer]]:
    """A dependency: the signed-in officer, who must hold ``role``."""

    async def dependency(request: Request) -> Officer:
        officer = await current_officer(request)
        if not officer.may(role):
            raise ConsoleRefusal(403, "forbidden.role", role=role.value)
        return officer

    return dependency


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="strict", secure=request.app.state.config.secure,
        path="/",
    )  # fmt: skip


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """Give the browser the session's ``token``."""
    _set_cookie(request, response, request.app.state.config.session_cookie, token)


def _forget_cookie(request: Request, response: Response, name: str) -> None:
    # a __Host- cookie is only replaced by one with the same Secure and Path (RFC 6265bis)
    response.delete_cookie(
        name, path="/", secure=request.app.state.config.secure, httponly=True, samesite="strict"
    )


def _login_page(request: Request, status: int = 200, **context: Any) -> Response:
    config = request.app.state.config
    signer: PresessionSigner = request.app.state.presession
    token, cookie = signer.issue(request.cookies.get(config.presession_cookie))
    request.state.presession = token
    context.setdefault("error", None)
    context.setdefault("login", "")
    response = render(request, "login.html", context, status_code=status)
    _set_cookie(request, response, config.presession_cookie, cookie)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    if request.state.session is not None and request.state.session.complete:
        return RedirectResponse(request.app.state.config.home, status_code=303)
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    config = request.app.state.config
    form = await request.form()
    login_name, password, code = (str(form.get(k, "")) for k in ("login", "password", "code"))
    limiter: RateLimit = request.app.state.login_limit
    client = client_key(request.client.host if request.client else "unknown")
    busy: tuple[str, dict[str, object]] = ("login.rate_limited", {})
    if not limiter.allow(client):
        return _login_page(request, 429, error=busy, login=login_name)
    accounts = _accounts(request)
    attempt = accounts.sign_in_attempt(login_name.strip())
    verifier: PasswordVerifier = request.app.state.password_verifier
    password_ok = await verifier.verify(attempt.password_hash, password)
    if password_ok is None:
        return _login_page(request, 429, error=busy, login=login_name)
    now = config.clock()
    # no code typed by an officer holding a security key: the key is asked for next
    keys = getattr(request.app.state, "security_keys", None)
    with_key = keys is not None and not code.strip() and keys.enrolled(attempt.login)
    try:
        officer = accounts.conclude(attempt, password_ok, code or None, now, with_key=with_key)
    except SignInRefused as exc:
        # the record says why; the person is told the same in every case. What was typed as an
        # unknown login is not kept: it is often the password, typed in the wrong field
        who = "(unknown)" if attempt.row is None else attempt.login
        accounts.record(who, "sign_in_refused", now, reason=exc.reason)
        return _login_page(request, 401, error=(exc.code, exc.params), login=login_name)
    token = accounts.open_session(officer, now, awaiting_key=with_key)
    if with_key:
        accounts.record(officer.login, "password_accepted", now, second_factor="security_key")
        target = "/login/key"
    else:
        accounts.record(officer.login, "signed_in", now, second_factor=officer.enrolled)
        target = config.home if officer.enrolled else "/enrol"
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, config.session_cookie, token)
    _forget_cookie(request, response, config.presession_cookie)
    return response


def _enrol_page(request: Request, session: Session, error: Any = None) -> Response:
    assert session.pending_totp is not None
    uri = totp_uri(session.pending_totp, session.officer.login, request.app.state.config.title)
    # segno writes attributes only (no style, no script): allowed under the CSP as inline SVG
    svg = segno.make(uri, error="m").svg_inline(scale=5, title="TOTP")
    secret = " ".join(session.pending_totp[i : i + 4] for i in range(0, 32, 4)).strip()
    # segno renders our own otpauth URI as SVG elements and attributes: nothing to escape
    context = {
        "qr": Markup(svg),  # noqa: S704
        "secret": secret,
        "error": error,
        "enrolling": session.officer,
    }
    return render(request, "enrol.html", context, status_code=400 if error else 200)


@router.get("/enrol")
async def enrol_form(request: Request) -> Response:
    session: Session | None = request.state.session
    if session is None or session.pending_totp is None:
        raise SignInRequired
    return _enrol_page(request, session)


@router.post("/enrol")
async def enrol(request: Request) -> Response:
    session: Session | None = request.state.session
    if session is None or session.pending_totp is None:
        raise SignInRequired
    config, code = request.app.state.config, str((await request.form()).get("code", ""))
    try:
        completed = _accounts(request).enrol(request.state.session_token, code, config.clock())
    except AccountError as exc:
        return _enrol_page(request, session, (exc.code, exc.params))
    _accounts(request).record(completed.officer.login, "second_factor_enrolled", config.clock())
    response = RedirectResponse(config.home, status_code=303)
    set_session_cookie(request, response, completed.token)  # a new token: no fixation
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    config = request.app.state.config
    token = request.state.session_token
    if request.state.session is not None and token:
        _accounts(request).close_session(token)
        _accounts(request).record(request.state.session.officer.login, "signed_out", config.clock())
    response = RedirectResponse("/login", status_code=303)
    _forget_cookie(request, response, config.session_cookie)
    return response


#: A handler's parameter for the signed-in officer: ``officer: SignedIn``.
SignedIn = Annotated[Officer, Depends(current_officer)]

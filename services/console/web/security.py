"""What every response and every state-changing request goes through.

- Security headers on every response, static files and errors included: a strict
  Content-Security-Policy with no inline script or style and no nonce (all JavaScript is in static
  files: htmx, vendored, and the console's own), no framing, no sniffing, no referrer.
- CSRF: every POST carries the session's token (a form field, or the ``X-CSRF-Token`` header that
  the console's script adds to htmx requests); before sign-in, the double-submit token of the
  pre-session cookie, which the console signs (HMAC-SHA256) so that a value it did not issue is
  refused. The signature binds the cookie to no browser: a pair the console issued to someone
  else passes it. Keeping such a pair from being planted is the ``__Host-`` prefix's work under
  TLS (no sibling host, no plain-HTTP page may set it); SameSite=Strict and the Origin check keep
  a form posted from another site out (docs/operations.md, "The pre-session cookie").
- A rate limit on sign-in attempts per client address (an IPv6 client by its /64), before any
  password is checked.
- A bound on every request's body, counted as it arrives: a body sent without Content-Length
  (chunked) is cut off at the limit like one that announces its size.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from collections import deque
from collections.abc import Callable

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.web.rendering import render

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

#: CSP Level 3; 'none' by default, each source allowed by name. No 'unsafe-inline', no
#: 'unsafe-eval' (htmx runs with allowEval off), no nonce needed.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]


class ConsoleRefusal(Exception):
    """A request refused with a translated message: ``code`` and ``params`` for
    :func:`services.i18n.translate`, and the HTTP status."""

    def __init__(self, status: int, code: str, **params: object) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.params = params


class SecurityHeaders:
    """ASGI middleware adding the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        self.app = app
        self.extra = list(_HEADERS)
        if secure:  # RFC 6797: only meaningful, and only sent, over TLS
            self.extra.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                headers.extend(self.extra)
                if not static:  # pages name officers and cases: never cached
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyTooLarge(Exception):
    """Raised into the app by :class:`BodyLimit` when a body goes over the limit."""


class BodyLimit:
    """ASGI middleware: a request whose body is over its bound is answered 413, refused from its
    Content-Length before it is read, or cut off as soon as the bytes received pass the bound (a
    chunked body announces nothing). Whatever the app made of the body cut short is dropped.

    The bound is ``max_bytes``, or ``max_upload_bytes`` on the paths that take files
    (``upload_paths``, each a regular expression matching the whole path): a sign-in form is
    never let weigh what a message's attachments may."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        upload_paths: tuple[str, ...] = (),
        max_upload_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = [re.compile(p) for p in upload_paths]
        self.max_upload_bytes = max_upload_bytes

    def bound(self, path: str, signed_in: bool = True) -> int:
        """The largest body accepted on ``path``: the uploads' bound only for a signed-in
        officer (a stranger's multipart body would be parsed whole before the session and CSRF
        checks refuse it)."""
        if signed_in and any(p.fullmatch(path) for p in self.uploads):
            return max(self.max_upload_bytes, self.max_bytes)
        return self.max_bytes

    @staticmethod
    def _signed_in(scope: Scope) -> bool:
        request = Request(scope)
        state = request.app.state
        token = request.cookies.get(state.config.session_cookie)
        session = state.accounts.session(token, state.config.clock(), touch=False)
        return session is not None and session.complete

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        upload = any(p.fullmatch(path) for p in self.uploads)
        bound = self.bound(path, signed_in=upload and self._signed_in(scope))
        announced = dict(scope.get("headers", [])).get(b"content-length", b"")
        if announced.isdigit() and int(announced) > bound:
            await self._refuse(scope, receive, send, bound)
            return
        received, over, started = 0, False, False

        async def counting() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > bound:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:  # the app's own answer to a body it never got whole
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, guarded)
        except Exception:
            # FastAPI turns a failure while reading a form into a 400, the app may wrap it
            # otherwise: once over the limit, whatever came out is ours to answer
            if not over:
                raise
        if over and not started:
            await self._refuse(scope, receive, send, bound)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, bound: int) -> None:
        request = Request(scope, receive)
        # answered before the app's dependencies run: the session is looked up here, only for
        # the reader's language (not touched: a refused request is no sign of activity)
        config = request.app.state.config
        token = request.cookies.get(config.session_cookie)
        accounts = request.app.state.accounts
        request.state.session = accounts.session(token, config.clock(), touch=False)
        n = bound
        limit = f"{n / 1e6:.0f} MB" if n >= 1_000_000 else f"{n / 1e3:.0f} kB"
        context = {"error": ("request.too_large", {"limit": limit}), "status": 413}
        response = render(request, "error.html", context, status_code=413)
        response.headers["connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)


class PresessionSigner:
    """The double-submit token of the sign-in form, and the cookie that carries it signed:
    ``<token>.<HMAC-SHA256 of the token>`` under the console's own key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, token: str) -> str:
        digest = hmac.new(self._key, b"presession:" + token.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, cookie: str | None) -> tuple[str, str]:
        """(token for the form, value for the cookie): the cookie's own token when it is one
        this console signed, a new one otherwise."""
        token = self.token(cookie) or secrets.token_urlsafe(32)
        return token, f"{token}.{self._mac(token)}"

    def token(self, cookie: str | None) -> str | None:
        """The token of a cookie this console signed; None for a missing or forged one."""
        token, _, mac = (cookie or "").rpartition(".")
        if not token or not secrets.compare_digest(mac, self._mac(token)):
            return None
        return token


async def csrf_guard(request: Request) -> None:
    """Refuse a state-changing request whose CSRF token is missing or wrong (a dependency the
    app factory puts on every route)."""
    if request.method in SAFE_METHODS:
        return
    config = request.app.state.config
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    session = getattr(request.state, "session", None)
    if session is not None:
        expected: str | None = session.csrf_token
    else:  # sign-in: double submit against the signed pre-session cookie (login CSRF)
        signer: PresessionSigner = request.app.state.presession
        expected = signer.token(request.cookies.get(config.presession_cookie))
    if not expected or not sent or not secrets.compare_digest(expected, sent):
        raise ConsoleRefusal(403, "csrf.invalid")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return
    if config.public_origin is not None:  # the name the console is served under, and no other
        if origin != config.public_origin:
            raise ConsoleRefusal(403, "csrf.invalid")
    elif _host(origin) != request.headers.get("host"):
        raise ConsoleRefusal(403, "csrf.invalid")


def _host(origin: str) -> str:
    return origin.split("://", 1)[-1].rstrip("/")


def client_key(host: str) -> str:
    """The key a client's sign-in attempts are counted under: an IPv4 address as itself (an
    IPv4-mapped IPv6 one too), an IPv6 address by its /64, the smallest prefix a site is given
    (RFC 6177): one host can take any address of its /64 at will."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


class RateLimit:
    """At most ``count`` events per ``window_s`` seconds for each key (a sliding window)."""

    MAX_KEYS = 10_000

    def __init__(
        self, count: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.count = count
        self.window_s = window_s
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False when it is over the limit."""
        now = self._clock()
        events = self._events.setdefault(key, deque())
        while events and now - events[0] > self.window_s:
            events.popleft()
        if len(events) >= self.count:
            return False
        events.append(now)
        if len(self._events) > self.MAX_KEYS:  # bound what a scan of many addresses can take
            # keys whose last event left the window hold nothing that still limits them
            self._events = {k: v for k, v in self._events.items() if now - v[-1] <= self.window_s}
        return True

"""What every response and every state-changing request goes through.

- Security headers on every response, static files and errors included: a strict
  Content-Security-Policy with no inline script or style and no nonce (all JavaScript is in static
  files: htmx, vendored, and the console's own), no framing, no sniffing, no referrer.
- CSRF: every POST carries the session's token (a form field, or the ``X-CSRF-Token`` header that
  the console's script adds to htmx requests); before sign-in, the double-submit token of the
  pre-session cookie. SameSite=Strict cookies are the second wall, not the only one.
- A rate limit on sign-in attempts per client address, before any password is checked.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


async def csrf_guard(request: Request) -> None:
    """Refuse a state-changing request whose CSRF token is missing or wrong (a dependency the
    app factory puts on every route)."""
    if request.method in SAFE_METHODS:
        return
    config = request.app.state.config
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > config.max_body_bytes:
        limit = f"{config.max_body_bytes / 1e6:.0f} MB"
        raise ConsoleRefusal(413, "request.too_large", limit=limit)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    session = getattr(request.state, "session", None)
    if session is not None:
        expected: str | None = session.csrf_token
    else:  # sign-in: double submit against the pre-session cookie (login CSRF)
        expected = request.cookies.get(config.presession_cookie)
    if not expected or not sent or not secrets.compare_digest(expected, sent):
        raise ConsoleRefusal(403, "csrf.invalid")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and _host(origin) != request.headers.get("host"):
        raise ConsoleRefusal(403, "csrf.invalid")


def _host(origin: str) -> str:
    return origin.split("://", 1)[-1].rstrip("/")


class RateLimit:
    """At most ``count`` events per ``window_s`` seconds for each key (a sliding window)."""

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
        if len(self._events) > 10_000:  # bound the memory a scan of many addresses can take
            self._events = {k: v for k, v in self._events.items() if v}
        return True

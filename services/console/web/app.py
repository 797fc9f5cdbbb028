"""The app factory: one console from the shared foundation and the routers of its pages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.console.web import auth
from services.console.web.config import ConsoleConfig
from services.console.web.rendering import Renderer, render
from services.console.web.security import (
    BodyLimit,
    ConsoleRefusal,
    PresessionSigner,
    RateLimit,
    SecurityHeaders,
    csrf_guard,
)
from services.core.accounts import Accounts

STATIC = Path(__file__).resolve().parent.parent / "static"


def create_app(
    config: ConsoleConfig,
    accounts: Accounts,
    routers: Sequence[APIRouter] = (),
    *,
    state: dict[str, object] | None = None,
) -> FastAPI:
    """A console: sign-in, sessions, CSRF on every POST, security headers on every response,
    the shared layout, and the pages of ``routers`` (their handlers find ``state``'s entries on
    ``request.app.state``)."""
    app = FastAPI(
        title=config.title,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # a console, not an API: nothing to browse without signing in
        dependencies=[Depends(auth.load_session), Depends(csrf_guard)],
    )
    app.state.config = config
    app.state.accounts = accounts
    app.state.renderer = Renderer(config.extra_template_dirs)
    app.state.login_limit = RateLimit(*config.login_rate)
    app.state.password_verifier = auth.PasswordVerifier(config.login_slots)
    app.state.presession = PresessionSigner(accounts.console_key("presession"))
    for name, value in (state or {}).items():
        setattr(app.state, name, value)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(auth.router)
    for router in routers:
        app.include_router(router)
    _install_error_pages(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=config.max_body_bytes,
        upload_paths=config.upload_paths,
        max_upload_bytes=config.max_upload_bytes,
    )
    app.add_middleware(SecurityHeaders, secure=config.secure)  # on the 413 too
    if config.trusted_proxies:  # outermost: every layer sees the client the proxy forwards
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(config.trusted_proxies))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return Response("ok", media_type="text/plain")

    return app


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(auth.SignInRequired)
    async def sign_in(request: Request, exc: auth.SignInRequired) -> Response:
        if request.headers.get("hx-request"):  # htmx follows HX-Redirect with a full page load
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(ConsoleRefusal)
    async def refused(request: Request, exc: ConsoleRefusal) -> Response:
        return _error(request, exc.status, exc.code, exc.params)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, "not_found", {"what": request.url.path})

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return _error(request, 400, "not_found", {"what": request.url.path})


def _error(request: Request, status: int, code: str, params: dict[str, object]) -> Response:
    if not hasattr(request.state, "session"):
        request.state.session = None
    context = {"error": (code, params), "status": status}
    return render(request, "error.html", context, status_code=status)

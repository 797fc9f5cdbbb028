"""The officer console's routers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.console.web import SignedIn, render

account = APIRouter()


@account.get("/")
async def start(request: Request) -> Response:
    return RedirectResponse(request.app.state.config.home, status_code=303)


@account.get("/account")
async def my_account(request: Request, officer: SignedIn) -> Response:
    actions = request.app.state.accounts.actions(officer.login, limit=50)
    keys = request.app.state.security_keys.of(officer.login)
    enrolled = request.query_params.get("key") == "enrolled"
    context = {"actions": actions, "keys": keys, "key_enrolled": enrolled}
    return render(request, "officer/account.html", context)

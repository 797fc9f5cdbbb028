"""The officer console's one way into the node: its application layer, opened once per console,
and the officer's structured identity for every command."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from services.console.web import render
from services.core.accounts import Officer
from services.node.application import Application, ApplicationError, OfficerIdentity, open_node

#: The HTTP status of each family of application errors.
_STATUS = {"message": 404, "procedure": 409, "article12": 409, "node": 503}


def node(request: Request) -> Application:
    """The node's application layer, opened at first use (keys, directory, store)."""
    state = request.app.state
    if getattr(state, "node", None) is None:
        state.node = open_node(state.home)
    application: Application = state.node
    return application


def identity(officer: Officer) -> OfficerIdentity:
    """The officer as the application layer records them."""
    return OfficerIdentity(name=officer.name, position=officer.position, agency=officer.agency)


def record(request: Request, officer: Officer, action: str, **detail: Any) -> None:
    """Record a console action under the officer's structured identity (metadata only)."""
    config = request.app.state.config
    request.app.state.accounts.record(officer.login, action, config.clock(), **detail)


async def application_error(request: Request, exc: Exception) -> Response:
    """An application error as a page in the reader's language (never the layer's text)."""
    assert isinstance(exc, ApplicationError)
    if not hasattr(request.state, "session"):
        request.state.session = None
    status = _STATUS.get(exc.code.split(".")[0], 400)
    params = {k: v for k, v in exc.params.items() if isinstance(v, str | int | float)}
    context = {"error": (exc.code, params), "status": status}
    return render(request, "error.html", context, status_code=status)

"""The officer console of one node, assembled on the shared web foundation."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from schemas.attachment import MAX_ATTACHMENTS
from services.console.officer import (
    article12,
    attachments,
    forms,
    labels,
    messages,
    pages,
    procedures,
    transfers,
    uploads,
)
from services.console.officer.node import application_error
from services.console.web import ConsoleConfig, create_app, keys
from services.console.web.config import NavItem
from services.core.security_keys import SecurityKeys
from services.i18n import N_
from services.node.accounts import open_accounts
from services.node.application import ApplicationError
from services.node.settings import NodeSettings

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: The forms that take files (services/console/officer/messages.py): compose and reply.
UPLOAD_PATHS = (r"/compose/[^/]+",)  # a reply takes no files (messages._attaching)

NAV = (
    NavItem("/inbox", N_("Inbox")),
    NavItem("/compose", N_("Write")),
    NavItem("/tracing", N_("Tracing")),
    NavItem("/transfers", N_("Transfers")),
    NavItem("/deliveries", N_("Controlled deliveries")),
    NavItem("/deadlines", N_("Deadlines")),
    NavItem("/search", N_("Search")),
    NavItem("/account", N_("My account")),
)


def build_officer_console(home: Path, *, secure: bool = False, **config: object) -> FastAPI:
    """The console of the node whose home is ``home``; ``secure`` when served over TLS."""
    settings = NodeSettings.load(home)
    accounts, database = open_accounts(settings.store_path)
    # a compose form carries up to MAX_ATTACHMENTS files of the node's cap, and its fields; every
    # other form keeps the console's small bound
    config.setdefault("upload_paths", UPLOAD_PATHS)
    config.setdefault("max_upload_bytes", settings.attachment_max_bytes * MAX_ATTACHMENTS + 2**20)
    console = ConsoleConfig(
        title="CIFTA Exchange", party=settings.party, secure=secure, home="/inbox", nav=NAV,
        extra_template_dirs=(str(TEMPLATES),), **config,  # type: ignore[arg-type]
    )  # fmt: skip
    routers = [
        pages.account,
        messages.router,
        procedures.router,
        attachments.router,
        article12.router,
        transfers.router,
        keys.router,
    ]
    uploads.sweep(home)  # drafts abandoned while the console was down
    state: dict[str, object] = {"home": home, "node": None, "security_keys": SecurityKeys(database)}
    app = create_app(console, accounts, routers, state=state)
    app.add_exception_handler(ApplicationError, application_error)
    app.state.renderer.env.globals.update(labels=labels, flatten=forms.flatten)
    return app

"""The secretariat's console for tests: its app on a testbed hub, with operators signed in the
way a browser does (password, then the current TOTP code)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from services.console.secretariat.app import create_secretariat_app, secretariat_accounts
from services.core.accounts import Accounts
from services.core.directory import registration_request
from services.core.keys import NodeKeys
from services.secretariat.directory_desk import DirectoryDesk
from tests.support.console import PASSWORD, Clock, DemoOfficer, officer
from tests.support.hub import Hub, details

__all__ = ["PASSWORD", "Clock", "console_app", "file_registration", "operators"]


def operators() -> tuple[DemoOfficer, DemoOfficer]:
    """A supervisor who reads Spanish and an officer (viewer) who reads French."""
    return (
        officer("lucia", language="es", role="supervisor", name="Lucía Romero",
                position="Oficial de enlace CIFTA", agency="Secretaría Técnica (OEA)"),
        officer("claire", language="fr", role="officer", name="Claire Dubois",
                position="Analyste", agency="Secrétariat technique (OEA)"),
    )  # fmt: skip


def console_app(hub: Hub, people: tuple[DemoOfficer, ...], clock: Clock) -> FastAPI:
    """The secretariat console of ``hub``, with ``people`` as its accounts."""
    accounts: Accounts = secretariat_accounts(hub.home)
    for o in people:
        accounts.add(
            login=o.login, name=o.name, position=o.position, agency=o.agency,
            language=o.language, role=o.role, password=PASSWORD, now=clock.now,
            totp_secret=o.secret,
        )  # fmt: skip
    app = create_secretariat_app(hub.home, clock=clock, poll_s=0.5)
    return app


def file_registration(hub: Hub, state: str) -> tuple[str, str]:
    """``state``'s registration filed for review: (request id, the signing key id it holds)."""
    keys = NodeKeys.generate(state)
    hub.keys[state] = keys
    signed = registration_request(keys, details(state), datetime.now(UTC))
    pending = DirectoryDesk(hub.home, hub.directory).file_request(signed.model_dump_json().encode())
    return pending.request_id, keys.signing.public().kid

"""The secretariat's console for tests: its app on a testbed hub, with operators signed in the
way a browser does (password, then the current TOTP code)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI

from services.console.secretariat.app import create_secretariat_app, secretariat_accounts
from services.core.accounts import Accounts
from services.core.directory import registration_request
from services.core.keys import NodeKeys
from services.secretariat.directory_desk import DirectoryDesk
from tests.support.console import PASSWORD, Clock, DemoOfficer, officer
from tests.support.hub import Hub, details

__all__ = ["PASSWORD", "Clock", "console_app", "file_registration", "operators", "serving"]


def operators() -> tuple[DemoOfficer, DemoOfficer]:
    """A supervisor who reads Spanish and an officer (viewer) who reads French."""
    return (
        officer("lucia", language="es", role="supervisor", name="Lucía Romero",
                position="Oficial de enlace CIFTA", agency="Secretaría Técnica (OEA)"),
        officer("claire", language="fr", role="officer", name="Claire Dubois",
                position="Analyste", agency="Secrétariat technique (OEA)"),
    )  # fmt: skip


def console_app(hub: Hub, people: tuple[DemoOfficer, ...], clock: Clock | None = None) -> FastAPI:
    """The secretariat console of ``hub``, with ``people`` as its accounts; on the real clock
    unless ``clock`` is given."""
    accounts: Accounts = secretariat_accounts(hub.home)
    now = clock.now if clock is not None else datetime.now(UTC)
    for o in people:
        accounts.add(
            login=o.login, name=o.name, position=o.position, agency=o.agency,
            language=o.language, role=o.role, password=PASSWORD, now=now,
            totp_secret=o.secret,
        )  # fmt: skip
    timing = {"clock": clock} if clock is not None else {}
    return create_secretariat_app(hub.home, poll_s=0.5, **timing)


def file_registration(hub: Hub, state: str) -> tuple[str, str]:
    """``state``'s registration filed for review: (request id, the signing key id it holds)."""
    keys = NodeKeys.generate(state)
    hub.keys[state] = keys
    signed = registration_request(keys, details(state), datetime.now(UTC))
    pending = DirectoryDesk(hub.home, hub.directory).file_request(signed.model_dump_json().encode())
    return pending.request_id, keys.signing.public().kid


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port, in a thread with its own event loop
    (the test's loop stays free for the nodes it runs); its base URL. Stopped after."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="secretariat-console", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (server.started and server.servers):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the secretariat console did not start")
        time.sleep(0.01)  # polling uvicorn's own started flag, with a deadline
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)

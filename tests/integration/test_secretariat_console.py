"""The secretariat console over HTTP against a real hub: approval by the key id read out by
telephone (never shown, a wrong one refused without the right one), roles, every action
recorded, statistics exported as CSV, pages in the operator's language."""

from __future__ import annotations

import asyncio
import csv
import html
import io
from typing import Any

from fastapi.testclient import TestClient

from services.audit.log import AuditLog
from services.console.secretariat.app import secretariat_accounts
from tests.support.console import Clock, DemoOfficer, csrf_of, sign_in
from tests.support.hub import Hub
from tests.support.secretariat import console_app, file_registration, operators


def signed_in(client: TestClient, who: DemoOfficer, clock: Clock) -> None:
    answer = sign_in(client, who, clock)
    assert answer.status_code == 303, answer.text


async def call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """A request from a thread: the console's handlers use the hub, served in this loop's
    process, and the test's own loop must stay free."""
    return await asyncio.to_thread(method, *args, **kwargs)


async def test_a_supervisor_approves_a_registration_by_typing_the_key_id(hub: Hub) -> None:
    clock = Clock()
    lucia, claire = operators()
    client = TestClient(console_app(hub, (lucia, claire), clock))
    request_id, kid = file_registration(hub, "BRA")
    signed_in(client, lucia, clock)

    listing = await call(client.get, "/directory")
    assert "BRA" in listing.text and f"/directory/requests/{request_id}" in listing.text
    review = await call(client.get, f"/directory/requests/{request_id}")
    assert review.status_code == 200 and kid not in review.text
    assert "República Federativa do Brasil" in review.text
    assert "Identificador de la clave de firma leído por teléfono" in review.text  # Spanish

    wrong = "0123 4567 89ab cdef 0123 4567 89ab cdef"
    form = {"csrf_token": csrf_of(review.text), "key_id": wrong}
    refused = await call(client.post, f"/directory/requests/{request_id}/approve", data=form)
    assert refused.status_code == 422 and kid not in refused.text
    assert "no es el de la solicitud de BRA" in refused.text
    assert hub.directory.entry("BRA") is None

    form["key_id"] = "-".join(kid[i : i + 8].upper() for i in range(0, 32, 8))
    approved = await call(client.post, f"/directory/requests/{request_id}/approve", data=form)
    assert approved.status_code == 200, approved.text
    assert "BRA aprobado: versión 1 de la entrada del directorio firmada y publicada" in (
        approved.text
    )
    assert hub.directory.entry("BRA") is not None and "BRA" in hub.home.registry().codes()
    entry = await call(client.get, "/directory/entries/BRA")
    assert kid in entry.text  # once approved, the entry lists its keys

    actions = [(a["login"], a["action"]) for a in secretariat_accounts(hub.home).actions()]
    assert ("lucia", "secretariat.approval_refused") in actions
    assert ("lucia", "secretariat.approved") in actions


async def test_an_officer_may_look_but_not_approve(hub: Hub) -> None:
    clock = Clock()
    lucia, claire = operators()
    client = TestClient(console_app(hub, (lucia, claire), clock))
    request_id, kid = file_registration(hub, "PAN")
    signed_in(client, claire, clock)
    review = await call(client.get, f"/directory/requests/{request_id}")
    assert review.status_code == 200 and "Examiner la demande de PAN" in review.text  # French
    assert 'id="approve"' not in review.text
    form = {"csrf_token": csrf_of(review.text), "key_id": kid}
    answer = await call(client.post, f"/directory/requests/{request_id}/approve", data=form)
    assert answer.status_code == 403 and hub.directory.entry("PAN") is None


async def test_the_statistics_export_as_csv_and_each_export_is_recorded(hub: Hub) -> None:
    clock = Clock()
    lucia, claire = operators()
    client = TestClient(console_app(hub, (lucia, claire), clock))
    signed_in(client, claire, clock)
    empty = await call(client.get, "/statistics")
    assert "Il n'y a pas encore de journal d'audit" in html.unescape(empty.text)  # no log yet
    AuditLog(hub.home.audit_log_path).close()  # an audit log, empty
    page = await call(client.get, "/statistics")
    assert page.status_code == 200 and 'href="/statistics/tracing.csv"' in page.text
    answer = await call(client.get, "/statistics/tracing.csv")
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:3] == ["state", "requests", "answered"]
    actions = secretariat_accounts(hub.home).actions("claire")
    assert [a["action"] for a in actions].count("secretariat.statistics_exported") == 1

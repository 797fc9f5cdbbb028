"""Art. XII in the console: a disclosure notice reaches the originator before the disclosure,
an export downloads the record and is recorded, and an export the rules refuse is refused with
its reason in the officer's language, nothing downloaded. Brokerless (tests.support.casework)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from fastapi.testclient import TestClient

from schemas import HandlingCode
from schemas.registry import example_body
from services.console.officer.app import build_officer_console
from services.core.keys import NodeKeys
from services.node.application import Application, OfficerIdentity
from services.node.application.models import InboxQuery, SendMessage
from tests.support.casework import Network
from tests.support.console import Clock, add_officers, csrf_of, node_home, officer, sign_in

OFFICER = OfficerIdentity(name="Ana Ruiz", position="Analyst", agency="FGR")
KIND = "info.trafficking_routes"


def _setup(
    tmp_path: Path, handling: HandlingCode, note: str | None = None, language: str = "en"
) -> tuple[Network, TestClient, str]:
    net = Network.of(tmp_path / "net", ["MEX", "USA"])
    body = example_body(KIND).model_dump(mode="json")
    cmd = SendMessage(officer=OFFICER, kind=KIND, body=body, to=["USA"], handling=handling,
                      note=note)  # fmt: skip
    msg_id = Application(net["MEX"]).send(cmd).msg_id
    net.deliver()
    home = node_home(tmp_path, "USA")
    NodeKeys.generate("USA").save(home / "keys.json", None)
    clock, who = Clock(), officer("joe", language=language, name="Joe Doe")
    add_officers(home, [who], clock.now)
    app = build_officer_console(home, clock=clock)
    app.state.node = Application(net["USA"])
    client = TestClient(app)
    assert sign_in(client, who, clock).status_code == 303
    return net, client, msg_id


def test_a_disclosure_notice_reaches_the_originator(tmp_path: Path) -> None:
    net, client, msg_id = _setup(tmp_path, HandlingCode.H1)
    page = client.get(f"/messages/{msg_id}")
    assert 'action="/messages/' in page.text and 'id="disclosure-form"' in page.text
    answer = client.post(f"/messages/{msg_id}/disclosure", data={
        "csrf_token": csrf_of(page.text), "disclosed_to": "U.S. District Court, S.D. Texas",
        "legal_basis": "Subpoena 26-cr-0412", "scope": "the route and its dates",
    }, follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303, answer.text
    net.deliver()
    [notice] = Application(net["MEX"]).inbox(InboxQuery(kind="confidentiality.*"))
    assert notice.kind == "confidentiality.disclosure_notice" and notice.in_reply_to == msg_id


def test_an_export_downloads_the_record_under_the_officers_name(tmp_path: Path) -> None:
    _, client, msg_id = _setup(tmp_path, HandlingCode.H1)
    token = csrf_of(client.get(f"/messages/{msg_id}").text)
    answer = client.post(f"/messages/{msg_id}/export", data={"csrf_token": token})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].startswith("attachment;")
    exported = json.loads(answer.content)
    assert exported["msg_id"] == msg_id and exported["body"]["title"]
    assert exported["exported_by"].startswith("Joe Doe")


def test_an_export_the_rules_refuse_names_why_and_downloads_nothing(tmp_path: Path) -> None:
    _, client, msg_id = _setup(tmp_path, HandlingCode.H2)
    token = csrf_of(client.get(f"/messages/{msg_id}").text)
    answer = client.post(f"/messages/{msg_id}/export", data={"csrf_token": token})
    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith("text/html")
    assert "Article XII does not allow this now" in answer.text and '"body"' not in answer.text


def test_a_refused_export_names_the_rule_and_the_remedy_in_the_officers_language(
    tmp_path: Path,
) -> None:
    """The workflow gives codes; the page words the rule and what lifts it in Spanish, with no
    English prose left from the rule."""
    _, client, msg_id = _setup(tmp_path, HandlingCode.H2, language="es")
    token = csrf_of(client.get(f"/messages/{msg_id}").text)
    answer = client.post(f"/messages/{msg_id}/export", data={"csrf_token": token})
    assert answer.status_code == 409
    text = html.unescape(answer.text)
    assert (
        "El artículo XII no lo permite por ahora (art. XII, código de tratamiento H2: no debe "
        "difundirse sin permiso de quien la proporcionó): pida a MEX su consentimiento "
        "(divulgación fuera del organismo)."
    ) in text
    assert "provider's permission" not in text and "h2_onward" not in text

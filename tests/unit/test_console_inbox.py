"""The inbox's filters in the console: the date fields in the officer's language, and a date the
officer mistyped answered with one line naming it, never a traceback."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from schemas import HandlingCode
from schemas.registry import example_body
from services.console.officer.app import build_officer_console
from services.core.keys import NodeKeys
from services.node.application import Application, OfficerIdentity
from services.node.application.models import SendMessage
from tests.support.casework import Network
from tests.support.console import Clock, add_officers, node_home, officer, sign_in


def _client(tmp_path: Path, language: str, net: Network | None = None) -> TestClient:
    """A USA officer's console; its node is ``net``'s USA core (brokerless) when given."""
    clock = Clock()
    home = node_home(tmp_path, "USA")
    NodeKeys.generate("USA").save(home / "keys.json", None)
    who = officer("ana", language=language)
    add_officers(home, [who], clock.now)
    app = build_officer_console(home, clock=clock)
    if net is not None:
        app.state.node = Application(net["USA"])
    client = TestClient(app)
    assert sign_in(client, who, clock).status_code == 303
    return client


OFFICER = OfficerIdentity(name="Ana Ruiz", position="Analyst", agency="FGR")


def _send(net: Network, kind: str) -> str:
    body = example_body(kind).model_dump(mode="json")
    cmd = SendMessage(officer=OFFICER, kind=kind, body=body, to=["USA"], handling=HandlingCode.H1)
    msg_id = Application(net["MEX"]).send(cmd).msg_id
    net.deliver()
    return msg_id


def test_the_inbox_lists_titles_and_keeps_the_days_asked(tmp_path: Path) -> None:
    net = Network.of(tmp_path / "net", ["MEX", "USA"])
    first = _send(net, "info.trafficking_routes")  # stored 2026-11-24
    net.clock.advance(days=2)
    second = _send(net, "info.concealment_methods")  # stored 2026-11-26
    client = _client(tmp_path, "fr", net)
    page = client.get("/inbox")
    assert f'data-msg-id="{first}"' in page.text and f'data-msg-id="{second}"' in page.text
    assert "Itinéraires de trafic</a>" in page.text
    rows = client.get("/inbox/rows", params={"since": "2026-11-25"}).text
    assert f'data-msg-id="{second}"' in rows and f'data-msg-id="{first}"' not in rows
    rows = client.get("/inbox/rows", params={"until": "2026-11-24"}).text  # the day included
    assert f'data-msg-id="{first}"' in rows and f'data-msg-id="{second}"' not in rows


def test_the_inbox_offers_date_filters_in_the_officers_language(tmp_path: Path) -> None:
    net = Network.of(tmp_path / "net", ["MEX", "USA"])
    page = _client(tmp_path, "pt", net).get("/inbox", params={"since": "2026-11-01"})
    assert page.status_code == 200
    assert '<label for="f-since">Desde (data)</label>' in page.text
    assert '<label for="f-until">Até (data)</label>' in page.text
    assert 'id="f-since" name="since" type="date" value="2026-11-01"' in page.text
    assert '<th scope="col">Título</th>' in page.text


def test_a_mistyped_date_is_named_with_what_is_expected(tmp_path: Path) -> None:
    client = _client(tmp_path, "es", Network.of(tmp_path / "net", ["MEX", "USA"]))
    page = client.get("/inbox", params={"until": "31/11/2026"})
    assert page.status_code == 400
    assert "31/11/2026" in page.text and "until" in page.text
    assert "Traceback" not in page.text and "pydantic" not in page.text.lower()
    rows = client.get("/inbox/rows", params={"since": "ayer"})
    assert rows.status_code == 400 and "ayer" in rows.text

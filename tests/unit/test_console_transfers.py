"""Licensed transfers in the console (Art. IX): each state sees the step it owes and records it
there, the import confirmation and transit authorization, the dispatch, the receipt; a short
receipt shows as the discrepancy. Brokerless (tests.support.casework): USA exports to COL through
PAN, the notice already sent."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from services.console.officer.app import build_officer_console
from services.core.keys import NodeKeys
from services.node.application import Application
from services.node.workflows.transfers import Stage
from tests.support.casework import Network
from tests.support.console import Clock, add_officers, csrf_of, node_home, officer, sign_in
from tests.unit.test_casework import network
from tests.unit.test_casework_transfers import PARTIES, send, stages, transfer


def _console(tmp_path: Path, net: Network, party: str, language: str = "es") -> TestClient:
    home = node_home(tmp_path, party)
    NodeKeys.generate(party).save(home / "keys.json", None)
    clock, who = Clock(), officer(party.lower(), language=language)
    add_officers(home, [who], clock.now)
    app = build_officer_console(home, clock=clock)
    app.state.node = Application(net[party])
    client = TestClient(app)
    assert sign_in(client, who, clock).status_code == 303
    return client


def _step(client: TestClient, form_class: str, **form: str) -> int:
    page = client.get("/transfers").text
    assert f'class="{form_class}"' in page, f"{form_class} not offered"
    base = f"/transfers/USA/{form.pop('transfer_id')}/{form_class.split('-')[1]}"
    answer = client.post(base, data={**form, "csrf_token": csrf_of(page)}, follow_redirects=False)
    return int(answer.status_code)


def test_each_state_records_its_step_and_a_short_receipt_shows_the_discrepancy(
    tmp_path: Path,
) -> None:
    net = network(tmp_path / "net")
    send(net, "USA", "transfer.notice")
    net.deliver()
    tid = transfer(net, "USA").transfer_id
    col, pan, usa = (_console(tmp_path, net, p) for p in ("COL", "PAN", "USA"))
    assert 'class="step-dispatch"' not in usa.get("/transfers").text  # not yet confirmed
    assert _step(col, "step-confirm", transfer_id=tid, number="COL-IMP-2026-77") == 303
    assert _step(pan, "step-confirm", transfer_id=tid, number="PAN-TR-12") == 303
    net.deliver()
    assert stages(net) == [Stage.AUTHORIZED] * 3
    assert _step(usa, "step-dispatch", transfer_id=tid, carrier="Maersk",
                 document="BL-0042") == 303  # fmt: skip
    net.deliver()
    assert _step(col, "step-receive", transfer_id=tid, place="Buenaventura", lines="1=190") == 303
    net.deliver()
    assert {transfer(net, p).stage for p in PARTIES} == {Stage.DISCREPANCY}
    page = col.get("/transfers").text
    assert "<td>1</td><td>200</td><td>190</td>" in page


def test_where_a_transfer_stands_is_named_in_the_officers_language(tmp_path: Path) -> None:
    net = network(tmp_path / "net")
    send(net, "USA", "transfer.notice")
    net.deliver()
    page = _console(tmp_path, net, "COL", language="pt").get("/transfers").text
    assert '<span class="badge">notificada: confirmações aguardadas</span>' in page
    assert ">notified<" not in page

"""A controlled delivery's own page in the console (Art. XVIII): its one timeline, and the steps
recorded from it (hand-over, interception, closure) through the application layer, the node
deciding who may record which. Brokerless (tests.support.casework): MEX proposed an operation
with GTM and USA along GTM -> MEX -> USA, and both consented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from services.console.officer.app import build_officer_console
from services.core.keys import NodeKeys
from services.node.application import Application
from services.node.workflows.controlled_delivery import Phase
from tests.support.casework import Network
from tests.support.console import Clock, add_officers, csrf_of, node_home, officer, sign_in
from tests.unit.test_casework import network
from tests.unit.test_casework_delivery import PARTICIPANTS, active, operation


def _mex_console(tmp_path: Path, language: str = "es") -> tuple[Network, TestClient, str]:
    net = network(tmp_path / "net")
    active(net)
    home = node_home(tmp_path, "MEX")
    NodeKeys.generate("MEX").save(home / "keys.json", None)
    clock, who = Clock(), officer("ana", language=language)
    add_officers(home, [who], clock.now)
    app = build_officer_console(home, clock=clock)
    app.state.node = Application(net["MEX"])
    client = TestClient(app)
    assert sign_in(client, who, clock).status_code == 303
    return net, client, f"/deliveries/MEX/{operation(net, 'MEX').operation_id}"


def _post(client: TestClient, url: str, **form: str) -> int:
    token = csrf_of(client.get(url).text)
    answer = client.post(url + "/" + form.pop("step"), data={**form, "csrf_token": token},
                         follow_redirects=False)  # fmt: skip
    return int(answer.status_code)


def test_hand_over_interception_and_closure_from_the_operations_page(tmp_path: Path) -> None:
    net, client, url = _mex_console(tmp_path)
    page = client.get(url)
    assert page.status_code == 200 and 'id="timeline"' in page.text
    assert "Entrega de custodia" in page.text or "Traspaso de custodia" in page.text
    assert _post(client, url, step="handover", from_state="GTM", to_state="MEX",
                 place="Ciudad Hidalgo") == 303  # fmt: skip
    assert (
        _post(
            client,
            url,
            step="interception",
            decision="items_substituted",
            inventory="40 | firearm | AK-pattern rifle replaced by inert replica",
        )
        == 303
    )
    net.deliver()
    assert {operation(net, p).custody for p in PARTICIPANTS} == {"MEX"}
    timeline = client.get(url).text
    assert "custodia GTM -&gt; MEX, precintos intactos" in timeline  # the officer reads Spanish
    assert "interceptación por MEX: artículos sustituidos" in timeline
    # the layer dates a closure by the wall clock, the harness's node by its own: align them
    net.clock.now = max(net.clock.now, datetime.now(UTC) + timedelta(seconds=1))
    assert _post(client, url, step="closure", outcome="interdicted", summary="4 detenidos") == 303
    net.deliver()
    assert [operation(net, p).phase for p in PARTICIPANTS] == [Phase.CLOSED] * 3


def test_a_step_the_node_refuses_is_named_and_nothing_is_recorded(tmp_path: Path) -> None:
    net, client, url = _mex_console(tmp_path)
    status = _post(client, url, step="handover", from_state="USA", to_state="GTM", place="x")
    assert status == 409
    assert _post(client, url, step="bribe") == 404
    net.deliver()
    assert {operation(net, p).custody for p in PARTICIPANTS} == {"GTM"}  # as it was


def test_the_timeline_is_in_the_officers_language_its_codes_named(tmp_path: Path) -> None:
    net, client, url = _mex_console(tmp_path, language="pt")
    assert _post(client, url, step="handover", from_state="GTM", to_state="MEX",
                 place="Ciudad Hidalgo", seals_broken="on") == 303  # fmt: skip
    swapped = "40 | firearm | AK-pattern rifle replaced by inert replica"
    assert _post(client, url, step="interception", decision="items_substituted",
                 inventory=swapped) == 303  # fmt: skip
    net.deliver()
    timeline = client.get(url).text.split('id="timeline"')[1].split("</ol>")[0]
    assert "proposta por MEX" in timeline and "consentimento de GTM" in timeline
    assert "em andamento: todos os participantes consentiram" in timeline
    assert "custódia GTM -&gt; MEX, LACRES NÃO INTACTOS" in timeline
    assert "interceptação por MEX: itens substituídos" in timeline
    assert "proposed by" not in timeline and "items_substituted" not in timeline

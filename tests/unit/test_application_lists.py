"""The application layer's lists as the console shows them: each summary's title, and the inbox
narrowed to the days an officer picks."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services import i18n
from services.node.application import Application, OfficerIdentity
from services.node.application.models import InboxQuery, SendMessage
from tests.support.casework import Network

OFFICER = OfficerIdentity(name="Ana Ruiz", position="Analyst", agency="FGR")


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return Network.of(tmp_path, ["MEX", "USA"])


def _send(net: Network, kind: str) -> str:
    body = example_body(kind).model_dump(mode="json")
    cmd = SendMessage(officer=OFFICER, kind=kind, body=body, to=["USA"], handling=HandlingCode.H1)
    return Application(net["MEX"]).send(cmd).msg_id


def test_each_summary_carries_its_kinds_title_which_the_catalogs_translate(net: Network) -> None:
    _send(net, "info.trafficking_routes")
    net.deliver()
    [summary] = Application(net["USA"]).inbox(InboxQuery())
    assert summary.title == "Trafficking routes"
    assert i18n.gettext_for("es", summary.title) == "Rutas de tráfico"
    assert i18n.gettext_for("pt", summary.title) == "Rotas de tráfico"


def test_the_inbox_keeps_the_messages_stored_within_the_dates_asked(net: Network) -> None:
    first = _send(net, "info.trafficking_routes")  # stored 2026-11-24
    net.deliver()
    net.clock.advance(days=2)
    second = _send(net, "info.concealment_methods")  # stored 2026-11-26
    net.deliver()
    usa = Application(net["USA"])

    def ids(**dates: str) -> list[str]:
        return [m.msg_id for m in usa.inbox(InboxQuery(**dates))]

    assert ids() == [first, second]
    assert ids(since="2026-11-25") == [second]
    assert ids(until="2026-11-25") == [first]
    assert ids(since="2026-11-24", until="2026-11-26") == [first]  # until excludes its instant
    assert ids(since="2026-11-27") == []

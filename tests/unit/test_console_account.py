"""The officer's own action log on the account page reads in the officer's language, each action's
code kept in the cell's title for support."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from services.console.officer.app import build_officer_console
from services.core.keys import NodeKeys
from tests.support.console import Clock, add_officers, node_home, officer, sign_in

#: One row of the action log: (the cell's title, what it shows).
ACTION_CELL = re.compile(r'<td title="([a-z_]+)">([^<]*)</td>')


def _actions_shown(tmp_path: Path, language: str) -> list[tuple[str, str]]:
    clock, home = Clock(), node_home(tmp_path, "MEX")
    NodeKeys.generate("MEX").save(home / "keys.json", None)
    who = officer("ana", language=language)
    add_officers(home, [who], clock.now)
    client = TestClient(build_officer_console(home, clock=clock))
    assert sign_in(client, who, clock, password="not the password").status_code == 401
    assert sign_in(client, who, clock).status_code == 303
    page = client.get("/account")
    assert page.status_code == 200
    return ACTION_CELL.findall(page.text)


def test_sign_in_outcomes_on_the_account_page_are_in_spanish_with_their_codes_as_titles(
    tmp_path: Path,
) -> None:
    assert _actions_shown(tmp_path, "es")[:2] == [
        ("signed_in", "inicio de sesión"),
        ("sign_in_refused", "inicio de sesión rechazado"),
    ]


def test_the_same_log_reads_in_brazilian_portuguese(tmp_path: Path) -> None:
    assert _actions_shown(tmp_path, "pt")[:2] == [
        ("signed_in", "acesso ao sistema"),
        ("sign_in_refused", "acesso recusado"),
    ]


def test_every_action_the_console_and_the_cli_record_has_a_name() -> None:
    from services.i18n import values

    recorded = set()
    for path in Path(__file__).resolve().parents[2].joinpath("services").rglob("*.py"):
        text = path.read_text()
        recorded |= set(re.findall(r'record\([^)]*?"([a-z_]+)"', text))
        recorded |= set(re.findall(r'_operator_record\([^)]*?"([a-z_]+)"', text))
    for family, steps in {"delivery": ("handover", "interception", "closure"),
                          "transfer": ("confirm", "dispatch", "receive")}.items():  # fmt: skip
        recorded |= {f"{family}_{step}" for step in steps}  # recorded as f"{family}_{step}"
    assert recorded - values.ACTIONS.keys() == set()

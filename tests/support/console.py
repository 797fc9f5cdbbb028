"""Builders for console tests: a node home with officers, a clock the test moves, and a client
that signs in the way a browser does (password, then the current TOTP code)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.core.accounts import Accounts
from services.node.accounts import open_accounts
from services.testbed.consoles import DemoOfficer

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Clock:
    """A clock the test moves; starts on a TOTP step boundary."""

    now: datetime = field(default_factory=lambda: datetime(2026, 12, 1, 15, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def officer(
    login: str, *, language: str = "es", role: str = "officer", **profile: str
) -> DemoOfficer:
    return DemoOfficer(
        login=login,
        name=profile.get("name", f"{login.capitalize()} Pérez"),
        position=profile.get("position", "Oficial de enlace"),
        agency=profile.get("agency", "Fiscalía General de la República"),
        language=language,
        role=role,
        password=PASSWORD,
    )


def node_home(root: Path, party: str) -> Path:
    """A node home with just its settings: enough for the console's accounts."""
    home = root / party.lower()
    home.mkdir(parents=True, exist_ok=True)
    (home / "node.json").write_text(json.dumps({"party": party}))
    return home


def add_officers(home: Path, officers: list[DemoOfficer], now: datetime) -> Accounts:
    accounts, _ = open_accounts(home / "store.sqlite")
    for o in officers:
        accounts.add(
            login=o.login, name=o.name, position=o.position, agency=o.agency,
            language=o.language, role=o.role, password=PASSWORD, now=now, totp_secret=o.secret,
        )  # fmt: skip
    return accounts


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: Any, who: DemoOfficer, clock: Clock, password: str = PASSWORD) -> Any:
    """Sign ``who`` in through the login form; moves the clock one TOTP step first, since a
    code is never accepted twice."""
    clock.advance(30)
    page = client.get("/login")
    return client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "login": who.login, "password": password,
              "code": who.code(clock.now)},
        follow_redirects=False,
    )  # fmt: skip

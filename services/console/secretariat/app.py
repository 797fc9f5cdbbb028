"""The secretariat console's app: its accounts in the hub home, its navigation, its pages."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI

from services.console.secretariat.pages import router
from services.console.web.app import create_app
from services.console.web.config import ConsoleConfig, NavItem
from services.core.accounts import AccountError, Accounts, holds_sealed_secrets, open_vault
from services.hub.home import HubHome
from services.i18n import N_
from services.secretariat.audit_desk import Verifier
from services.secretariat.directory_desk import DirectoryDesk

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: The tables of services/core/accounts.py, as a node's store creates them (its migration 9): the
#: secretariat keeps its own in the hub home.
ACCOUNT_SCHEMA = """
CREATE TABLE officers (
    login              TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    position           TEXT NOT NULL,
    agency             TEXT NOT NULL,
    language           TEXT NOT NULL CHECK (language IN ('es', 'en', 'fr', 'pt')),
    role               TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'admin')),
    password_hash      TEXT NOT NULL,
    totp_secret        TEXT,
    totp_last_counter  INTEGER NOT NULL DEFAULT 0,
    failed_attempts    INTEGER NOT NULL DEFAULT 0,
    locked_until       TEXT,
    disabled_at        TEXT,
    created_at         TEXT NOT NULL
);
CREATE TABLE console_sessions (
    token_sha256       TEXT PRIMARY KEY,
    login              TEXT NOT NULL REFERENCES officers (login),
    csrf_token         TEXT NOT NULL,
    complete           INTEGER NOT NULL,
    pending_totp       TEXT,
    created_at         TEXT NOT NULL,
    last_seen_at       TEXT NOT NULL
);
CREATE INDEX console_sessions_login ON console_sessions (login);
CREATE TABLE officer_actions (
    id                 INTEGER PRIMARY KEY,
    at                 TEXT NOT NULL,
    login              TEXT NOT NULL,
    identity           TEXT NOT NULL,
    action             TEXT NOT NULL,
    detail             TEXT NOT NULL
);
CREATE INDEX officer_actions_login ON officer_actions (login, id);
"""

NAV = (
    NavItem("/network", N_("Network")),
    NavItem("/directory", N_("Directory")),
    NavItem("/audit", N_("Audit log")),
    NavItem("/statistics", N_("Statistics")),
)


class SecretariatStore:
    """The secretariat console's accounts, sessions and recorded actions: a SQLite file in the
    hub home (never in a node's store: the secretariat is no State Party)."""

    def __init__(self, hub: HubHome) -> None:
        path = hub.root / "secretariat" / "console.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row  # services/core/accounts.py reads columns by name
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA foreign_keys = ON")
        if not self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'officers'").fetchone():
            self._db.executescript(ACCOUNT_SCHEMA)
        path.chmod(0o600)  # password hashes and TOTP secrets

    @property
    def db(self) -> sqlite3.Connection:
        return self._db

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


def secretariat_accounts(hub: HubHome) -> Accounts:
    """The secretariat console's accounts; their TOTP secrets sealed under a key kept 0600 beside
    the store (services/core/totp_vault.py)."""
    store = SecretariatStore(hub)  # makes the folder, 0700
    key = hub.root / "secretariat" / "console-totp.key"
    if not key.exists() and holds_sealed_secrets(store.db):
        store.close()
        raise AccountError("accounts.totp_key_missing", file=key.name)
    try:
        vault = open_vault(key)
    except AccountError:
        store.close()
        raise
    return Accounts(store, vault)


def create_secretariat_app(hub: HubHome, *, secure: bool = False, **config: object) -> FastAPI:
    """The secretariat console of the hub at ``hub``."""
    settings = ConsoleConfig(
        title="CIFTA Exchange",
        party="SEC",
        secure=secure,
        home="/network",
        nav=NAV,
        extra_template_dirs=(str(TEMPLATES),),
        **config,  # type: ignore[arg-type]
    )
    return create_app(
        settings,
        secretariat_accounts(hub),
        [router],
        state={"hub": hub, "desk": DirectoryDesk(hub), "verifier": Verifier(hub)},
    )

"""The node's officer accounts, opened on its store: for ``cifta officer ...`` and the officer
console, which reach the node's store only through here and the application layer."""

from __future__ import annotations

from pathlib import Path

from services.core.accounts import Accounts
from services.core.totp_vault import TotpVault
from services.node.store.db import Database

#: Beside the store, mode 0600: the key that seals the officers' TOTP secrets in it (why a file
#: of its own: services/core/totp_vault.py).
TOTP_KEY_FILE = "console-totp.key"


def open_accounts(store_path: Path) -> tuple[Accounts, Database]:
    """The accounts of the node whose store is ``store_path`` (migrated to this software's
    schema), and the database to close when done."""
    database = Database(store_path)
    return Accounts(database, TotpVault.at(store_path.parent / TOTP_KEY_FILE)), database

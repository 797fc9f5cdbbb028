"""The node's officer accounts, opened on its store: for ``cifta officer ...`` and the officer
console, which reach the node's store only through here and the application layer."""

from __future__ import annotations

from pathlib import Path

from services.core.accounts import AccountError, Accounts, holds_sealed_secrets, open_vault
from services.node.store.db import Database

#: Beside the store, mode 0600: the key that seals the officers' TOTP secrets in it (why a file
#: of its own: services/core/totp_vault.py).
TOTP_KEY_FILE = "console-totp.key"


def open_accounts(store_path: Path, *, recovering: bool = False) -> tuple[Accounts, Database]:
    """The accounts of the node whose store is ``store_path`` (migrated to this software's
    schema), and the database to close when done. A key lost while sealed secrets wait for it
    is ``accounts.totp_key_missing``, unless ``recovering`` (`cifta officer reset-password`,
    which gives the officer a new second factor under a new key)."""
    database = Database(store_path)
    key = store_path.parent / TOTP_KEY_FILE
    if not recovering and not key.exists() and holds_sealed_secrets(database.db):
        database.close()
        # a new key would lock every officer out without a word
        raise AccountError("accounts.totp_key_missing", file=TOTP_KEY_FILE)
    try:
        vault = open_vault(key)
    except AccountError:
        database.close()
        raise
    return Accounts(database, vault), database

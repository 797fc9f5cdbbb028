"""The node's officer accounts, opened on its store: for ``cifta officer ...`` and the officer
console, which reach the node's store only through here and the application layer."""

from __future__ import annotations

from pathlib import Path

from services.core.accounts import Accounts
from services.node.store.db import Database


def open_accounts(store_path: Path) -> tuple[Accounts, Database]:
    """The accounts of the node whose store is ``store_path`` (migrated to this software's
    schema), and the database to close when done."""
    database = Database(store_path)
    return Accounts(database), database

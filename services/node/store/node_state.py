"""Facts the node keeps about itself (``node_state``): its clock's offset from the hub's, for
instance, measured by the running node and read by every command."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from services.node.store.db import Repository, iso, parse_iso


class NodeState(Repository):
    def set(self, name: str, value: object, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO node_state (name, value, at) VALUES (?, ?, ?)",
                (name, json.dumps(value), iso(now)),
            )

    def get(self, name: str) -> tuple[Any, datetime] | None:
        """A fact and when it was written."""
        row = self._db.execute(
            "SELECT value, at FROM node_state WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        return json.loads(row[0]), parse_iso(row[1])

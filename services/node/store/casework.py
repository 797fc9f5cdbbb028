"""The Convention's procedures as the node keeps them (``casework``: one row per workflow, its
state as JSON) and the copies it forwarded under Art. XII (``forwards``)."""

from __future__ import annotations

from datetime import datetime

from services.node.store.db import Repository, iso


class Cases(Repository):
    def get(self, family: str, key: str) -> tuple[str, str | None] | None:
        """(state JSON, case_id) of one workflow."""
        row = self._db.execute(
            "SELECT state, case_id FROM casework WHERE family = ? AND key = ?", (family, key)
        ).fetchone()
        return None if row is None else (str(row[0]), row[1])

    def put(
        self, family: str, key: str, state: str, *, open: bool, case_id: str | None, now: datetime
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO casework (family, key, state, open, case_id, updated_at)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT (family, key) DO UPDATE SET"
                " state = excluded.state, open = excluded.open, updated_at = excluded.updated_at",
                (family, key, state, int(open), case_id, iso(now)),
            )

    def of_family(
        self, family: str, *, open_only: bool = False, key_suffix: str | None = None
    ) -> list[tuple[str, str, str | None]]:
        """(key, state JSON, case_id) of a family's workflows, oldest first; with ``key_suffix``,
        only those whose key ends with it (``<owner>/<id>``: the cases of one id)."""
        sql = "SELECT key, state, case_id FROM casework WHERE family = ?"
        args: list[object] = [family]
        if open_only:
            sql += " AND open = 1"
        if key_suffix is not None:
            sql += " AND substr(key, -?) = ?"
            args += [len(key_suffix), key_suffix]
        rows = self._db.execute(sql + " ORDER BY rowid", args).fetchall()
        return [(str(r[0]), str(r[1]), r[2]) for r in rows]

    def clear(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM casework")


class Forwards(Repository):
    def add(self, copy_msg_id: str, original_msg_id: str, officer: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO forwards (copy_msg_id, original_msg_id, officer, at) VALUES (?,?,?,?)",
                (copy_msg_id, original_msg_id, officer, iso(now)),
            )

    def original_of(self, copy_msg_id: str) -> str | None:
        """The received message a forwarded copy copies, if it is one."""
        row = self._db.execute(
            "SELECT original_msg_id FROM forwards WHERE copy_msg_id = ?", (copy_msg_id,)
        ).fetchone()
        return None if row is None else str(row[0])

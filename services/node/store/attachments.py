"""Attachments of received messages waiting to be fetched (``attachment_fetches``), and what
became of them: fetched (the receipt was queued) or refused (with its reason code); of sent
messages, the objects each names (``sent_attachments``) and the recipients whose objects are to
be purged from this node's stream at the hub (``attachment_purges``)."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from services.node.store.db import Repository, iso


@dataclass(frozen=True)
class AttachmentFetch:
    """A message whose attachments are to be fetched, how often that was tried, and since when
    (Unix seconds) the hub has said a segment of it is not there."""

    msg_id: str
    sender: str
    attempts: int
    missing_since: float | None = None
    missing_count: int = 0  # "not there" answers in a row


class AttachmentFetches(Repository):
    #: fetches queued by this process so far (rolled back or not): the node wakes its receiver
    #: when this changed, not after every message stored
    queued = 0

    def add(self, msg_id: str, sender: str, *, now: datetime) -> None:
        """Queue the attachments of ``msg_id`` for fetching (once)."""
        self.queued += 1
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO attachment_fetches (msg_id, sender, state, next_attempt_at,"
                " at) VALUES (?, ?, 'pending', ?, ?)",
                (msg_id, sender, now.timestamp(), iso(now)),
            )

    def due(self, now: float, limit: int, *, busy: Collection[str] = ()) -> list[AttachmentFetch]:
        """The first fetch due of each sender not ``busy``, up to ``limit`` senders: one sender's
        many queued messages never keep another sender's out of the window."""
        rows = self._db.execute(
            "SELECT msg_id, sender, attempts, missing_since, missing_count FROM ("
            " SELECT msg_id, sender, attempts, missing_since, missing_count, next_attempt_at,"
            " ROW_NUMBER() OVER"
            "  (PARTITION BY sender ORDER BY next_attempt_at, rowid) AS n"
            " FROM attachment_fetches WHERE state = 'pending' AND next_attempt_at <= ?"
            " AND sender NOT IN (SELECT value FROM json_each(?))"
            ") WHERE n = 1 ORDER BY next_attempt_at LIMIT ?",
            (now, json.dumps(sorted(busy)), limit),
        ).fetchall()
        return [AttachmentFetch(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def retry(
        self, msg_id: str, at: float, detail: str, *, missing_at: float | None = None
    ) -> None:
        """Try again at ``at``. ``missing_at``: the hub said a segment is not there (the count
        of such answers in a row goes up, and the first one's time is kept); any other failure
        starts that count again. A fetch no longer pending is left as it is."""
        with self._tx() as db:
            db.execute(
                "UPDATE attachment_fetches SET attempts = attempts + 1, next_attempt_at = ?, "
                "detail = ?, "
                "missing_since = CASE WHEN ? IS NULL THEN NULL "
                "ELSE COALESCE(missing_since, ?) END, "
                "missing_count = CASE WHEN ? IS NULL THEN 0 ELSE missing_count + 1 END "
                "WHERE msg_id = ? AND state = 'pending'",
                (at, detail, missing_at, missing_at, missing_at, msg_id),
            )

    def settle(
        self, msg_id: str, *, now: datetime, reason: str | None = None, detail: str | None = None
    ) -> None:
        """Fetched (no ``reason``) or refused with ``reason``."""
        state = "fetched" if reason is None else "refused"
        with self._tx() as db:
            db.execute(
                "UPDATE attachment_fetches SET state = ?, reason = ?, detail = ?, at = ? "
                "WHERE msg_id = ?",
                (state, reason, detail, iso(now), msg_id),
            )

    def asked(self, msg_id: str) -> tuple[int, float | None]:
        """How often ``msg_id``'s attachments were asked for without success, and since when
        (Unix seconds) the hub has said a segment is not there."""
        row = self._db.execute(
            "SELECT attempts, missing_since FROM attachment_fetches WHERE msg_id = ?", (msg_id,)
        ).fetchone()
        return (0, None) if row is None else (int(row[0]), row[1])

    def status(self, msg_id: str) -> tuple[str, str | None, str | None] | None:
        """(state, reason, detail) of ``msg_id``'s attachments; None if it has none to fetch."""
        row = self._db.execute(
            "SELECT state, reason, detail FROM attachment_fetches WHERE msg_id = ?", (msg_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])


@dataclass(frozen=True)
class AttachmentPurge:
    """A recipient's objects to drop from this node's attachment stream at the hub."""

    msg_id: str
    recipient: str
    objects: tuple[str, ...]
    attempts: int


class SentAttachments(Repository):
    """The objects each message this node sent names, in its manifests' order: what the
    recipients' receipts must name, and what to purge at the hub once they do."""

    def record(self, msg_id: str, objects: tuple[str, ...], size: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO sent_attachments (msg_id, objects, bytes) VALUES (?, ?, ?)",
                (msg_id, json.dumps(list(objects)), size),
            )

    def unconfirmed_bytes(self, recipient: str, since: datetime | None) -> int:
        """What the hub still holds for ``recipient`` of the messages sent it since ``since``
        (its stream's retention; None: a stream that keeps them until purged): the objects of
        those it neither confirmed nor refused."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(s.bytes), 0) FROM sent_attachments s JOIN messages m "
            "USING (msg_id) WHERE m.direction = 'out' AND m.stored_at >= ? "
            "AND EXISTS (SELECT 1 FROM json_each(m.recipients) WHERE value = ?) "
            "AND NOT EXISTS (SELECT 1 FROM attachment_purges p "
            "WHERE p.msg_id = s.msg_id AND p.recipient = ?)",
            ("" if since is None else iso(since), recipient, recipient),
        ).fetchone()
        return int(row[0])

    def objects(self, msg_id: str) -> tuple[str, ...]:
        row = self._db.execute(
            "SELECT objects FROM sent_attachments WHERE msg_id = ?", (msg_id,)
        ).fetchone()
        return () if row is None else tuple(json.loads(row[0]))


class AttachmentPurges(Repository):
    """Recipients whose objects are to be purged from this node's stream at the hub."""

    #: purges queued by this process so far, as ``AttachmentFetches.queued``
    queued = 0

    def add(self, msg_id: str, recipient: str, *, now: datetime) -> None:
        """Queue the purge of what ``msg_id`` stored for ``recipient`` (once)."""
        self.queued += 1
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO attachment_purges (msg_id, recipient, state,"
                " next_attempt_at, at) VALUES (?, ?, 'pending', ?, ?)",
                (msg_id, recipient, now.timestamp(), iso(now)),
            )

    def due(self, now: float, limit: int) -> list[AttachmentPurge]:
        rows = self._db.execute(
            "SELECT p.msg_id, p.recipient, s.objects, p.attempts FROM attachment_purges p "
            "JOIN sent_attachments s USING (msg_id) WHERE p.state = 'pending' "
            "AND p.next_attempt_at <= ? ORDER BY p.next_attempt_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [AttachmentPurge(r[0], r[1], tuple(json.loads(r[2])), r[3]) for r in rows]

    def retry(self, msg_id: str, recipient: str, at: float, detail: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE attachment_purges SET attempts = attempts + 1, next_attempt_at = ?, "
                "detail = ? WHERE msg_id = ? AND recipient = ?",
                (at, detail, msg_id, recipient),
            )

    def settle(self, msg_id: str, recipient: str, *, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE attachment_purges SET state = 'purged', detail = NULL, at = ? "
                "WHERE msg_id = ? AND recipient = ?",
                (iso(now), msg_id, recipient),
            )

    def state(self, msg_id: str, recipient: str) -> str | None:
        """'pending' or 'purged'; None if no purge was queued (no receipt yet, or a receipt
        that did not name the objects sent)."""
        row = self._db.execute(
            "SELECT state FROM attachment_purges WHERE msg_id = ? AND recipient = ?",
            (msg_id, recipient),
        ).fetchone()
        return None if row is None else str(row[0])

"""Questions to the audit service on ``audit.query.<party>``, typed at the edge.

Every request is parsed into its pydantic model (``schemas/audit.py``); a body that is not JSON,
not an object, or fails its model gets an ``ErrorReply`` with a reason code, never silence. A
party sees the records of its own messages only (``SEC``, the secretariat, sees all metadata);
its alarms are limited in size (the model) and in rate (per party, counted in SQL).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.audit import (
    AlarmQuery,
    AuditQuery,
    AuditReply,
    CheckpointQuery,
    CheckpointReply,
    ConsistencyQuery,
    ConsistencyReply,
    CosignQuery,
    ErrorReply,
    OkReply,
    QueryError,
    RecordsQuery,
    RecordsReply,
    TrailQuery,
    TrailReply,
)
from schemas.base import SECRETARIAT
from services.audit.log import AuditLog
from services.core.checkpoint import NoteError, parse_checkpoint, signed_by
from services.core.envelope import KeyLookup
from services.core.logs import get_logger

log = get_logger("cifta.audit")


_QUERY: TypeAdapter[AuditQuery] = TypeAdapter(AuditQuery)
_OPS = ("checkpoint", "consistency", "trail", "records", "cosign", "alarm")
_TRAIL_ERRORS = {
    "no such message": QueryError.NO_SUCH_MESSAGE,
    "not a message of yours": QueryError.NOT_YOURS,
    "no checkpoint yet": QueryError.NO_CHECKPOINT,
}


@dataclass(frozen=True)
class AlarmLimits:
    """How many alarms one party may raise: a witness needs a few, a flood is refused."""

    per_minute: int = 5
    per_day: int = 100


class Refusal(Exception):
    def __init__(self, code: QueryError, text: str) -> None:
        super().__init__(text)
        self.code = code


def parse_query(body: bytes) -> AuditQuery:
    """The request ``body`` as its model, or a ``Refusal`` saying what is wrong with it."""
    try:
        raw = json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        raise Refusal(QueryError.NOT_JSON, "the request is not JSON") from None
    if not isinstance(raw, dict):
        raise Refusal(QueryError.NOT_AN_OBJECT, "the request is not a JSON object") from None
    if raw.get("op") not in _OPS:
        raise Refusal(QueryError.UNKNOWN_OP, f"unknown op; expected one of {', '.join(_OPS)}")
    try:
        return _QUERY.validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"][1:])  # past the union's tag
        raise Refusal(QueryError.INVALID_REQUEST, f"{where}: {err['msg']}"[:300]) from None


class Questions:
    """Answers one party's question from the log."""

    def __init__(
        self,
        log_: AuditLog,
        directory: Callable[[], KeyLookup],
        checkpoint_now: Callable[[], object],
        limits: AlarmLimits = AlarmLimits(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.log = log_
        self.directory = directory
        self.checkpoint_now = checkpoint_now  # signs one now (a trail is proven against it)
        self.limits = limits
        self.clock = clock

    def reply(self, asker: str, body: bytes) -> bytes:
        """The reply's bytes, for any body whatever."""
        try:
            answer: AuditReply = self.answer(asker, parse_query(body))
        except Refusal as refusal:
            answer = ErrorReply(code=refusal.code, error=str(refusal))
        except sqlite3.Error as exc:  # the store failing: an answer all the same
            log.error("audit_query_failed", error=type(exc).__name__)
            answer = ErrorReply(code=QueryError.UNAVAILABLE, error="the audit log is unavailable")
        return answer.model_dump_json(exclude_none=True).encode()

    def answer(self, asker: str, q: AuditQuery) -> AuditReply:
        match q:
            case CheckpointQuery():
                latest = self.log.latest_checkpoint()
                return CheckpointReply(note=None if latest is None else latest.note)
            case ConsistencyQuery(old=old, new=new):
                if not 0 < old <= new <= self.log.size:
                    raise Refusal(QueryError.BAD_RANGE, f"no proof from {old} to {new}")
                path = self.log.tree.consistency_proof(old, new)
                return ConsistencyReply(path=[h.hex() for h in path])
            case TrailQuery(msg_id=msg_id):
                return self._trail(asker, msg_id)
            case RecordsQuery(after=after, limit=limit):
                party = None if asker == SECRETARIAT else asker
                page = self.log.events(party, after=after, limit=limit + 1)
                more = len(page) > limit
                page = page[:limit]
                return RecordsReply(
                    events=[e for _, e in page], next_after=page[-1][0] if more else None
                )
            case CosignQuery(note=note):
                return self._cosign(asker, note)
            case AlarmQuery(detail=detail):
                return self._alarm(asker, detail)
        raise Refusal(QueryError.UNKNOWN_OP, "unknown op")  # pragma: no cover (the union)

    def _trail(self, asker: str, msg_id: str) -> AuditReply:
        events = self.log.leaves_of(msg_id)
        latest = self.log.latest_checkpoint()
        if events and (latest is None or latest.size <= max(i for i, _ in events)):
            self.checkpoint_now()  # a trail is proven against a checkpoint that covers all of it
        answer: dict[str, Any] = self.log.trail(msg_id, None if asker == SECRETARIAT else asker)
        if "error" in answer:
            raise Refusal(_TRAIL_ERRORS[answer["error"]], answer["error"])
        return TrailReply.model_validate(answer)

    def _cosign(self, witness: str, note: str) -> AuditReply:
        try:
            cp = parse_checkpoint(note)
        except NoteError:
            raise Refusal(QueryError.NOT_A_CHECKPOINT, "not a checkpoint") from None
        directory = self.directory()
        kid_lookup = getattr(directory, "active_signing_kid", None)
        kid = kid_lookup(witness) if kid_lookup else None
        record = directory.signing_key(witness, kid) if kid else None
        name = f"witness/{witness}"
        if record is None or not signed_by(note, name, record.key.ed25519):
            raise Refusal(QueryError.BAD_COSIGNATURE, "not cosigned by the witness's key")
        if cp.size > self.log.size or self.log.tree.root(cp.size) != cp.root:
            raise Refusal(QueryError.FOREIGN_ROOT, "the cosigned root is not this log's")
        self.log.add_cosignature(cp.size, name, note)
        log.info("checkpoint_cosigned", witness=witness, size=cp.size)
        return OkReply()

    def _alarm(self, witness: str, detail: str) -> AuditReply:
        now = self.clock()
        recent = self.log.alarms_since(witness, now - timedelta(minutes=1))
        today = self.log.alarms_since(witness, now - timedelta(days=1))
        if recent >= self.limits.per_minute or today >= self.limits.per_day:
            raise Refusal(
                QueryError.RATE_LIMITED,
                f"at most {self.limits.per_minute} alarms a minute and {self.limits.per_day}"
                " a day per party",
            )
        self.log.add_alarm(witness, detail, now)
        log.error("witness_alarm", witness=witness, detail=detail)
        return OkReply()

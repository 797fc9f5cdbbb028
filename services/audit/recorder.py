"""What one AUDIT stream record becomes: a leaf, a counted refusal, or a parked record.

The recorder never asks the hub for a record again: a record that cannot be resolved yet is
parked (``services/audit/parking.py``) against its party's budget and retried when what it waits
for arrives (the envelope is recorded, the directory changes) or on a bounded schedule. A record
given up is recorded as what it is: an ``unmatched`` leaf (an event naming an envelope the log
never saw, within the party's rate) and, always, a count in the party's alarm row.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas import ReasonCode
from schemas.audit import AuditEvent, EventType, UnreadableEnvelope
from services.audit.log import AuditLog
from services.audit.parking import Budget, Parked, Parking
from services.core import subjects
from services.core.envelope import (
    EnvelopeError,
    KeyLookup,
    ProtectedHeader,
    sender_key_id,
    verify_sender,
)
from services.core.events import EventError, digest, make_event, open_event

#: Events a node files about no stored envelope: a refusal of one that never verified, and a
#: blind lookup's evaluation (docs/lookup.md), which has none.
_WITHOUT_ENVELOPE = (EventType.REJECTED, EventType.QUARANTINED, EventType.LOOKUP_EVALUATED)


class NotYet(Exception):
    """A record whose context (its signer's key, its stored envelope) is not there yet."""

    def __init__(self, party: str, waits_for: str, what: str) -> None:
        super().__init__(what)
        self.party, self.waits_for, self.what = party, waits_for, what


class Refused(Exception):
    """A record that will never make a leaf: counted against ``party`` as ``what``."""

    def __init__(self, party: str, what: str) -> None:
        super().__init__(what)
        self.party, self.what = party, what


@dataclass(frozen=True)
class Recorded:
    new: bool  # a leaf was appended (False: it was there already)
    stored_sha: str | None  # the envelope a new ``stored`` leaf recorded, for what waits on it


class _Bucket:
    """A token bucket: ``rate`` per minute, as a burst of at most ``rate``."""

    def __init__(self, rate: int, now: float) -> None:
        self.rate, self.tokens, self.at = rate, float(rate), now

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate / 60.0)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


#: How many verified envelopes the recorder remembers (a header and a signature each): the copies
#: of one message to many states arrive close together, through its sender's one consumer.
VERIFIED_KEPT = 1024


class Recorder:
    """Turns stream records into leaves, parking what must wait; ``tally`` counts outcomes
    for the service's periodic summary (a line per interval, never one per record)."""

    def __init__(
        self,
        log: AuditLog,
        directory: Callable[[], KeyLookup],
        budget: Budget,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log = log
        self.directory = directory
        self.parking = Parking(log.db, budget)
        self.clock = clock
        self.tally: Counter[str] = Counter()
        self._buckets: dict[str, _Bucket] = {}
        self._directory_seen: object = None
        #: envelopes verified lately, by SHA-256: (header, Ed25519 signature, the key's kid)
        self._seen: OrderedDict[str, tuple[ProtectedHeader, bytes, str]] = OrderedDict()

    # -- one record from the stream ------------------------------------------------------------

    def take(self, subject: str, data: bytes, stored_at: datetime, stream_seq: int) -> int:
        """Record, refuse or park one stream record, in one transaction (the caller acknowledges
        it afterwards); the number of leaves appended, with any parked records it released."""
        now = self.clock()
        with self.log.batch():
            try:
                result = self.resolve(subject, data, stored_at)
            except NotYet as wait:
                self.tally["parked"] += 1
                fits, evicted = self.parking.park(
                    wait.party, wait.waits_for, wait.what, subject, data, stored_at,
                    stream_seq, now,
                )  # fmt: skip
                for old in evicted:  # the party's budget is full: its oldest are given up
                    self.tally["over_budget"] += 1
                    self._give_up(old.party, old.what, old.subject, old.data, old.stored_at,
                                  old.stream_seq)  # fmt: skip
                if not fits:  # larger than the whole budget
                    self.tally["over_budget"] += 1
                    self._give_up(wait.party, wait.what, subject, data, stored_at, stream_seq)
                return 0
            except Refused as refused:
                self._refused(refused, stream_seq)
                return 0
        self.tally["recorded" if result.new else "duplicate"] += 1
        return int(result.new) + self._released_by(result.stored_sha)

    def resolve(self, subject: str, data: bytes, stored_at: datetime) -> Recorded:
        """Append the leaf one stream record stands for, or say why not (``NotYet``,
        ``Refused``)."""
        inbox = subjects.parse_inbox(subject)
        if inbox is not None:
            return self._stored(inbox[0], inbox[1], data, stored_at)
        parts = subject.split(".")
        if parts[:2] == ["audit", "events"] and len(parts) >= 4:
            return self._filed(parts[2], data, stored_at)
        raise Refused("?", "unknown_subject")

    def _verified(
        self, data: bytes, sha: str, stored_at: datetime
    ) -> tuple[ProtectedHeader, bytes]:
        """``verify_sender``, once per envelope: a message to k states reaches the AUDIT stream
        once per recipient inbox. Checks 1 and 3 depend on the bytes and the key alone, so a copy
        seen before under the same key skips them; check 2 (the key valid, not revoked, as the
        directory says now and as of this copy's storage) runs for every copy."""
        directory = self.directory()
        seen = self._seen.get(sha)
        if seen is not None:
            header, signature, kid = seen
            if sender_key_id(header, directory=directory, stored_at=stored_at) == kid:
                self._seen.move_to_end(sha)
                return header, signature
        header, signature = verify_sender(data, directory=directory, stored_at=stored_at)
        kid = sender_key_id(header, directory=directory, stored_at=stored_at)
        self._seen[sha] = (header, signature, kid)
        if len(self._seen) > VERIFIED_KEPT:
            self._seen.popitem(last=False)
        return header, signature

    def _stored(self, recipient: str, publisher: str, data: bytes, stored_at: datetime) -> Recorded:
        sha = digest(data)
        try:
            header, signature = self._verified(data, sha, stored_at)
        except EnvelopeError as exc:
            if exc.reason is ReasonCode.UNKNOWN_SENDER_KEY and exc.header is not None:
                kid = f"key/{exc.header.sender}/{exc.header.sender_kid}"
                raise NotYet(publisher, kid, "unknown_sender_key") from None
            # The recipient's node refuses it and files a `rejected` (or `unreadable`) event.
            raise Refused(publisher, f"envelope_{exc.reason.value}") from None
        if header.sender != publisher or recipient not in header.recipients:
            # relayed by another state, or dropped into an inbox it does not address: the
            # recipient's node refuses it (sender_mismatch, not_a_recipient) and says so
            raise Refused(publisher, "envelope_misplaced")
        event = make_event(
            EventType.STORED, header, actor=recipient, envelope_sha256=sha,
            signature_sha256=digest(signature), at=stored_at,
        )  # fmt: skip
        _, new = self.log.append(event, identity=f"stored/{recipient}/{sha}")
        return Recorded(new, sha if new else None)

    def _filed(self, actor: str, data: bytes, stored_at: datetime) -> Recorded:
        try:
            event = open_event(data, actor, self.directory(), stored_at)
        except EventError as exc:
            if exc.reason is ReasonCode.UNKNOWN_SENDER_KEY:
                raise NotYet(actor, f"key/{exc}", "unknown_event_key") from None
            raise Refused(actor, f"event_{exc.reason.value}") from None
        if isinstance(event, UnreadableEnvelope):  # no message to match: the reporter's record
            return Recorded(self.log.append(event, identity=f"{actor}/{event.event_id}")[1], None)
        stored = self.log.stored_leaf(event.envelope_sha256)
        if stored is not None:
            # The message's metadata is what its signed envelope said when stored, not what
            # the event claims; and only its sender or a recipient reports on it.
            if actor not in {stored.sender, *stored.recipients}:
                raise Refused(actor, "event_not_a_party")
            if (event.msg_id, event.sender, event.recipients) != (
                stored.msg_id,
                stored.sender,
                stored.recipients,
            ):
                raise Refused(actor, "event_metadata_differs")
            return Recorded(self.log.append(event, identity=f"{actor}/{event.event_id}")[1], None)
        if event.event in _WITHOUT_ENVELOPE:
            # An envelope that never verified, or a blind lookup's evaluation (which has none,
            # docs/lookup.md): recorded as the actor reports it, and filed under the actor alone
            # (its claims about others prove nothing).
            _, new = self.log.append(
                event, identity=f"{actor}/{event.event_id}", parties=(actor, [actor])
            )
            return Recorded(new, None)
        raise NotYet(actor, f"envelope/{event.envelope_sha256}", "unmatched_event")

    # -- giving up -----------------------------------------------------------------------------

    def _refused(self, refused: Refused, stream_seq: int) -> None:
        self.tally[refused.what] += 1
        self.parking.note_alarm(refused.party, refused.what, stream_seq, self._now())

    def _give_up(
        self, party: str, what: str, subject: str, data: bytes, stored_at: datetime, seq: int
    ) -> None:
        """Record a record that waited its budget out as what it is."""
        self.tally["given_up"] += 1
        self.parking.note_alarm(party, what, seq, self._now())
        if what != "unmatched_event":
            return  # an unknown key: the recipient's node refuses the envelope and says so
        bucket = self._buckets.setdefault(
            party, _Bucket(self.parking.budget.unmatched_per_minute, self.clock())
        )
        if not bucket.take(self.clock()):
            self.tally["unmatched_over_rate"] += 1
            return  # counted in the alarm row; the record stays in the AUDIT stream
        event = open_event(data, party, self.directory(), stored_at)
        assert isinstance(event, AuditEvent)  # only message events wait for an envelope
        unmatched = AuditEvent.model_validate(
            {**event.model_dump(), "event": EventType.UNMATCHED, "claimed": event.event,
             "reason": None}
        )  # fmt: skip
        self.log.append(
            unmatched, identity=f"unmatched/{party}/{event.event_id}", parties=(party, [party])
        )
        self.tally["unmatched"] += 1

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- retries ---------------------------------------------------------------------------------

    def tick(self, limit: int = 256) -> int:
        """The scheduled round: parked records due for a try, and every record waiting for a
        key when the directory changed; the number of leaves appended."""
        now = self.clock()
        directory = self.directory()
        batch = self.parking.due(now, limit)
        if directory is not self._directory_seen:
            self._directory_seen = directory
            batch += self.parking.waiting_for_keys()
        return self._retry(list({p.id: p for p in batch}.values()))

    def _released_by(self, stored_sha: str | None) -> int:
        if stored_sha is None:
            return 0
        return self._retry(self.parking.waiting_for(f"envelope/{stored_sha}"))

    def _retry(self, batch: list[Parked]) -> int:
        new, work = 0, list(batch)
        while work:
            p = work.pop()
            released = self._retry_one(p)
            if released is not None:
                new += int(released.new)
                if released.stored_sha is not None:  # what waited on this envelope, now
                    work += self.parking.waiting_for(f"envelope/{released.stored_sha}")
        return new

    def _retry_one(self, p: Parked) -> Recorded | None:
        now = self.clock()
        with self.log.batch():
            try:
                if not self._may_resolve(p):
                    raise NotYet(p.party, p.waits_for, p.what)
                result = self.resolve(p.subject, p.data, p.stored_at)
            except NotYet:
                if self.parking.expired(p, now):
                    self.parking.release(p)
                    self._give_up(p.party, p.what, p.subject, p.data, p.stored_at, p.stream_seq)
                else:
                    self.parking.postpone(p, now)
                return None
            except Refused as refused:
                self.parking.release(p)
                self._refused(refused, p.stream_seq)
                return None
            self.parking.release(p)
        self.tally["released"] += 1
        return result

    def _may_resolve(self, p: Parked) -> bool:
        """Whether what ``p`` waits for is there now (one index lookup, no signature check)."""
        kind, _, rest = p.waits_for.partition("/")
        if kind == "envelope":
            return self.log.stored_leaf(rest) is not None
        party, _, kid = rest.partition("/")
        return self.directory().signing_key(party, kid) is not None

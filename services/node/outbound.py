"""Sending: compose and seal a message into the outbox with its procedure's state and audit
events, in one transaction; answer a stored message; act on the procedures' deadlines."""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Unpack

from schemas import Body, HandlingCode
from schemas.audit import EventType
from schemas.protocol import PROTOCOL_FAMILY
from services.core.attachments import ciphertext_size
from services.core.directory import Directory, DirectoryError
from services.core.envelope import (
    OpenedEnvelope,
    ProtectedHeader,
    SealOptions,
    peek_header,
    seal_message,
)
from services.core.events import make_event, sign_event, signature_digest
from services.core.keys import NodeKeys
from services.core.logs import get_logger
from services.node.casework import Casework, Effects, IllegalTransition
from services.node.store import (
    Outgoing,
    Store,
    iso,
    pack_copy,
)
from services.node.workflows import confidentiality as art12

log = get_logger("cifta.node")


class ComposeError(Exception):
    """A message could not be composed: unknown recipient, sending to oneself, bad options, a
    step its procedure does not allow."""


class Article12Refusal(ComposeError):
    """Article XII forbids this forwarding or export for now; the message says what lifts it."""

    def __init__(self, refused: art12.Refused) -> None:
        super().__init__(f"Art. XII {refused.rule}: {refused.remedy} {dict(refused.params)}")
        self.refused = refused


class StepRefused(ComposeError):
    """The message's procedure does not allow this step now: ``refusal`` says why, as a code."""

    def __init__(self, kind: str, refusal: IllegalTransition) -> None:
        super().__init__(f"{kind}: {refusal}")
        self.kind, self.refusal = kind, refusal


@dataclass(frozen=True)
class ClockProblem:
    """This node's clock as last measured against the hub's, further off than the tolerance:
    ``offset_s`` (positive: ahead), when it was measured, the tolerance."""

    offset_s: float
    measured_at: datetime
    tolerance_s: float

    def __str__(self) -> str:
        side = "ahead of" if self.offset_s > 0 else "behind"
        return (
            f"this node's clock is {abs(self.offset_s):.0f} s {side} the hub's (measured "
            f"{iso(self.measured_at)}; tolerance {self.tolerance_s:.0f} s): set it right (NTP) "
            "before sending, other states would refuse what it dates"
        )


class ClockError(ComposeError):
    """This node's clock is too far from the hub's to date a message others will accept."""

    def __init__(self, problem: ClockProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


CLOCK_STATE = "clock_offset"
#: A measurement of the clock older than this says nothing of the clock now.
CLOCK_MEASUREMENT_TTL = timedelta(hours=24)


class Outbound:
    """The sending half of :class:`services.node.core.NodeCore`."""

    party: str
    keys: NodeKeys
    directory: Directory
    store: Store
    clock: Callable[[], datetime]
    casework: Casework
    clock_tolerance_s: float

    def compose(
        self,
        body: Body,
        to: Sequence[str],
        *,
        handling: HandlingCode,
        confidential: bool = False,
        handling_note: str | None = None,
        case_id: str | None = None,
        in_reply_to: str | None = None,
        expires_at: datetime | None = None,
        created_at: datetime | None = None,
    ) -> ProtectedHeader:
        """Seal ``body`` for ``to`` and queue it in the outbox; return its header. The header is
        dated ``created_at`` (by default, now): a body that states times computed from its own
        creation (a tracing request's due date) is sealed at that very instant."""
        if body.KIND.startswith(PROTOCOL_FAMILY):
            raise ComposeError("receipts and rejections are sent by the node itself")
        return self._queue(
            body,
            to,
            handling=handling,
            confidential=confidential,
            handling_note=handling_note,
            case_id=case_id,
            in_reply_to=in_reply_to,
            expires_at=expires_at,
            now=created_at,
        )

    def _seal(
        self, body: Body, to: Sequence[str], *, keep_copy: bool, **options: Unpack[SealOptions]
    ) -> Outgoing:
        """The envelope for ``to`` and, with ``keep_copy``, our own copy of its content key.

        Officers' messages keep the copy so that the sender can read what it sent; the node's
        receipts and rejections do not need one (what they say is in the store already).
        """
        recipients = list(dict.fromkeys(to))
        if not recipients:
            raise ComposeError("no recipient")
        if self.party in recipients:
            raise ComposeError("a node does not send to itself")
        now = options["now"] = options.get("now") or self.clock()
        try:
            keys = [self.directory.encryption_key(r, now) for r in recipients]
        except DirectoryError as exc:
            raise ComposeError(str(exc)) from None
        try:
            sealed = seal_message(
                body, sender=self.keys, recipients=keys, keep_sender_copy=keep_copy, **options
            )
        except ValueError as exc:
            raise ComposeError(str(exc)) from None
        copy = None if sealed.sender_copy is None else pack_copy(*sealed.sender_copy)
        sha = hashlib.sha256(sealed.envelope).hexdigest()
        objects = tuple(m.ciphertext_sha256 for m in body.attachments)
        stored = sum(ciphertext_size(m.size) for m in body.attachments)
        return Outgoing(sealed.header, sealed.envelope, sha, copy, objects, stored)

    def event(
        self,
        kind: EventType,
        header: ProtectedHeader,
        envelope: bytes,
        *,
        officer: str | None = None,
        reason: str | None = None,
        opened: OpenedEnvelope | None = None,
        attachment_sha256: str | None = None,
    ) -> tuple[str, bytes]:
        """A signed audit event about one message, ready for the audit outbox (its digests from
        ``opened`` when the envelope was just opened, else computed from ``envelope``)."""
        if opened is not None:
            digests = opened.envelope_hash, opened.signature_sha256
        else:
            digests = hashlib.sha256(envelope).hexdigest(), signature_digest(envelope)
        ev = make_event(
            kind, header, actor=self.party, envelope_sha256=digests[0],
            signature_sha256=digests[1], at=self.clock(), officer=officer, reason=reason,
            attachment_sha256=attachment_sha256,
        )  # fmt: skip
        return ev.event_id, sign_event(ev, self.keys.signing)

    def _queue(
        self,
        body: Body,
        to: Sequence[str],
        events: Sequence[tuple[str, bytes]] = (),
        **options: Unpack[SealOptions],
    ) -> ProtectedHeader:
        problem = self.clock_problem()
        if problem is not None:
            raise ClockError(problem)
        with self.store.transaction():  # the message, its procedure's state, what follows
            out = self._seal(body, to, keep_copy=True, **options)
            header, envelope = out.header, out.envelope
            try:
                effects = self.casework.sent(header, body)
            except IllegalTransition as exc:
                raise StepRefused(header.kind, exc) from None
            events = [*events, *self._noted(effects)]
            self.store.add_outgoing(out, now=self.clock(), events=events)
            self._carry_out(effects)
            # logged once committed: a preview (dry run) is rolled back and queues nothing
            self.store.after_commit(
                lambda: log.info(
                    "message_queued",
                    msg_id=header.msg_id,
                    kind=header.kind,
                    recipients=header.recipients,
                    handling=header.handling.value,
                    confidential=header.confidential,
                    bytes=len(envelope),
                )
            )
        return header

    def record_sent(self, header: ProtectedHeader, officer: str) -> None:
        """Record in the audit log that ``officer`` sent the queued message ``header`` names
        (the node's own follow-ups and receipts have no officer and no such event)."""
        stored = self.store.message(header.msg_id)
        assert stored is not None, "a queued message keeps its copy"
        event = self.event(EventType.SENT, header, stored.envelope, officer=officer)
        self.store.add_events([event])

    def clock_problem(self) -> ClockProblem | None:
        """Why this node must not date messages now: its clock, as last measured against the
        hub's by the running node, is further off than the tolerance (None: it is not)."""
        measured = self.store.state(CLOCK_STATE)
        if measured is None:
            return None
        value, at = measured
        offset = float(value["offset_s"])
        if abs(offset) <= self.clock_tolerance_s or self.clock() - at > CLOCK_MEASUREMENT_TTL:
            return None
        return ClockProblem(offset, at, self.clock_tolerance_s)

    def reply(
        self,
        msg_id: str,
        body: Body,
        *,
        to_all: bool = False,
        handling: HandlingCode | None = None,
        confidential: bool | None = None,
        handling_note: str | None = None,
    ) -> ProtectedHeader:
        """Answer a stored message in its case: to its sender (and its other recipients with
        ``to_all``), with its handling code and confidentiality unless told otherwise."""
        original = self.store.message(msg_id)
        if original is None:
            raise ComposeError(f"no message {msg_id}")
        if original.direction == "in":
            to = [original.sender] + (original.recipients if to_all else [])
        else:
            to = list(original.recipients)
        to = [p for p in dict.fromkeys(to) if p != self.party]
        answered = peek_header(original.envelope)
        if handling is None:  # the answer keeps the restrictions of what it answers
            handling = HandlingCode(original.handling)
            handling_note = handling_note or answered.handling_note
        if body.KIND.startswith(PROTOCOL_FAMILY):
            raise ComposeError("receipts and rejections are sent by the node itself")
        replied = self.event(EventType.REPLIED, answered, original.envelope)
        return self._queue(
            body,
            to,
            events=[replied],
            handling=handling,
            confidential=original.confidential if confidential is None else confidential,
            handling_note=handling_note,
            case_id=original.case_id,
            in_reply_to=original.msg_id,
        )

    # -- the Convention's procedures --------------------------------------------------------------

    def _noted(self, effects: Effects) -> list[tuple[str, bytes]]:
        """The audit events of Art. XII steps, each about the message it concerns."""
        out = []
        for n in effects.noted:
            subject = self.store.message(n.subject_msg_id)
            if subject is not None:
                out.append(self.event(n.event, peek_header(subject.envelope), subject.envelope))
        return out

    def _carry_out(self, effects: Effects) -> None:
        """Send what a procedure asks to send, and raise its alerts (inside the caller's
        transaction)."""
        for alert in effects.alerts:
            self.store.record_alert("casework", alert, self.clock())
            log.warning("casework_alert", detail=alert)
        for f in effects.follow_ups:
            self._queue(
                f.body, f.to, handling=f.handling, confidential=f.confidential,
                case_id=f.case_id, in_reply_to=f.in_reply_to,
            )  # fmt: skip

    def tick(self) -> int:
        """Act on the deadlines that fell due (reminders, overdue notices, overdue receipts);
        returns how many messages it queued. One transaction per case: a case whose message
        cannot be sent (a party gone from the directory) does not hold up the others."""
        queued = 0
        for family, key in self.casework.watched():
            try:
                with self.store.transaction():
                    effects = self.casework.tick(family, key, self.clock())
                    self._carry_out(effects)
            except (ComposeError, IllegalTransition) as exc:
                log.error("deadline_not_acted_on", family=family, case=key, error=str(exc))
                continue
            queued += len(effects.follow_ups)
        return queued

"""The answering side of blind record lookup (docs/lookup.md, sections 5 to 7).

The node answers ``lookup.eval.<party>.<asker>``: the asker's code comes from the subject, which
the broker's per-state service imports make a fact (services/hub/lookup.py). Each evaluation is
counted against the asker's budget, recorded in the register's counters, and filed as a signed
audit event (``lookup_evaluated``, or ``rejected`` with ``lookup_over_budget``) naming who asked
and when, never what: the request holds a blinded element and nothing else.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from faststream.nats import NatsBroker, NatsMessage
from pydantic import ValidationError

from schemas import HandlingCode, ReasonCode
from schemas.audit import AuditEvent, EventType
from schemas.lookup import EvaluationReply, EvaluationRequest
from services.core import subjects
from services.core.encoding import b64u, unb64u, uuid7
from services.core.events import sign_event
from services.core.keys import NodeKeys
from services.core.logs import get_logger
from services.core.oprf import LookupCryptoError
from services.node.records import Register

log = get_logger("cifta.lookup")

#: A request is a short JSON object; anything longer is refused unread.
MAX_REQUEST_BYTES = 512
LOOKUP_KIND = "lookup.evaluation"


@dataclass(frozen=True)
class Budget:
    """Evaluations one asking state may have within a sliding window."""

    evaluations: int = 500
    window_s: float = 24 * 3600.0


class LookupResponder:
    """Answers evaluation requests; pure but for the register and the event queue it is given."""

    def __init__(
        self,
        party: str,
        keys: Callable[[], NodeKeys],
        register: Register,
        file_events: Callable[[list[tuple[str, bytes]]], None],
        clock: Callable[[], datetime],
        budget: Budget = Budget(),
    ) -> None:
        self.party = party
        self._keys = keys
        self._register = register
        self._file_events = file_events
        self._clock = clock
        self.budget = budget

    def answer(self, asker: str, payload: bytes) -> bytes:
        """The reply to ``asker``'s request ``payload``: an evaluation or a refusal."""
        now = self._clock()
        if len(payload) > MAX_REQUEST_BYTES:
            return self._refuse(asker, None, ReasonCode.LOOKUP_MALFORMED, now, payload)
        try:
            request = EvaluationRequest.model_validate_json(payload)
        except ValidationError:
            return self._refuse(asker, None, ReasonCode.LOOKUP_MALFORMED, now, payload)
        keys = self._keys().lookup
        if keys is None:
            return self._refuse(asker, request.request_id, ReasonCode.LOOKUP_UNAVAILABLE, now, b"")
        t = now.timestamp()
        since = t - self.budget.window_s
        if self._register.evaluations_since(asker, since) >= self.budget.evaluations:
            oldest = self._register.oldest_evaluation_since(asker, since) or t
            retry = max(1, math.ceil(oldest + self.budget.window_s - t))
            return self._refuse(
                asker, request.request_id, ReasonCode.LOOKUP_OVER_BUDGET, now, payload, retry
            )
        try:
            evaluated, proof = keys.evaluate(unb64u(request.blinded))
        except (LookupCryptoError, ValueError):
            return self._refuse(
                asker, request.request_id, ReasonCode.LOOKUP_MALFORMED, now, payload
            )
        self._register.record_evaluation(asker, t, "evaluated")
        self._file(EventType.LOOKUP_EVALUATED, asker, now, payload, None)
        log.info("lookup_evaluated", asker=asker)
        reply = EvaluationReply(
            request_id=request.request_id,
            oprf_kid=keys.public().kid,
            evaluated=b64u(evaluated),
            proof=b64u(proof),
        )
        return reply.model_dump_json(exclude_none=True).encode()

    def _refuse(
        self,
        asker: str,
        request_id: str | None,
        reason: ReasonCode,
        now: datetime,
        payload: bytes,
        retry_after_s: int | None = None,
    ) -> bytes:
        t = now.timestamp()
        # Every refusal is counted; the first ones of each window are also filed in the audit log,
        # and no more than the budget's worth, so a flood cannot flood the log in turn.
        filed = self._register.refusals_since(asker, t - self.budget.window_s)
        self._register.record_evaluation(asker, t, "refused")
        if filed < max(self.budget.evaluations, 1):
            self._file(EventType.REJECTED, asker, now, payload, reason)
        log.warning("lookup_refused", asker=asker, reason=reason.value)
        reply = EvaluationReply(request_id=request_id, refused=reason, retry_after_s=retry_after_s)
        return reply.model_dump_json(exclude_none=True).encode()

    def _file(
        self, event: EventType, asker: str, now: datetime, payload: bytes, reason: ReasonCode | None
    ) -> None:
        """A signed audit event: who asked (``sender``) and when; its digest is of the blinded
        request, which says nothing of the firearm."""
        signing = self._keys().signing
        record = AuditEvent(
            event_id=uuid7(int(now.timestamp() * 1000)),
            event=event,
            msg_id=uuid7(int(now.timestamp() * 1000)),
            kind=LOOKUP_KIND,
            sender=asker,
            recipients=[self.party],
            actor=self.party,
            handling=HandlingCode.H0,
            confidential=False,
            envelope_sha256=hashlib.sha256(payload).hexdigest(),
            signature_sha256=hashlib.sha256(b"").hexdigest(),
            occurred_at=now,
            reason=reason,
        )
        self._file_events([(record.event_id, sign_event(record, signing))])


def attach(broker: NatsBroker, responder: LookupResponder) -> None:
    """Declare the evaluation endpoint on the node's broker: core NATS request and reply."""

    async def on_request(body: bytes, msg: NatsMessage) -> bytes:
        route = subjects.parse_lookup_evaluation(msg.raw_message.subject)
        if route is None or route[0] != responder.party:
            return EvaluationReply(refused=ReasonCode.LOOKUP_MALFORMED).model_dump_json().encode()
        return responder.answer(route[1], body)

    broker.subscriber(subjects.lookup_evaluation_filter(responder.party), decoder=_raw)(on_request)


async def _raw(msg: NatsMessage) -> bytes:
    return msg.body

"""The answering side of blind record lookup (docs/lookup.md, sections 5 to 7).

The node answers ``lookup.eval.<party>.<asker>``: the asker's code comes from the subject, which
the broker's per-state service imports make a fact (services/hub/lookup.py). Each evaluation is
counted against the asker's budget, recorded in the register's counters, and filed as a signed
audit event (``lookup_evaluated``, or ``rejected`` with ``lookup_over_budget``) naming who asked
and when, never what: the request holds a blinded element and nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import sqlite3
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
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
#: Requests one asking state may have waiting at this node; past them, refused at once.
QUEUE_PER_ASKER = 32
#: Messages the subscription buffers before the client drops them (a slow consumer).
PENDING_LIMIT = 65_536


@dataclass(frozen=True)
class Budget:
    """Evaluations one asking state may have within a sliding window."""

    evaluations: int = 500
    window_s: float = 24 * 3600.0


class LookupResponder:
    """Answers evaluation requests; pure but for the register and the event queue it is given.

    The budget is kept in memory (a sliding window of evaluation times per asker, read back from
    the register at an asker's first request), so that refusing costs no query. Every refusal is
    counted; the first ones of each window (no more than the budget's worth) are also recorded one
    by one and filed in the audit log, the rest are counted in memory and written in aggregate
    (:meth:`flush`), so that a flood floods neither the register nor the log.
    """

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
        self._evaluated: dict[str, deque[float]] = {}
        self._filed_refusals: dict[str, deque[float]] = {}
        self._uncounted: Counter[str] = Counter()

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
        window = self._window(self._evaluated, asker, t, self._register.evaluation_times)
        if len(window) >= self.budget.evaluations:
            retry = max(1, math.ceil(window[0] + self.budget.window_s - t))
            return self._refuse(
                asker, request.request_id, ReasonCode.LOOKUP_OVER_BUDGET, now, payload, retry
            )
        try:
            evaluated, proof = keys.evaluate(unb64u(request.blinded))
        except (LookupCryptoError, ValueError):
            return self._refuse(
                asker, request.request_id, ReasonCode.LOOKUP_MALFORMED, now, payload
            )
        window.append(t)
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

    def _window(
        self,
        windows: dict[str, deque[float]],
        asker: str,
        t: float,
        initial: Callable[[str, float], list[float]],
    ) -> deque[float]:
        """``asker``'s times within the sliding window ending at ``t``, oldest first."""
        since = t - self.budget.window_s
        window = windows.get(asker)
        if window is None:
            window = windows[asker] = deque(initial(asker, since))
        while window and window[0] < since:
            window.popleft()
        return window

    def refuse_busy(self, asker: str) -> bytes:
        """The reply to a request the endpoint had no room to queue: counted, not recorded one by
        one (a flood's overflow costs no write)."""
        self._uncounted[asker] += 1
        reply = EvaluationReply(refused=ReasonCode.LOOKUP_OVER_BUDGET, retry_after_s=1)
        return reply.model_dump_json(exclude_none=True).encode()

    def flush(self) -> None:
        """Write the refusals counted in memory into the register, one row per asker."""
        now = self._clock().timestamp()
        for asker, count in self._uncounted.items():
            self._register.record_evaluation(asker, now, "refused", count)
        self._uncounted.clear()

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
        filed = self._window(self._filed_refusals, asker, t, lambda _a, _s: [])
        if len(filed) < max(self.budget.evaluations, 1):
            filed.append(t)
            self._register.record_evaluation(asker, t, "refused")
            self._file(EventType.REJECTED, asker, now, payload, reason)
            log.warning("lookup_refused", asker=asker, reason=reason.value)
        else:
            self._uncounted[asker] += 1
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


class EvaluationEndpoint:
    """The node's ``lookup.eval.<party>.*`` subscription, fair between asking states.

    The subscription's callback only queues a request under its asker (a fact from the subject);
    one worker per asker answers its queue, yielding after each answer, so asking states take
    turns. A full queue (a state flooding) gets an immediate refusal: its overflow is dropped
    without being parsed, and no other state's request waits behind it.
    """

    def __init__(self, responder: LookupResponder, queue_per_asker: int = QUEUE_PER_ASKER) -> None:
        self.responder = responder
        self._size = queue_per_asker
        self._queues: dict[str, asyncio.Queue[Msg]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    async def serve(self, nc: Client) -> None:
        """Subscribe on ``nc`` (a connection as the node's user); answer until cancelled."""
        await nc.subscribe(
            subjects.lookup_evaluation_filter(self.responder.party),
            cb=self._intake,
            pending_msgs_limit=PENDING_LIMIT,
        )
        await nc.flush()

    async def _intake(self, msg: Msg) -> None:
        route = subjects.parse_lookup_evaluation(msg.subject)
        if route is None or route[0] != self.responder.party or not msg.reply:
            return  # the broker's imports deliver nothing else here
        asker = route[1]
        queue = self._queues.get(asker)
        if queue is None:
            queue = self._queues[asker] = asyncio.Queue(self._size)
            self._workers[asker] = asyncio.create_task(self._work(asker, queue))
        try:
            queue.put_nowait(msg)
        except asyncio.QueueFull:
            await msg.respond(self.responder.refuse_busy(asker))

    async def _work(self, asker: str, queue: asyncio.Queue[Msg]) -> None:
        while True:
            if queue.empty():
                self.responder.flush()  # idle: write what the last burst counted
            msg = await queue.get()
            try:
                await msg.respond(self.responder.answer(asker, msg.data))
            except (NatsError, OSError, sqlite3.Error) as exc:  # the asker times out and retries
                log.error("lookup_answer_failed", asker=asker, error=type(exc).__name__)
            except Exception as exc:  # a defect must not stall this asker's queue for good
                log.error("lookup_answer_failed", asker=asker, error=repr(exc))
            await asyncio.sleep(0)  # let the other askers' workers take their turn

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
        self.responder.flush()

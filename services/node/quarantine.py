"""Filing the quarantine copies of refused envelopes (design section 5).

A refusal is committed with the envelope itself (``quarantine_outbox``, in the transaction that
records the refusal), and only then is its delivery terminated at the hub: from that moment the
node's own store holds it, as it holds a message it stores. This drainer files each copy in the
state's quarantine stream, publishing concurrently, and records what the hub stored (the refusal
marked quarantined, its signed ``quarantined`` audit event, the envelope let go) in one commit.

Before, each refused delivery waited for its copy's PubAck and a commit of its own before it was
terminated, and the inbox's next fetch waited for all of them: a flood of refusals from one state
cost every other state's messages behind it about 2 ms each (docs/operations.md). Now a refusal
costs the inbox what a stored message does; the copies follow at the hub's pace, retried with
backoff while the hub or the stream is away.

The copies are not urgent and the messages behind a flood are: while the inbox is deciding
deliveries, the filer waits (``YIELD_S`` at a time), up to ``MAX_YIELD_S`` in a row; past that it
files without pause until nothing is due, so a sustained flood's copies are filed all the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from schemas import ReasonCode
from services.core import subjects
from services.core.logs import get_logger
from services.node.outbox import Drainer, PubAck, Publish, backoff
from services.node.store import Event, QuarantineItem, Store

log = get_logger("cifta.node")


#: The inbox counts as busy for this long after it decided a group; the filer waits as long.
YIELD_S = 0.2
#: The longest the filer waits for a busy inbox before it files regardless.
MAX_YIELD_S = 10.0


def header_value(text: str) -> str:
    """A NATS header value: one line."""
    return " ".join(text.split())[:300]


class QuarantineFiler(Drainer[QuarantineItem, PubAck]):
    """Files the held envelopes in ``QUARANTINE_<party>``, one copy per refused delivery."""

    name = "quarantine"

    def __init__(
        self,
        store: Store,
        party: str,
        publish: Publish,
        event_of: Callable[[QuarantineItem], Event],
        *,
        timeout_s: float,
        concurrency: int,
        poll_s: float,
        inbox_busy: Callable[[float], bool] = lambda within_s: False,
        on_filed: Callable[[], None] = lambda: None,
        ready: Callable[[], Awaitable[None]] | None = None,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        # the hub or the quarantine stream away: retried from half a second up to half a minute
        super().__init__(
            batch=concurrency, poll_s=poll_s, retry_initial_s=0.5, retry_max_s=30.0,
            ready=ready, on_error=on_error,
        )  # fmt: skip
        self.store = store
        self.party = party
        self._publish = publish
        self._event_of = event_of
        self.timeout_s = timeout_s
        self._inbox_busy = inbox_busy
        self._on_filed = on_filed  # their audit events are queued: wake their publisher
        self._waiting_since: float | None = None

    async def drain_once(self) -> None:
        """A round, unless copies are due while the inbox is busy: then wait for it a moment."""
        next_at = self.next_due_at()
        if next_at is None or next_at > time.time():
            self._waiting_since = None  # nothing due: the next flood's copies wait afresh
        elif self._yields():
            await asyncio.sleep(YIELD_S)  # pacing behind the inbox, bounded by MAX_YIELD_S
            return
        await super().drain_once()

    def _yields(self) -> bool:
        now = time.monotonic()
        if not self._inbox_busy(YIELD_S):
            self._waiting_since = None
            return False
        if self._waiting_since is None:
            self._waiting_since = now
        return now - self._waiting_since < MAX_YIELD_S

    def due(self, now: float, limit: int) -> Sequence[QuarantineItem]:
        return self.store.quarantine_outbox.due(now, limit)

    def next_due_at(self) -> float | None:
        return self.store.quarantine_outbox.next_due_at()

    def attempts(self, item: QuarantineItem) -> int:
        return item.attempts

    async def publish(self, item: QuarantineItem) -> PubAck:
        reason = ReasonCode(item.reason).value
        headers = {
            # one quarantine copy per inbox message, however often it is tried
            "Nats-Msg-Id": f"{item.stream_seq}-{item.envelope_sha256[:32]}",
            "Cifta-Reason": reason,
            "Cifta-Detail": header_value(item.detail),
            "Cifta-Subject": item.subject,
            "Cifta-Stream-Seq": str(item.stream_seq),
        }
        return await self._publish(
            item.envelope,
            subjects.quarantine_subject(self.party, reason),
            subjects.quarantine_stream(self.party),
            headers,
            self.timeout_s,
        )

    def record(
        self,
        sent: list[tuple[QuarantineItem, PubAck]],
        failed: list[tuple[QuarantineItem, str, float]],
    ) -> None:
        filed, events = [], []
        retries = [(i.stream_seq, i.envelope_sha256, error, at) for i, error, at in failed]
        for item, _ in sent:
            try:
                events.append(self._event_of(item))
            except Exception as exc:  # this item alone: tried again (the hub drops the copy)
                delay = backoff(item.attempts + 1, self.retry_initial_s, self.retry_max_s)
                self.failed(item, exc, delay)
                retries.append((item.stream_seq, item.envelope_sha256,
                                f"{type(exc).__name__}: {exc}", time.time() + delay))  # fmt: skip
                continue
            filed.append(item)
        if retries:
            self.store.quarantine_outbox.retry(retries)
        if filed:
            self.store.quarantine_filed(filed, events)
            self._on_filed()

    def failed(self, item: QuarantineItem, exc: BaseException, retry_in_s: float) -> None:
        log.warning("quarantine_copy_not_filed", stream_seq=item.stream_seq,
                    error=type(exc).__name__, retry_in_s=round(retry_in_s, 2))  # fmt: skip

    async def file_held(self, rounds: int = 1000) -> int:
        """File what is held now, round after round, until nothing is due (``cifta node
        recover``, which runs no drainer); what could not be filed stays held for the running
        node. Returns how many are still held."""
        for _ in range(rounds):
            if not self.due(time.time(), 1):
                break
            await self.drain_once()
        return self.store.quarantine_outbox.pending()

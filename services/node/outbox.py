"""The outbox publisher: sends what the store has queued, one publish per recipient inbox.

Transactional outbox: a message is queued in the same SQLite transaction that stores it, and
marked sent only on the recipient stream's PubAck. While the hub is unreachable each attempt fails
and is retried with capped exponential backoff and jitter; the ``Nats-Msg-Id`` lets the
recipient's stream drop the copy of a publish that did land before its PubAck was lost.

The ``Nats-Msg-Id`` is not the msg_id itself: a recipient's inbox stream is shared by every
sender, and any co-recipient learns a message's msg_id, so it could publish junk under that id
first and have the real message dropped as a duplicate. It is an HMAC of the msg_id and recipient
under a secret only this node holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from services.core import subjects
from services.core.logs import get_logger
from services.node.store import OutboxItem, Store

log = get_logger("cifta.node.outbox")


class PubAck(Protocol):
    stream: str
    seq: int


Publish = Callable[[bytes, str, str, dict[str, str], float], Awaitable[PubAck]]


def backoff(attempts: int, initial: float, cap: float) -> float:
    """Seconds before the next attempt: exponential, capped, with full jitter on the upper half."""
    ceiling = min(cap, initial * 2 ** max(0, attempts - 1))
    return float(ceiling / 2 + random.random() * ceiling / 2)  # noqa: S311 - jitter, not a secret


class OutboxPublisher:
    def __init__(
        self,
        store: Store,
        party: str,
        publish: Publish,
        *,
        clock: Callable[[], datetime],
        timeout_s: float,
        concurrency: int,
        retry_initial_s: float,
        retry_max_s: float,
        poll_s: float,
        dedup_secret: bytes,
        ready: Callable[[], Awaitable[None]] | None = None,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.store = store
        self.party = party
        self.publish = publish
        self.clock = clock
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.poll_s = poll_s
        self._dedup_secret = dedup_secret
        self._ready = ready
        self._on_error = on_error
        self._wake = asyncio.Event()
        self._stopping = False
        #: (msg_id, recipient) published and acknowledged by the hub but not yet marked sent
        #: (the store failed): publishing them again is no one else's doing
        self._unrecorded: set[tuple[str, str]] = set()

    def dedup_id(self, msg_id: str, recipient: str) -> str:
        """The ``Nats-Msg-Id`` of one message to one recipient: the same on every retry."""
        mac = hmac.new(self._dedup_secret, f"{recipient}\x00{msg_id}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def wake(self) -> None:
        """Something was queued: look at the outbox now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Drain the outbox until stopped; a failure of the store is logged and retried."""
        while not self._stopping:
            if self._ready is not None:  # connected to the hub, and the store writes
                await self._ready()
            try:
                await self._drain_once()
            except Exception as exc:  # the outbox must outlive a bad moment
                if self._on_error is not None:
                    self._on_error("outbox", exc)
                else:
                    log.error("outbox_failed", error=type(exc).__name__, retry_in_s=self.poll_s)
                await asyncio.sleep(self.poll_s)

    async def _drain_once(self) -> None:
        self._wake.clear()
        due = self.store.due(time.time(), self.concurrency)
        if due:
            results = await asyncio.gather(*(self._send(item) for item in due))
            sent = [r for r in results if len(r) == 3]
            retries = [r for r in results if len(r) == 4]
            if sent:  # one commit for the batch's PubAcks
                keys = [(msg_id, recipient) for msg_id, recipient, _ in sent]
                self._unrecorded.update(keys)
                self.store.mark_sent(sent, self.clock())
                self._unrecorded.difference_update(keys)
            if retries:  # and one for its failures
                self.store.mark_retry(retries)
            return
        # Sleep until the next retry is due, a new message is queued (in this process), or the
        # poll interval passes (queued by the CLI in another process).
        next_at = self.store.next_due_at()
        wait = self.poll_s if next_at is None else min(self.poll_s, next_at - time.time())
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _send(self, item: OutboxItem) -> tuple[str, str, int] | tuple[str, str, str, float]:
        """Publish one item: (msg_id, recipient, sequence) on a PubAck, or (msg_id, recipient,
        error, next attempt) if it failed."""
        subject = subjects.inbox_subject(item.recipient, self.party, item.msg_id)
        stream = subjects.inbox_stream(item.recipient)
        headers = {"Nats-Msg-Id": self.dedup_id(item.msg_id, item.recipient)}
        try:
            ack = await self.publish(item.envelope, subject, stream, headers, self.timeout_s)
        except Exception as exc:  # every failure to publish is retried
            delay = backoff(item.attempts + 1, self.retry_initial_s, self.retry_max_s)
            log.warning(
                "publish_failed",
                msg_id=item.msg_id,
                recipient=item.recipient,
                attempt=item.attempts + 1,
                retry_in_s=round(delay, 2),
                error=type(exc).__name__,
            )
            error = f"{type(exc).__name__}: {exc}"
            return item.msg_id, item.recipient, error, time.time() + delay
        duplicate = bool(getattr(ack, "duplicate", False))
        if duplicate and item.attempts == 0 and (item.msg_id, item.recipient) \
                not in self._unrecorded:  # fmt: skip
            # Nothing of ours went out under this id before: someone else's publish did.
            log.error(
                "publish_deduplicated_on_first_attempt",
                msg_id=item.msg_id,
                recipient=item.recipient,
            )
        log.info(
            "message_sent",
            msg_id=item.msg_id,
            recipient=item.recipient,
            stream_seq=ack.seq,
            duplicate=duplicate,
        )
        return item.msg_id, item.recipient, ack.seq

"""The outbox publisher: sends what the store has queued, one publish per recipient inbox.

Transactional outbox: a message is queued in the same SQLite transaction that stores it, and
marked sent only on the recipient stream's PubAck. While the hub is unreachable each attempt fails
and is retried with capped exponential backoff and jitter; ``Nats-Msg-Id = msg_id`` lets the
recipient's stream drop the copy of a publish that did land before its PubAck was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Something was queued: look at the outbox now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            due = self.store.due(time.time(), self.concurrency)
            if due:
                acks = await asyncio.gather(*(self._send(item) for item in due))
                sent = [a for a in acks if a is not None]
                if sent:  # one commit for the batch's PubAcks
                    self.store.mark_sent(sent, self.clock())
                continue
            # Sleep until the next retry is due, a new message is queued (in this process), or
            # the poll interval passes (queued by the CLI in another process).
            next_at = self.store.next_due_at()
            wait = self.poll_s if next_at is None else min(self.poll_s, next_at - time.time())
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def _send(self, item: OutboxItem) -> tuple[str, str, int] | None:
        """Publish one item; its (msg_id, recipient, sequence) on a PubAck, None if it failed."""
        subject = subjects.inbox_subject(item.recipient, self.party, item.msg_id)
        stream = subjects.inbox_stream(item.recipient)
        try:
            ack = await self.publish(
                item.envelope, subject, stream, {"Nats-Msg-Id": item.msg_id}, self.timeout_s
            )
        except Exception as exc:
            delay = backoff(item.attempts + 1, self.retry_initial_s, self.retry_max_s)
            self.store.mark_retry(
                item.msg_id, item.recipient, f"{type(exc).__name__}: {exc}", time.time() + delay
            )
            log.warning(
                "publish_failed",
                msg_id=item.msg_id,
                recipient=item.recipient,
                attempt=item.attempts + 1,
                retry_in_s=round(delay, 2),
                error=type(exc).__name__,
            )
            return None
        log.info(
            "message_sent",
            msg_id=item.msg_id,
            recipient=item.recipient,
            stream_seq=ack.seq,
            duplicate=bool(getattr(ack, "duplicate", False)),
        )
        return item.msg_id, item.recipient, ack.seq

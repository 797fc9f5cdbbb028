"""The outbox publisher: sends what the store has queued, one publish per recipient inbox; and
the drainer it shares with the audit events' publisher (``services/node/auditing.py``).

Transactional outbox: a message is queued in the same SQLite transaction that stores it, and
marked sent only on the recipient stream's PubAck. While the hub is unreachable each attempt fails
and is retried with capped exponential backoff and jitter; the ``Nats-Msg-Id`` lets the
recipient's stream drop the copy of a publish that did land before its PubAck was lost.

Reception awareness (docs/envelope.md section 14): a PubAck says a stream stored the message, not
that its recipient has it. A message whose recipient has not answered it (a receipt or a
rejection) within ``answer_wait_s`` is sent again, the same bytes under a ``Nats-Msg-Id`` of its
own, after twice as long each time, up to ``max_resends`` times; then an alert says that the
recipient never answered. A recipient acknowledges a copy it holds and sends its answer again. It
is what recovers a message lost between streams after it was acknowledged (docs/operations.md
4.3: a cut leaf link can lose what crossed it during the cut).

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
import math
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from services.core import subjects
from services.core.logs import get_logger
from services.node.store import OutboxItem, Store

log = get_logger("cifta.node.outbox")

#: How often a node with answers overdue asks whether answers can reach it.
PATH_CHECK_S = 5.0

Item = TypeVar("Item")
Ack = TypeVar("Ack")


class PubAck(Protocol):
    stream: str
    seq: int


Publish = Callable[[bytes, str, str, dict[str, str], float], Awaitable[PubAck]]


def backoff(attempts: int, initial: float, cap: float) -> float:
    """Seconds before the next attempt: exponential, capped, with full jitter on the upper half."""
    ceiling = min(cap, initial * 2 ** max(0, attempts - 1))
    return float(ceiling / 2 + random.random() * ceiling / 2)  # noqa: S311 - jitter, not a secret


class Drainer(ABC, Generic[Item, Ack]):
    """Drains a table of queued publishes: the rows due, published concurrently, the successes
    recorded in one commit and the failures in another, each failure retried after a capped
    exponential backoff with jitter. Publishes only while ``ready`` lets it (connected to the
    hub, and the store writes); a failure of the store goes to ``on_error`` (or the log) and
    the drain goes on after ``poll_s``.

    ``overlap_after_s`` (pipelining): a round in flight that long no longer holds the next one
    back. Rows due then go out in a round of their own, up to ``batch`` rows in flight in all,
    each round recorded when its own acknowledgements are in, and a row in flight is not taken
    again (:meth:`key`). Across a long link, what is queued while the hub acknowledges a round
    goes out without waiting that round trip and a commit (bench/outbox_rtt.py); on a short one
    the round is back before then, and what was queued meanwhile still goes out together, in
    one round and one commit, as a burst should. ``None``: one round at a time.

    ``linger_s`` (for what no one waits on, the audit events): a round of fewer than ``batch``
    rows waits that long first, for the rows queued meanwhile to go with it. At a steady load of
    messages one at a time that is one publish round and one commit for many rows, not one each.
    """

    #: what the log calls it: ``<name>_failed``, and ``on_error``'s first argument
    name: str

    def __init__(
        self,
        *,
        batch: int,
        poll_s: float,
        retry_initial_s: float,
        retry_max_s: float,
        ready: Callable[[], Awaitable[None]] | None = None,
        on_error: Callable[[str, Exception], None] | None = None,
        overlap_after_s: float | None = None,
        linger_s: float = 0.0,
    ) -> None:
        self.batch = batch
        self.poll_s = poll_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.overlap_after_s = overlap_after_s
        self.linger_s = linger_s
        self._ready = ready
        self._on_error = on_error
        self._wake = asyncio.Event()
        self._ended = asyncio.Event()  # a round in flight ended
        self._halt = asyncio.Event()  # set by stop(): the drain ends, a linger at once
        self._lingered = False  # the next look takes what is due without lingering again
        self._in_flight: dict[asyncio.Task[None], list[Hashable]] = {}  # rounds, their rows' keys
        self._busy: set[Hashable] = set()  # the keys of the rows in flight

    @abstractmethod
    def due(self, now: float, limit: int) -> Sequence[Item]:
        """Up to ``limit`` rows whose next attempt is due at ``now`` (Unix seconds)."""

    @abstractmethod
    def next_due_at(self) -> float | None:
        """When the next row falls due, if any is queued."""

    @abstractmethod
    def attempts(self, item: Item) -> int:
        """How many times ``item`` was tried before."""

    @abstractmethod
    async def publish(self, item: Item) -> Ack:
        """Publish one row; raises if it did not land."""

    @abstractmethod
    def record(self, sent: list[tuple[Item, Ack]], failed: list[tuple[Item, str, float]]) -> None:
        """Record a round: what landed, and (row, error, next attempt) of what did not."""

    def key(self, item: Item) -> Hashable:
        """What names ``item``'s row, to keep a row in flight out of the next round."""
        return item

    def failed(self, item: Item, exc: BaseException, retry_in_s: float) -> None:
        """One publish failed (for the log); it is retried in ``retry_in_s``."""

    def wake(self) -> None:
        """Something was queued: look at the table now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()
        self._ended.set()

    async def run(self) -> None:
        """Drain until stopped; a failure of the store is reported and retried."""
        try:
            while not self._halt.is_set():
                if self._ready is not None:  # connected to the hub, and the store writes
                    await self._ready()
                try:
                    await self.drain_once()
                except Exception as exc:  # the drain must outlive a bad moment
                    if self._on_error is not None:
                        self._on_error(self.name, exc)
                    else:
                        log.error(
                            f"{self.name}_failed", error=type(exc).__name__, retry_in_s=self.poll_s
                        )
                    await asyncio.sleep(self.poll_s)
        finally:  # rounds still in flight end with the drain: unrecorded, they go out again
            for task in self._in_flight:
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            self._in_flight.clear()
            self._busy.clear()

    async def prepare(self) -> None:
        """What a round must know before it looks at the table (nothing, unless overridden)."""

    async def drain_once(self) -> None:
        """One round: publish what is due; with nothing due, wait for a wake, the next row due
        or the poll interval (rows queued by another process, the CLI, are seen then). With
        rounds in flight, a round's end wakes it too. Lingering, a look that finds less than a
        full round waits ``linger_s`` and returns; the next look takes what is due then."""
        self._wake.clear()
        self._ended.clear()
        self._reap()
        if len(self._busy) < self.batch:  # room for a round: worth preparing one
            await self.prepare()
            due = self._due(time.time())
            room = self.batch - len(self._busy)
            if due and self.linger_s > 0 and not self._lingered and len(due) < room:
                self._lingered = True  # room left: let more come first
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._halt.wait(), self.linger_s)
                return  # back through ``run``: ``ready`` awaited, the table looked at again
            self._lingered = False
            if due:
                if self.overlap_after_s is None:
                    await self._round(due)
                else:  # in the foreground until it ends or the overlap passes: on a short link
                    # it ends first, and the drain goes on as with one round at a time
                    await asyncio.wait({self._start(due)}, timeout=self.overlap_after_s)
                    self._reap()
                return
        event = self._wake
        if not self._in_flight:
            next_at = self.next_due_at()
            wait = self.poll_s if next_at is None else min(self.poll_s, next_at - time.time())
        elif len(self._busy) >= self.batch:
            # no round may start before one ends: what is queued meanwhile (each compose wakes
            # the drain) waits for that, not a turn of this loop per row
            event, wait = self._ended, self.poll_s
        else:  # the rows in flight are still due until recorded: wait for an end or a wake
            wait = self.poll_s
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), wait)
        else:  # due already and not taken: never hold the event loop while it is so
            await asyncio.sleep(0)

    def _due(self, now: float) -> Sequence[Item]:
        """Rows due and not in flight, as many as ``batch`` leaves room for."""
        if not self._busy:
            return self.due(now, self.batch)
        rows = self.due(now, self.batch)  # the rows in flight are among them
        return [r for r in rows if self.key(r) not in self._busy][: self.batch - len(self._busy)]

    def _start(self, due: Sequence[Item]) -> asyncio.Task[None]:
        keys = [self.key(item) for item in due]
        self._busy.update(keys)
        task = asyncio.create_task(self._round(due), name=f"{self.name}-round")
        self._in_flight[task] = keys
        task.add_done_callback(self._round_ended)
        return task

    def _round_ended(self, _: asyncio.Task[None]) -> None:
        self._ended.set()
        self._wake.set()

    def _reap(self) -> None:
        """Forget the rounds that ended, their rows free to be taken again (here, not in a
        done-callback: one that has not run yet must not leave a finished round's rows held);
        raise the first failure among them (the store's)."""
        ended = [t for t in self._in_flight if t.done()]
        for task in ended:
            self._busy.difference_update(self._in_flight.pop(task))
        errors = [t.exception() for t in ended if not t.cancelled()]
        failure = next((e for e in errors if e is not None), None)
        if failure is not None:
            raise failure

    async def _round(self, due: Sequence[Item]) -> None:
        """Publish ``due`` concurrently, then record what landed and what did not."""
        results = await asyncio.gather(*(self._attempt(item) for item in due))
        sent: list[tuple[Item, Ack]] = []
        failed: list[tuple[Item, str, float]] = []
        for item, result in zip(due, results, strict=True):
            if isinstance(result, _Failure):
                exc = result.exc
                delay = backoff(self.attempts(item) + 1, self.retry_initial_s, self.retry_max_s)
                self.failed(item, exc, delay)
                failed.append((item, f"{type(exc).__name__}: {exc}", time.time() + delay))
            else:
                sent.append((item, result))
        self.record(sent, failed)

    async def _attempt(self, item: Item) -> Ack | _Failure:
        try:
            return await self.publish(item)
        except Exception as exc:  # every failure to publish is retried
            return _Failure(exc)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():  # the drain itself is being stopped
                raise
            return _Failure(exc)  # the client gave up on this publish (its connection closed)


@dataclass(frozen=True)
class _Failure:
    exc: BaseException


class OutboxPublisher(Drainer[OutboxItem, PubAck]):
    """Publishes the outbox's messages to their recipients' inbox streams."""

    name = "outbox"

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
        answer_wait_s: float | None = None,
        max_resends: int = 0,
        answers_can_come: Callable[[], Awaitable[bool]] | None = None,
        overlap_after_s: float | None = None,
        ready: Callable[[], Awaitable[None]] | None = None,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        super().__init__(
            batch=concurrency, poll_s=poll_s, retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s, ready=ready, on_error=on_error,
            overlap_after_s=overlap_after_s,
        )  # fmt: skip
        self.store = store
        self.party = party
        self._publish = publish
        self.clock = clock
        self.timeout_s = timeout_s
        self._dedup_secret = dedup_secret
        #: None: no answer is awaited (nothing is sent again)
        self.answer_wait_s = answer_wait_s
        self.max_resends = max_resends
        #: Whether answers can reach this node now (its inbox taken, its leaf's link up): while
        #: they cannot, an answer not yet in says nothing and nothing is sent again.
        self._answers_can_come = answers_can_come
        self._may_send_again = answers_can_come is None
        self._asked_at = -PATH_CHECK_S
        #: (msg_id, recipient) published and acknowledged by the hub but not yet marked sent
        #: (the store failed): publishing them again is no one else's doing
        self._unrecorded: set[tuple[str, str]] = set()

    def dedup_id(self, msg_id: str, recipient: str, resend: int = 0) -> str:
        """The ``Nats-Msg-Id`` of one message to one recipient: the same on every retry of one
        sending, another for each time it is sent again for want of an answer."""
        text = f"{recipient}\x00{msg_id}" + (f"\x00{resend}" if resend else "")
        return hmac.new(self._dedup_secret, text.encode(), hashlib.sha256).hexdigest()[:32]

    async def prepare(self) -> None:
        """With answers overdue, ask whether answers can reach this node now (after a no, not
        again for ``PATH_CHECK_S``); a failed question counts as no."""
        if self.answer_wait_s is None or self._answers_can_come is None:
            return
        now = time.time()
        if not self.store.unanswered(now, 1):
            return
        if not self._may_send_again and now - self._asked_at < PATH_CHECK_S:
            return
        self._asked_at = now
        try:
            can = await self._answers_can_come()
        except Exception as exc:  # cannot tell: wait, as for a no
            log.warning("answer_path_unknown", error=type(exc).__name__)
            can = False
        if not can and self._may_send_again:
            log.info("sending_again_postponed", reason="answers cannot reach this node now")
        self._may_send_again = can

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        self._send_unanswered_again(now, limit)
        return self.store.due(now, limit)

    def next_due_at(self) -> float | None:
        """The next publish due, or the next answer due (after a no to whether answers can
        come, not before the question may be asked again)."""
        due = [t for t in (self.store.next_due_at(),) if t is not None]
        if self.answer_wait_s is not None:
            answer = self.store.next_answer_due_at()
            if answer is not None:
                ask = -math.inf if self._may_send_again else self._asked_at + PATH_CHECK_S
                due.append(max(answer, ask))
        return min(due) if due else None

    def _send_unanswered_again(self, now: float, limit: int) -> None:
        """Queue again what was sent and not answered in time; past ``max_resends``, stop
        waiting and raise an alert (the recipient may be down: an operator asks it)."""
        if self.answer_wait_s is None or not self._may_send_again:
            return
        rows = self.store.unanswered(now, limit)
        if not rows:
            return
        again = [r for r in rows if r.resends < self.max_resends]
        given_up = [r for r in rows if r.resends >= self.max_resends]
        with self.store.transaction():
            self.store.send_again([(r.msg_id, r.recipient) for r in again], now)
            self.store.stop_awaiting([(r.msg_id, r.recipient) for r in given_up])
            for r in given_up:
                self.store.record_alert(
                    "delivery",
                    f"{r.recipient} has not answered message {r.msg_id}, sent "
                    f"{r.resends + 1} times, last at {r.sent_at}: its node may be down",
                    self.clock(),
                )
        for r in again:
            log.warning("sending_unanswered_again", msg_id=r.msg_id, recipient=r.recipient,
                        resend=r.resends + 1, last_sent_at=r.sent_at)  # fmt: skip
        for r in given_up:
            log.error("unanswered", msg_id=r.msg_id, recipient=r.recipient, sent=r.resends + 1)

    def attempts(self, item: OutboxItem) -> int:
        return item.attempts

    def key(self, item: OutboxItem) -> tuple[str, str]:
        return item.msg_id, item.recipient

    def record(
        self,
        sent: list[tuple[OutboxItem, PubAck]],
        failed: list[tuple[OutboxItem, str, float]],
    ) -> None:
        if sent:  # one commit for the batch's PubAcks
            keys = [(item.msg_id, item.recipient) for item, _ in sent]
            self._unrecorded.update(keys)
            acks = [(item.msg_id, item.recipient, ack.seq) for item, ack in sent]
            self.store.mark_sent(acks, self.clock(), self.answer_wait_s)
            self._unrecorded.difference_update(keys)
        if failed:  # and one for its failures
            self.store.mark_retry([(i.msg_id, i.recipient, e, at) for i, e, at in failed])

    def failed(self, item: OutboxItem, exc: BaseException, retry_in_s: float) -> None:
        log.warning(
            "publish_failed",
            msg_id=item.msg_id,
            recipient=item.recipient,
            attempt=item.attempts + 1,
            retry_in_s=round(retry_in_s, 2),
            error=type(exc).__name__,
        )

    async def publish(self, item: OutboxItem) -> PubAck:
        subject = subjects.inbox_subject(item.recipient, self.party, item.msg_id)
        stream = subjects.inbox_stream(item.recipient)
        headers = {"Nats-Msg-Id": self.dedup_id(item.msg_id, item.recipient, item.resends)}
        ack = await self._publish(item.envelope, subject, stream, headers, self.timeout_s)
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
            resend=item.resends,
        )
        return ack

"""Sending and receiving messages with attachments: what the front ends and the running node call.

Sending (:func:`send_with_attachments`): each file is sealed into the node's store, stored at the
hub for every recipient, and only then is the message naming them sealed and queued, so the
outbox never publishes an envelope whose attachments are not all stored. Receiving
(:class:`AttachmentReceiver`): the inbox stores the envelope and acknowledges it at once (a large
file never holds the hub consumer's shared window); this loop then fetches and verifies each file
from the sender's stream, keeps the node's own encrypted copy and queues the receipt that names
them. A missing, corrupt or oversized attachment is refused like an envelope: a signed rejection
with its reason code, a quarantine copy, audit events. The same loop purges, from this node's own
stream, what it stored for a recipient once that recipient's receipt confirmed it (or the
recipient refused the message): services/node/inbound.py queues those purges.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from nats.aio.client import Client
from nats.errors import Error as NatsError
from pydantic import TypeAdapter

from schemas import Body, HandlingCode, ReasonCode
from schemas.attachment import AttachmentManifest, Attachments
from schemas.audit import EventType
from services.core import subjects
from services.core.attachments import AttachmentError, AttachmentFault, ciphertext_size
from services.core.envelope import ProtectedHeader
from services.core.logs import get_logger
from services.node.attachments import (
    RECIPIENT_SHARE,
    AttachmentStore,
    Prepared,
    Progress,
    RecipientBacklog,
    fetch,
    hub_api,
    purge,
    stream_room,
    upload,
)
from services.node.core import Delivery, NodeCore
from services.node.lookup_client import connect, open_connection
from services.node.outbox import backoff
from services.node.settings import NodeSettings
from services.node.store.attachments import AttachmentFetch

log = get_logger("cifta.node.attachments")
_ATTACHMENTS: TypeAdapter[list[AttachmentManifest]] = TypeAdapter(Attachments)

#: A segment the hub says it does not hold is asked for at least this many times, over at least
#: ``attachment_missing_grace_s``, before the message is refused as ``attachment_missing``: on a
#: three-server hub a direct get may be answered by a replica that has not yet applied what the
#: leader acknowledged to the sender (seen: 6 reads in 500 under load, right after the PubAck;
#: longer after a server restarts), and a refusal is final. A hub that does not answer is no
#: reason to refuse: that fetch waits, retried with back-off, until the hub answers.
MISSING_ATTEMPTS = 4

#: Senders whose files are fetched at once: each holds up to a window of segments (4 MiB) in
#: memory, so 16 bound that to 64 MiB. A sender holds one place at most, so taking them all
#: needs 16 states with files due at once; the others' turn comes as each message ends.
MAX_SENDERS_FETCHING = 16


def attachment_store(settings: NodeSettings) -> AttachmentStore:
    """The node's own copies of its attachments, in its home."""
    return AttachmentStore(settings.home / "attachments")


def _no_progress(done: int, total: int) -> None:
    """Shows nothing."""


async def send_with_attachments(
    settings: NodeSettings,
    core: NodeCore,
    body: Body,
    to: Sequence[str],
    files: Sequence[Path],
    *,
    handling: HandlingCode,
    confidential: bool = False,
    handling_note: str | None = None,
    case_id: str | None = None,
    expires_at: datetime | None = None,
    created_at: datetime | None = None,
    progress: Progress = _no_progress,
) -> ProtectedHeader:
    """Seal ``files``, store them at the hub for every recipient of ``to``, then seal ``body``
    naming them and queue it; return the message's header. Run again after a failure, it
    resumes the uploads where they stopped (a file changed meanwhile is sealed anew)."""
    names = [f.name for f in files]
    if len(set(names)) != len(names):  # every recipient would refuse the body (section 13)
        raise ValueError(f"two attachments share a name: {names}")
    store = attachment_store(settings)
    recipients = list(dict.fromkeys(to))
    prepared = [store.prepare(f, max_bytes=settings.attachment_max_bytes) for f in files]
    async with connect(settings, f"cifta-{settings.party}-attachments") as nc:
        await check_room(nc, core, recipients, prepared, api=leaf_api(settings))
        for p in prepared:
            await upload(nc, settings.party, recipients, p, progress=progress)
    # model_copy does not validate: the field is checked as a recipient will check it
    manifests = _ATTACHMENTS.validate_python([*body.attachments, *(p.manifest for p in prepared)])
    header = core.compose(
        body.model_copy(update={"attachments": manifests}), recipients, handling=handling,
        confidential=confidential, handling_note=handling_note, case_id=case_id,
        expires_at=expires_at, created_at=created_at,
    )  # fmt: skip
    for f in files:
        store.forget(f)
    record_stored(core, header.msg_id, prepared)
    return header


def leaf_api(settings: NodeSettings) -> str | None:
    """The hub's JetStream API prefix for this node's own attachment stream (None: the plain
    one): a node on a state's leaf (it publishes into a local outbox) reaches it in the hub's
    domain."""
    return hub_api(settings.outbox_stream is not None)


async def check_room(
    nc: Client, core: NodeCore, recipients: Sequence[str], prepared: Sequence[Prepared],
    *, api: str | None = None,
) -> None:  # fmt: skip
    """Refuse (AttachmentTransferError, before anything is stored) files for a recipient that
    has not yet confirmed what it was sent before, once that and these would take more than its
    share of this node's room at the hub (``RECIPIENT_SHARE``). A recipient with nothing pending
    always gets its message, whatever its size, so a responsive recipient is never refused."""
    max_bytes, max_age = await stream_room(nc, core.party, api=api)
    if max_bytes <= 0:
        return
    share = max_bytes // RECIPIENT_SHARE
    new = sum(ciphertext_size(p.manifest.size) for p in prepared)
    since = core.clock() - timedelta(seconds=max_age) if max_age > 0 else None
    for recipient in recipients:
        held = core.store.sent_attachments.unconfirmed_bytes(recipient, since)
        if held and held + new > share:
            raise RecipientBacklog(recipient, held, share)


def record_stored(core: NodeCore, msg_id: str, prepared: Sequence[Prepared]) -> None:
    """Queue the audit events "attachment stored" of the queued message ``msg_id``."""
    message = core.store.message(msg_id)
    if message is None:
        return
    header = core.open_stored(message).header
    core.store.add_events(
        [
            core.event(
                EventType.ATTACHMENT_STORED,
                header,
                message.envelope,
                attachment_sha256=p.manifest.ciphertext_sha256,
            )
            for p in prepared
        ]
    )


#: wakes the filer of quarantine copies: a refusal holds its envelope for its copy
Quarantine = Callable[[], None]


class AttachmentReceiver:
    """The running node's loop that fetches the attachments of the messages it stored, and
    purges at the hub those of its own messages that their recipients confirmed."""

    def __init__(
        self,
        settings: NodeSettings,
        core: NodeCore,
        quarantine: Quarantine,
        wake: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.core = core
        self.files = attachment_store(settings)
        self._quarantine = quarantine
        self._wake_outbox = wake
        self._wake = asyncio.Event()
        self._nc: Client | None = None
        #: the one fetch each sender has running: a sender's large or many files hold only its own
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        #: one download of a file at a time, whichever senders name it (a forward names the file
        #: of the message it forwards): the second finds it held
        self._downloading: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def wake(self) -> None:
        """A message with attachments may have been stored."""
        self._wake.set()

    def stop(self) -> None:
        """End :meth:`run` at its next turn. (The node also cancels it; a cancellation can be
        lost inside a library's ``wait_for`` on Python 3.11, and this ends it all the same.)"""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Fetch what is due, each sender's messages in turn and the senders side by side, and
        purge what was confirmed; then wait to be woken (a message stored, a fetch finished) or
        for the next poll."""
        try:
            while not self._stopping:
                try:
                    busy = await self.round()
                except Exception as exc:
                    # (the store failing, a message that no longer opens): logged by name, the
                    # fetch stays pending and is tried at the next poll
                    log.warning("attachment_round_failed", error=type(exc).__name__)
                    busy = False
                if not busy:
                    # (asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation
                    # that comes as the wake is set, and the node's stop would be lost)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.settings.outbox_poll_s * 4):
                            await self._wake.wait()
                    self._wake.clear()
        finally:
            for task in self._fetching.values():
                task.cancel()
            await asyncio.gather(*self._fetching.values(), return_exceptions=True)
            if self._nc is not None:
                await self._nc.close()

    async def round(self, limit: int = 64) -> bool:
        """Start the fetches due of senders not already fetching and purge what was confirmed;
        True if a purge was made (a fetch that ends wakes the loop itself)."""
        await self.fetch_round(limit)
        return await self.purge_round(limit)

    async def _connection(self) -> Client:
        if self._nc is None:
            self._nc = await open_connection(
                self.settings, f"cifta-node-{self.core.party}-attachments", reconnect=True
            )
        return self._nc

    async def purge_round(self, limit: int = 64) -> bool:
        """Drop from this node's stream at the hub the objects of each recipient whose receipt
        confirmed them (docs/envelope.md section 13.6); True if any were due. A purge the hub
        did not make is tried again later (the stream's retention is the backstop), and the
        round stops there, so that fetches do not wait behind a hub that does not answer."""
        due = self.core.store.attachment_purges.due(time.time(), limit)
        if not due:
            return False
        nc = await self._connection()
        for item in due:
            try:
                for object_id in item.objects:
                    await purge(nc, self.core.party, item.recipient, object_id,
                                api=leaf_api(self.settings),
                                timeout_s=self.settings.publish_timeout_s)  # fmt: skip
            except (NatsError, TimeoutError) as exc:
                log.warning("attachment_purge_failed", msg_id=item.msg_id,
                            recipient=item.recipient, error=type(exc).__name__)  # fmt: skip
                delay = backoff(item.attempts + 1, self.settings.retry_initial_s, 300.0)
                self.core.store.attachment_purges.retry(
                    item.msg_id, item.recipient, time.time() + delay, type(exc).__name__
                )
                break  # the hub, not this item: the others wait for the next round, not in turn
            self.core.store.attachment_purges.settle(
                item.msg_id, item.recipient, now=self.core.clock()
            )
            log.info("attachments_purged", msg_id=item.msg_id, recipient=item.recipient,
                     count=len(item.objects))  # fmt: skip
        return True

    async def fetch_round(self, limit: int = 64) -> bool:
        """Start the first fetch due of each sender that has none running (design section 5:
        one state's large or many files delay no other state's), at most
        ``MAX_SENDERS_FETCHING`` at once; True if any started."""
        room = min(limit, MAX_SENDERS_FETCHING - len(self._fetching))
        if room <= 0:
            return False
        due = self.core.store.attachment_fetches.due(time.time(), room, busy=set(self._fetching))
        if not due:
            return False
        nc = await self._connection()
        for item in due:
            task = asyncio.create_task(self._fetch(nc, item), name=f"fetch-{item.sender}")
            self._fetching[item.sender] = task
        return True

    async def _fetch(self, nc: Client, item: AttachmentFetch) -> None:
        done = False
        try:
            await self._one(nc, item)
            done = True
        except Exception as exc:  # (a store failing, a message that no longer opens): later
            log.warning("attachment_fetch_failed", msg_id=item.msg_id,
                        error=type(exc).__name__)  # fmt: skip
            with contextlib.suppress(sqlite3.Error):  # a failing store: the next poll
                self._retry(item, type(exc).__name__)
        finally:
            del self._fetching[item.sender]
            if done:  # this sender's next message, if any, now; after a failure, at the poll
                self._wake.set()

    async def _one(self, nc: Client, item: AttachmentFetch) -> None:
        message = self.core.store.message(item.msg_id)
        if message is None or message.stream_seq is None:  # not (yet) stored as received
            self._retry(item, "message_not_stored")
            return
        opened = self.core.open_stored(message)
        h = opened.header
        manifests = opened.body.attachments
        try:
            for m in manifests:  # every size checked before any file is fetched
                if m.size > self.settings.attachment_max_bytes:
                    raise AttachmentError(
                        AttachmentFault.TOO_LARGE,
                        f"{m.size} bytes, over this node's {self.settings.attachment_max_bytes}",
                    )
            for m in manifests:
                lock = self._downloading.setdefault(m.ciphertext_sha256, asyncio.Lock())
                async with lock:
                    await fetch(
                        nc, self.core.party, item.sender, m, self.files,
                        max_bytes=self.settings.attachment_max_bytes,
                        timeout_s=self.settings.publish_timeout_s,
                    )  # fmt: skip
        except AttachmentError as exc:
            if exc.fault is AttachmentFault.MISSING and not self._missing_for_good(item):
                self._retry(item, "segment_not_found", missing=True)
                return
            self.files.discard_partial(manifests, item.sender)
            await self._refuse(message.envelope, message.stream_seq, message.stored_at, h, exc)
            return
        except (NatsError, TimeoutError) as exc:  # the hub, not the file: ask again later
            self._retry(item, type(exc).__name__)
            return
        digests = [m.ciphertext_sha256 for m in manifests]
        receipt = self.core.receipt(
            h, message.envelope_sha256, datetime.fromisoformat(message.stored_at), digests
        )
        events = [
            self.core.event(EventType.ATTACHMENT_FETCHED, h, message.envelope, attachment_sha256=d)
            for d in digests
        ]
        now = self.core.clock()
        with self.core.store.transaction():  # the receipt, its events and the fact together
            self.core.store.add_outgoing(receipt, now=now, events=events)
            self.core.store.attachment_fetches.settle(item.msg_id, now=now)
        self._wake_outbox()
        log.info("attachments_fetched", msg_id=h.msg_id, count=len(digests),
                 receipt=receipt.header.msg_id)  # fmt: skip

    def _retry(self, item: AttachmentFetch, detail: str, *, missing: bool = False) -> None:
        """Ask again later; ``missing``: the hub said a segment is not there (any other outcome
        starts the count of such answers again)."""
        delay = backoff(item.attempts + 1, self.settings.retry_initial_s, 300.0)
        self.core.store.attachment_fetches.retry(
            item.msg_id, time.time() + delay, detail, missing_at=time.time() if missing else None
        )

    def _missing_for_good(self, item: AttachmentFetch) -> bool:
        """The hub has said "not there" long enough, and often enough in a row, to be believed:
        this answer and at least MISSING_ATTEMPTS - 1 before it, the first of them
        ``attachment_missing_grace_s`` ago or more."""
        if item.missing_since is None or item.missing_count + 1 < MISSING_ATTEMPTS:
            return False
        return time.time() - item.missing_since >= self.settings.attachment_missing_grace_s

    async def _refuse(
        self, envelope: bytes, stream_seq: int, stored_at: str, h: ProtectedHeader,
        exc: AttachmentError,
    ) -> None:  # fmt: skip
        d = Delivery(
            subject=subjects.inbox_subject(self.core.party, h.sender, h.msg_id),
            data=envelope,
            stream_seq=stream_seq,
            num_delivered=1,
            stored_at=datetime.fromisoformat(stored_at),
        )
        reason = ReasonCode(exc.fault.value)
        sha = self.core.store.envelope_hash(h.msg_id) or ""
        with self.core.store.transaction():
            self.core.reject(d, h.sender, sha, reason, exc.detail, h)  # the envelope held
            self.core.store.attachment_fetches.settle(
                h.msg_id, now=self.core.clock(), reason=reason.value, detail=exc.detail
            )
        self._wake_outbox()
        self._quarantine()

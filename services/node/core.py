"""What a node does with messages, without the broker: compose and seal into the outbox; decide
what to do with each delivered envelope; open stored messages for an officer.

The broker-facing shell (``services/node/app.py``) calls :meth:`NodeCore.process` for each delivery
and carries out the :class:`Verdict`: acknowledge, or terminate (the refusal holds the envelope
for its quarantine copy, filed by ``quarantine.py``), or ask again later.

The sending half is in ``outbound.py``, the receiving half in ``inbound.py``, the vocabulary they
share with the shell in ``verdicts.py``; :class:`NodeCore` adds forwarding, export, the rebuild of
the procedures and reading, and is the one class callers use (its names are re-exported here).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from schemas import Body, ReasonCode
from schemas.audit import EventType
from schemas.protocol import PROTOCOL_FAMILY
from services.core.directory import Directory
from services.core.envelope import (
    EnvelopeError,
    OpenedEnvelope,
    ProtectedHeader,
    open_envelope,
    open_sender_copy,
    peek_header,
)
from services.core.keys import NodeKeys
from services.core.logs import get_logger
from services.node.casework import Casework
from services.node.inbound import Inbound
from services.node.outbound import (
    CLOCK_MEASUREMENT_TTL,
    CLOCK_STATE,
    Article12Refusal,
    ClockError,
    ComposeError,
)
from services.node.parking import (
    DEFAULT_DEFERRAL,
    DeferralBudget,
    ParkingLot,
    SpentBudgets,
)
from services.node.store import (
    Store,
    StoredMessage,
    iso,
    unpack_copy,
)
from services.node.verdicts import (
    DATE_REASONS,
    RECEIPT_KIND,
    Action,
    Delivery,
    Verdict,
    answer_outcome,
    publisher_of,
    reason_text,
)
from services.node.workflows import confidentiality as art12
from services.node.workflows.tracing import DEFAULT_POLICY, TracingPolicy

log = get_logger("cifta.node")


class RebuildRefused(Exception):
    """A rebuild of the procedures would drop messages this node sent; nothing was changed."""

    def __init__(self, why: Counter[str]) -> None:
        count = sum(why.values())
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(why.items()))
        super().__init__(
            f"casework not rebuilt: {count} message(s) this node sent cannot be opened "
            f"({reasons}), and the procedures they started would be lost. Nothing was changed; "
            "restore the key file that holds their keys (a keys.replaced-*.json, a backup) and "
            "run it again"
        )
        self.count = count
        self.reasons = dict(why)


class NodeCore(Inbound):
    """A node's message logic over its keys, its directory and its store."""

    def __init__(
        self,
        keys: NodeKeys,
        directory: Directory,
        store: Store,
        *,
        clock: Callable[[], datetime],
        require_pq_signature: bool = False,
        tracing_policy: TracingPolicy = DEFAULT_POLICY,
        deferral: DeferralBudget = DEFAULT_DEFERRAL,
        clock_tolerance_s: float = 120.0,
    ) -> None:
        self.party = keys.party
        self.keys = keys
        self.directory = directory
        self.store = store
        self.clock = clock
        self.require_pq_signature = require_pq_signature
        self.casework = Casework(keys.party, store, tracing_policy)
        self.parking = ParkingLot(store, deferral)
        self._budget_spent = SpentBudgets()
        self.clock_tolerance_s = clock_tolerance_s

    def forward(
        self, msg_id: str, to: Sequence[str], officer: str, *, files_stored: bool = False
    ) -> ProtectedHeader:
        """Share a received message with other states, as Art. XII allows: an H2 message only
        with its originator's consent for those states. The copy keeps its handling. A message
        with attachments is queued only with ``files_stored``: the caller stored this node's
        copy of each file at the hub for every state of ``to`` first (docs/envelope.md 13.4)."""
        message = self.store.message(msg_id)
        if message is None:
            raise ComposeError(f"no message {msg_id}")
        if message.direction != "in":
            raise ComposeError(f"{msg_id} was sent by this node: send it again instead")
        if not message.kind.startswith("info."):
            raise ComposeError(
                "only information exchanges (info.*) are forwarded; a procedure's messages go to "
                "its parties"
            )
        view = self.casework.received_view(message)
        assert view is not None
        refused = art12.may_forward(view, to, self.clock())
        if refused is not None:
            log.info("forward_refused", msg_id=msg_id, to=list(to), rule=refused.rule)
            raise Article12Refusal(refused)
        opened = self.open_stored(message)
        if opened.body.attachments and not files_stored:  # else refused there as missing
            raise ComposeError("a message's attachments are stored at the hub before its copy")
        h = opened.header
        # the copy's own events (sent, stored, delivered) say where it went
        event = self.event(EventType.FORWARDED, h, message.envelope, officer=officer, opened=opened)
        with self.store.transaction():
            copy = self._queue(
                opened.body, to, events=[event], handling=h.handling,
                confidential=h.confidential, handling_note=h.handling_note, case_id=h.case_id,
            )  # fmt: skip
            self.store.add_forward(copy.msg_id, msg_id, officer, self.clock())
        return copy

    def export(
        self,
        msg_id: str,
        officer: str,
        *,
        judicial: bool,
        write: Callable[[OpenedEnvelope], None] | None = None,
    ) -> OpenedEnvelope:
        """Take a received message out of the network (a file for a court or another agency), as
        Art. XII allows. ``write`` puts it where it goes; the export is recorded as an audit
        event once that succeeded (a failed write leaves no export on record)."""
        message = self.store.message(msg_id)
        if message is None:
            raise ComposeError(f"no message {msg_id}")
        opened = self.open_stored(message)
        # a forwarded copy is exported under the rules of the message it copies
        original = self.store.original_of(msg_id)
        source = self.store.message(original) if original is not None else message
        view = None if source is None else self.casework.received_view(source)
        if view is not None:  # what we wrote ourselves is ours to export
            refused = art12.may_export(view, judicial=judicial, at=self.clock())
            if refused is not None:
                log.info("export_refused", msg_id=msg_id, judicial=judicial, rule=refused.rule)
                raise Article12Refusal(refused)
        if write is not None:
            write(opened)
        event = self.event(
            EventType.EXPORTED, opened.header, message.envelope, officer=officer, opened=opened
        )
        self.store.add_events([event])
        log.info("message_exported", msg_id=msg_id, judicial=judicial, officer=officer)
        return opened

    def rebuild_casework(self) -> tuple[int, int]:
        """Make the procedures' state again from the stored messages; (applied, skipped).

        Raises :class:`RebuildRefused`, changing nothing, when any message this node sent cannot
        be opened: the procedures it started would silently vanish. A received message that no
        longer opens is skipped and counted (it was checked when it arrived)."""
        from services.node.casework import FAMILIES

        # Opening every message takes a while: done before the write lock is taken, so that a
        # running node sharing the file is not held up to its busy timeout meanwhile.
        rebuild = _Rebuild()
        for m in self.store.messages_of_families(FAMILIES):
            rebuild.open(m, self.open_stored)
        with self.store.transaction():
            # What was stored while the rest was opened (a few messages at most) is opened
            # under the lock, so that the replay sees every message in the order taken.
            order = self.store.message_ids_of_families(FAMILIES)
            for msg_id in order:
                late = None if rebuild.seen(msg_id) else self.store.message(msg_id)
                if late is not None:
                    rebuild.open(late, self.open_stored)
            if rebuild.own:  # before replay clears anything: the transaction changes nothing
                raise RebuildRefused(rebuild.own)
            applied, skipped = self.casework.replay(rebuild.in_order(order))
        unreadable = len(rebuild.unreadable)
        log.info("casework_rebuilt", applied=applied, skipped=skipped, unreadable=unreadable)
        return applied, skipped + unreadable

    # -- reading ---------------------------------------------------------------------------------

    def open_stored(self, message: StoredMessage) -> OpenedEnvelope:
        """Open a stored message: what we received, or our local copy of what we sent.

        Checked again against the directory, as of the time the message was stored.
        """
        if message.direction == "out":
            if message.local_copy is None:
                raise ComposeError("the node's own receipts and rejections are not kept readable")
            kid, wrapped = unpack_copy(message.local_copy)
            # verified against the key the header names: the current one, or one this node
            # signed with before a rotation (its key history)
            named = peek_header(message.envelope).sender_kid
            signer = self.keys.signing_public_key(named)
            if signer is None:
                raise EnvelopeError(
                    ReasonCode.UNKNOWN_SENDER_KEY,
                    f"signed with key {named}, which is not in this node's key history",
                )
            return open_sender_copy(message.envelope, kid, wrapped, keys=self.keys, signer=signer)
        stored_at = datetime.fromisoformat(message.stored_at)
        return open_envelope(
            message.envelope,
            keys=self.keys,
            directory=self.directory,
            now=stored_at,
            stored_at=stored_at,
        )

    def read(self, msg_id: str, officer: str) -> tuple[StoredMessage, OpenedEnvelope]:
        """Open a message for an officer, recording who opened it and when."""
        message = self.store.message(msg_id)
        if message is None:
            raise KeyError(msg_id)
        opened = self.open_stored(message)
        event = self.event(
            EventType.OPENED, opened.header, message.envelope, officer=officer, opened=opened
        )
        self.store.record_open(msg_id, officer, self.clock(), events=[event])
        log.info("message_opened", msg_id=msg_id, kind=message.kind, officer=officer)
        return message, opened


class _Rebuild:
    """The messages a rebuild of the procedures opened, and those it could not open."""

    def __init__(self) -> None:
        self.opened: dict[str, tuple[ProtectedHeader, Body]] = {}
        self.unreadable: set[str] = set()
        self.own = Counter[str]()  # why messages this node sent cannot be opened

    def seen(self, msg_id: str) -> bool:
        return msg_id in self.opened or msg_id in self.unreadable

    def open(
        self, m: StoredMessage, open_stored: Callable[[StoredMessage], OpenedEnvelope]
    ) -> None:
        try:
            o = open_stored(m)
        except (EnvelopeError, ComposeError) as exc:
            # a key since lost, say: the rest is rebuilt, the operator told
            log.error("casework_message_unreadable", msg_id=m.msg_id, error=str(exc))
            if m.direction == "out":
                self.own[exc.reason.value if isinstance(exc, EnvelopeError) else str(exc)] += 1
            self.unreadable.add(m.msg_id)
            return
        self.opened[m.msg_id] = (o.header, o.body)

    def in_order(self, order: Sequence[str]) -> list[tuple[ProtectedHeader, Body]]:
        return [self.opened[i] for i in order if i in self.opened]


__all__ = [
    "CLOCK_MEASUREMENT_TTL",
    "CLOCK_STATE",
    "DATE_REASONS",
    "PROTOCOL_FAMILY",
    "RECEIPT_KIND",
    "Action",
    "Article12Refusal",
    "ClockError",
    "ComposeError",
    "Delivery",
    "NodeCore",
    "RebuildRefused",
    "Verdict",
    "answer_outcome",
    "iso",
    "publisher_of",
    "reason_text",
]

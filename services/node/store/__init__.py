"""The node's SQLite store (WAL): messages sealed at rest, the transactional outbox, what the
recipients answered, what this node refused, and who opened what.

Messages are kept as envelopes: an inbound one exactly as received (sealed to this node); an
outbound one as sent plus a *local copy* sealed to this node's own key, so the sender can read what
it sent. Nothing here is plaintext but routing and handling metadata.

Which module holds what: ``db`` the connection, transactions and savepoints; ``migrations`` the
versioned schema; ``records`` the values handed out; one repository per table family
(``messages``, ``outbox``, ``audit``, ``casework``, ``refusals``, ``parked``, ``node_state``);
``facade`` the :class:`Store` callers use, which composes the repositories' writes about one fact
in one transaction.
"""

from services.node.store.db import iso
from services.node.store.facade import Store
from services.node.store.migrations import SCHEMA_VERSION
from services.node.store.parked import Parked
from services.node.store.records import (
    Event,
    OutboxItem,
    Outcome,
    Outgoing,
    RecipientStatus,
    StoredMessage,
    Unanswered,
    pack_copy,
    unpack_copy,
)
from services.node.store.refusals import QuarantineItem

__all__ = [
    "SCHEMA_VERSION",
    "Event",
    "OutboxItem",
    "Outcome",
    "Outgoing",
    "Parked",
    "QuarantineItem",
    "RecipientStatus",
    "Store",
    "StoredMessage",
    "Unanswered",
    "iso",
    "pack_copy",
    "unpack_copy",
]

"""Every NATS subject, stream and consumer name, built in one place (design section 5)."""

from __future__ import annotations

import re

_PARTY = re.compile(r"^[A-Z]{3}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

#: The durable pull consumer each node reads its inbox through.
NODE_CONSUMER = "node"


def _party(code: str) -> str:
    if not _PARTY.fullmatch(code):
        raise ValueError(f"not a party code: {code!r}")
    return code


def party_code(code: str) -> str:
    """``code`` if it is a party code (ValueError otherwise): safe in a subject or a file name."""
    return _party(code)


def inbox_stream(state: str) -> str:
    """``INBOX_<state>``: the stream, in the state's account, holding what others send it."""
    return f"INBOX_{_party(state)}"


def inbox_filter(state: str) -> str:
    """All subjects ``inbox_stream(state)`` captures."""
    return f"inbox.{_party(state)}.>"


def inbox_subject(recipient: str, sender: str, msg_id: str) -> str:
    """Where ``sender`` publishes one message for ``recipient`` (through a service import)."""
    if not _TOKEN.fullmatch(msg_id):
        raise ValueError(f"not a subject token: {msg_id!r}")
    return f"inbox.{_party(recipient)}.{_party(sender)}.{msg_id}"


def inbox_export(recipient: str, sender: str) -> str:
    """The service export ``recipient`` grants to ``sender``'s account alone."""
    return f"inbox.{_party(recipient)}.{_party(sender)}.>"


def parse_inbox(subject: str) -> tuple[str, str] | None:
    """(recipient, publisher) of an inbox subject ``inbox.<recipient>.<publisher>.<msg_id>``:
    the broker's imports let an account publish only under its own code, so the publisher is a
    fact, not a claim (design section 5). None for any other subject."""
    parts = subject.split(".")
    if len(parts) < 4 or parts[0] != "inbox":
        return None
    return parts[1], parts[2]


def consumer_info_subject(stream: str, consumer: str) -> str:
    """JetStream's API subject for one consumer's info (its config, its counts, the server's
    ``ts``)."""
    return f"$JS.API.CONSUMER.INFO.{stream}.{consumer}"


def direct_get_subject(stream: str) -> str:
    """JetStream's API subject for reading a stream's messages by sequence (``allow_direct``)."""
    return f"$JS.API.DIRECT.GET.{stream}"


def quarantine_stream(state: str) -> str:
    """``QUARANTINE_<state>``: where a node copies what it could not accept."""
    return f"QUARANTINE_{_party(state)}"


def quarantine_subject(state: str, reason: str) -> str:
    """Where a node files a quarantined message, by reason code."""
    if not _TOKEN.fullmatch(reason):
        raise ValueError(f"not a subject token: {reason!r}")
    return f"quarantine.{_party(state)}.{reason}"


def quarantine_filter(state: str) -> str:
    return f"quarantine.{_party(state)}.>"


def undelivered_stream(state: str) -> str:
    """``UNDELIVERED_<state>``: the record of inbox messages the node's consumer gave up on."""
    return f"UNDELIVERED_{_party(state)}"


def max_deliveries_advisory(state: str) -> str:
    """The advisory JetStream publishes in ``state``'s account when a message of its inbox
    reaches the node consumer's ``max_deliver`` (``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES``)."""
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{inbox_stream(state)}.{NODE_CONSUMER}"


#: The key-value bucket, in every state's account, holding the signed directory entries.
DIRECTORY_BUCKET = "DIRECTORY"
DIRECTORY_STREAM = f"KV_{DIRECTORY_BUCKET}"


def directory_publish_subject(state: str, party: str) -> str:
    """Where the directory service puts ``party``'s entry into ``state``'s bucket: the secretariat
    account imports each state's ``$KV.DIRECTORY.>`` under ``directory.<state>.>``."""
    return f"directory.{_party(state)}.{_party(party)}"


def directory_import_prefix(state: str) -> str:
    return f"directory.{_party(state)}.>"


# -- audit -------------------------------------------------------------------------------------

#: The AUDIT account's stream: every inbox, sourced across accounts, and the nodes' events.
AUDIT_STREAM = "AUDIT"
#: The single consumer the audit service once read everything through (replaced by one per party).
AUDIT_CONSUMER = "audit"
AUDIT_ORIGIN = "cifta-exchange/audit"
#: Where the audit service publishes each checkpoint it signs: every state may subscribe.
AUDIT_CHECKPOINTS = "audit.checkpoints"


def audit_events_subject(state: str, event_id: str) -> str:
    """Where ``state``'s node files one signed event (a service the AUDIT account exports)."""
    if not _TOKEN.fullmatch(event_id):
        raise ValueError(f"not a subject token: {event_id!r}")
    return f"audit.events.{_party(state)}.{event_id}"


def audit_events_export(state: str) -> str:
    return f"audit.events.{_party(state)}.>"


def audit_query_subject(party: str) -> str:
    """Where ``party`` asks the audit service: for proofs, its records, to file a cosignature."""
    return f"audit.query.{_party(party)}"


def audit_source_api(state: str) -> str:
    """The prefix under which the AUDIT account reaches ``state``'s JetStream API to source it."""
    return f"$JS.{_party(state)}.API"


def audit_source_deliver(state: str) -> str:
    return f"deliver.audit.{_party(state)}"


# -- blind record lookup (docs/lookup.md) ------------------------------------------------------

#: The key-value bucket, in the secretariat's account, holding every state's signed filter under
#: the state's code. Each state may write its own key alone; every state may read every key.
LOOKUP_BUCKET = "LOOKUP_FILTERS"
LOOKUP_STREAM = f"KV_{LOOKUP_BUCKET}"
#: The prefix under which a state's account reaches the secretariat's JetStream API to read
#: filters (a renamed service import, the same pattern as the audit account's sources).
LOOKUP_API = "$JS.LOOKUP.API"


def lookup_filter_key(state: str) -> str:
    """The subject a state puts its filter on (a service the secretariat exports to it alone)."""
    return f"$KV.{LOOKUP_BUCKET}.{_party(state)}"


def lookup_filter_read() -> str:
    """Direct gets of the filter bucket, as the secretariat's account exports them."""
    return f"$JS.API.DIRECT.GET.{LOOKUP_STREAM}.>"


def lookup_filter_read_import() -> str:
    return f"{LOOKUP_API}.DIRECT.GET.{LOOKUP_STREAM}.>"


def lookup_evaluation_subject(answerer: str, asker: str) -> str:
    """Where ``asker`` asks ``answerer`` to evaluate: a service ``answerer`` exports to ``asker``'s
    account alone, so the asker's code in the subject is a fact, as in an inbox subject."""
    return f"lookup.eval.{_party(answerer)}.{_party(asker)}"


def lookup_evaluation_filter(answerer: str) -> str:
    return f"lookup.eval.{_party(answerer)}.*"


def parse_lookup_evaluation(subject: str) -> tuple[str, str] | None:
    """(answerer, asker) of an evaluation subject; None for any other subject."""
    parts = subject.split(".")
    if len(parts) != 4 or parts[:2] != ["lookup", "eval"] or not _PARTY.fullmatch(parts[3]):
        return None
    return parts[2], parts[3]


#: Where the audit service copies a record it gave up on after the consumer's last delivery.
AUDIT_QUARANTINE_STREAM = "AUDIT_QUARANTINE"
AUDIT_QUARANTINE_FILTER = "audit.quarantine.>"


def audit_quarantine_subject(reason: str) -> str:
    if not _TOKEN.fullmatch(reason):
        raise ValueError(f"not a subject token: {reason!r}")
    return f"audit.quarantine.{reason}"


def audit_consumer(party: str) -> str:
    """The audit service's consumer of what ``party`` is answerable for: the envelopes it
    published (sourced from every inbox) and the events it filed. One per party, so that a
    state's flood waits behind itself alone (design section 5)."""
    return f"audit_{_party(party)}"


def audit_consumer_filters(party: str) -> list[str]:
    return [f"inbox.*.{_party(party)}.>", f"audit.events.{_party(party)}.>"]


# -- a state's leaf node (docs/operations.md, "A state's leaf") ---------------------------------

#: The hub's JetStream domain: a leaf reaches the hub's streams under ``$JS.hub.API``.
HUB_DOMAIN = "hub"


def hub_api() -> str:
    return f"$JS.{HUB_DOMAIN}.API"


def leaf_domain(state: str) -> str:
    """The JetStream domain of ``state``'s own leaf server."""
    return f"leaf-{_party(state)}"


def leaf_api(state: str) -> str:
    """The prefix under which ``state``'s account at the hub reaches its leaf's JetStream."""
    return f"$JS.{leaf_domain(state)}.API"


def leaf_outbox_stream(state: str) -> str:
    """``OUTBOX_<state>``: on the leaf, what the state's node sends, held until the hub has it."""
    return f"OUTBOX_{_party(state)}"


def leaf_outbox_filter(state: str) -> str:
    """Every inbox subject ``state`` may publish under: the only ones its outbox captures."""
    return f"inbox.*.{_party(state)}.>"


def relay_stream(state: str) -> str:
    """``RELAY_<state>``: at the hub, in the state's account, its leaf's outbox sourced (a
    stream name unique per state: every recipient's inbox sources each relay by name)."""
    return f"RELAY_{_party(state)}"


def relay_api(sender: str) -> str:
    """The prefix under which a recipient's account reaches ``sender``'s relay to source it."""
    return f"$JS.RELAY_{_party(sender)}.API"


def relay_deliver(sender: str, recipient: str) -> str:
    """Where ``sender``'s relay delivers what ``recipient``'s inbox sources from it."""
    return f"deliver.relay.{_party(sender)}.{_party(recipient)}"


def leaf_deliver(state: str) -> str:
    """The prefix of every delivery crossing ``state``'s leaf link (mirrors and the relay)."""
    return f"deliver.leaf.{_party(state)}"


#: The durable consumers a leaf link runs on (nats-server's durable sourcing, ADR-60): on the
#: leaf's outbox, which the hub's relay sources; on the hub's inbox, which the leaf mirrors.
RELAY_CONSUMER = "relay"
LEAF_MIRROR_CONSUMER = "leaf"


def relay_consumer_deliver(state: str) -> str:
    return f"{leaf_deliver(state)}.out"


def leaf_mirror_deliver(state: str) -> str:
    return f"{leaf_deliver(state)}.inbox"


def leaf_directory_deliver(state: str) -> str:
    return f"{leaf_deliver(state)}.directory"


# -- attachments (docs/envelope.md section 13) -------------------------------------------------


def attachment_stream(sender: str) -> str:
    """``ATTACH_<sender>``: the stream, in the sender's own account, holding the encrypted
    attachments it stores for its recipients, one message per segment. Kept by the sender, so
    that what one state stores counts against its own account and no other state's."""
    return f"ATTACH_{_party(sender)}"


def attachment_filter(sender: str) -> str:
    """All subjects ``attachment_stream(sender)`` captures: ``attach.<recipient>.<sender>.>``."""
    return f"attach.*.{_party(sender)}.>"


def attachment_filter_former(state: str) -> str:
    """What ``attachment_stream(state)`` captured before the sender's streams: the objects the
    other states stored for ``state``. Provisioning purges it (an upgrade's leftovers)."""
    return f"attach.{_party(state)}.>"


def attachment_read_export(sender: str, recipient: str) -> str:
    """The service export ``sender`` grants to ``recipient``'s account alone: direct gets of its
    attachment stream whose subject, in the API subject itself, is one addressed to
    ``recipient``. nats-server answers such a get with that subject's last message and refuses
    a request body that asks for another subject or a sequence (``processDirectGetLastBySubject
    Request``), so the export confines ``recipient`` to its own objects."""
    stream = attachment_stream(sender)
    return f"$JS.API.DIRECT.GET.{stream}.attach.{_party(recipient)}.{_party(sender)}.>"


def attachment_api(sender: str) -> str:
    """The prefix under which a recipient's account reaches ``sender``'s attachment stream (a
    renamed service import, so that it never meets the account's own JetStream API)."""
    return f"$JS.ATTACH.{_party(sender)}.API"


def attachment_read_import(sender: str, recipient: str) -> str:
    """``attachment_read_export`` as ``recipient``'s account imports it."""
    stream = attachment_stream(sender)
    return (
        f"{attachment_api(sender)}.DIRECT.GET.{stream}.attach.{_party(recipient)}."
        f"{_party(sender)}.>"
    )


def attachment_reads(recipient: str) -> str:
    """Every import ``attachment_read_import(*, recipient)``: what the recipient's node may ask."""
    return f"$JS.ATTACH.*.API.DIRECT.GET.*.attach.{_party(recipient)}.>"


def _object(object_id: str) -> str:
    if not re.fullmatch(r"^[0-9a-f]{64}$", object_id):
        raise ValueError(f"not an attachment object id: {object_id!r}")
    return object_id


def attachment_chunk_subject(recipient: str, sender: str, object_id: str, index: int) -> str:
    """Where segment ``index`` (16 chunks) of object ``object_id`` (its ciphertext's SHA-256) is
    stored: one subject per segment, so that it is read by subject and never stored twice."""
    if index < 0:
        raise ValueError("a chunk index is not negative")
    return f"attach.{_party(recipient)}.{_party(sender)}.{_object(object_id)}.{index}"


def attachment_object_filter(recipient: str, sender: str, object_id: str) -> str:
    """Every segment of one object stored for one recipient (the sender purges them once that
    recipient's receipt confirms its own copy)."""
    return f"attach.{_party(recipient)}.{_party(sender)}.{_object(object_id)}.*"


def stream_purge_subject(stream: str) -> str:
    """JetStream's API subject for purging a stream (with a subject filter: some of it)."""
    return f"$JS.API.STREAM.PURGE.{stream}"

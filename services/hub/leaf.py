"""The hub's side of a state's leaf node (docs/operations.md, "A state's leaf").

A state may run its own nats-server as a leaf node bound to its account on the hub, with its own
JetStream domain (``leaf-<state>``). The flow, NATS's own sources and mirrors only:

- out: the node publishes into ``OUTBOX_<A>`` on its leaf (limits retention, a duplicate window,
  subjects ``inbox.*.A.>``), so its officers' messages are stored locally through a cut link. The
  hub's ``RELAY_<A>``, in A's account, sources that outbox across the leaf's domain. Each
  recipient's inbox ``INBOX_<B>`` sources ``RELAY_<A>`` across accounts, filtered to
  ``inbox.B.A.>``: the filter is set by the hub's provisioning, so a leaf that stored a message
  under another sender's or another recipient's name gets it nowhere. ``Nats-Msg-Id`` travels
  with every sourced message and each stream's duplicate window applies to it.
- in: the leaf mirrors ``INBOX_<A>`` (and the directory bucket) from the hub's domain; the node
  reads the local mirror through its usual durable consumer. The hub's inbox stays where every
  sender writes and where the AUDIT stream sources it, as before. Attachments are not mirrored:
  the node reads them from each sender's stream at the hub across the link, as a node on the hub
  does (services/hub/attachments.py), and fetches again later when the link is cut. What it
  sends with files it stores straight into its own ``ATTACH_<A>`` at the hub across the link
  (not through the outbox: the message is queued only once every segment's PubAck came back
  from the hub), so a send with files needs the link up, and is refused, to be run again,
  while it is cut.

The hub enforces the leaf's reach with the permissions of the leaf's user (written, as nats-server
reads them for a leaf connection, from the leaf's side: ``publish`` is what the leaf may send into
the hub, ``subscribe`` what the hub may send to it). The leaf may not publish into any inbox
directly: its messages reach the hub through the relay alone, never twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.core import subjects
from services.hub import attachments, lookup

#: nats-server's reply prefix for the requests a stream sends to set up a source or a mirror.
SOURCE_REPLIES = "$JSC.R.*"


def leaf_permissions(state: str) -> dict[str, object]:
    """The hub-side permissions of ``state``'s leaf user (from the leaf's side, see above)."""
    inbox, kv = subjects.inbox_stream(state), subjects.DIRECTORY_STREAM
    outbox, hub = subjects.leaf_outbox_stream(state), subjects.hub_api()
    leaf = subjects.leaf_api(state)
    return {
        "publish": {
            "allow": [
                # its mirrors of its own inbox and directory bucket, on the hub's durable consumers
                *(f"{hub}.CONSUMER.RESET.{s}.{subjects.LEAF_MIRROR_CONSUMER}" for s in (inbox, kv)),
                f"$JS.FC.{inbox}.>",
                f"$JS.FC.{kv}.>",
                # the relay's source: answers to its requests and the deliveries themselves
                SOURCE_REPLIES,
                subjects.relay_consumer_deliver(state),
                # what its node does at the hub besides sending: quarantine copies, audit events
                # and questions, lookups (never an inbox: those go through the relay)
                subjects.quarantine_filter(state),
                subjects.audit_events_export(state),
                subjects.audit_query_subject(state),
                *lookup.node_publish(state),
                # its own attachments, stored in its stream at the hub (its size, a purge once
                # a receipt confirms), and those others stored for it, read from their streams
                # (confined by their exports): services/hub/attachments.py
                *attachments.leaf_publish(state),
            ]
        },
        "subscribe": {
            "allow": [
                "_INBOX.>",
                SOURCE_REPLIES,
                subjects.leaf_mirror_deliver(state),
                subjects.leaf_directory_deliver(state),
                # the relay's requests to the leaf's JetStream: its own consumer on the outbox
                f"{leaf}.CONSUMER.RESET.{outbox}.{subjects.RELAY_CONSUMER}",
                f"$JS.FC.{outbox}.>",
                subjects.AUDIT_CHECKPOINTS,
                *lookup.node_subscribe(state),
            ]
        },
    }


def relay_exports(state: str, recipients: Sequence[str]) -> list[dict[str, object]]:
    """What ``state``'s account grants each recipient so that its inbox may source the relay:
    a consumer on ``inbox.<recipient>.<state>.>`` and nothing else (nats-server checks that the
    filter in the subject is the consumer's), its deliveries, and the flow-control replies a
    cross-account source needs (design section 5)."""
    relay = subjects.relay_stream(state)
    if not recipients:
        return []
    exports: list[dict[str, object]] = [
        {"service": f"$JS.FC.{relay}.>", "accounts": list(recipients)}
    ]
    for recipient in recipients:
        exports += [
            {"service": _relay_create("$JS.API", relay, recipient, state), "accounts": [recipient]},
            {"stream": f"{subjects.relay_deliver(state, recipient)}.>", "accounts": [recipient]},
        ]
    return exports


def relay_imports(recipient: str, senders: Sequence[str]) -> list[dict[str, object]]:
    """``recipient``'s side of :func:`relay_exports`, for every sender on a leaf."""
    imports: list[dict[str, object]] = []
    for sender in senders:
        relay = subjects.relay_stream(sender)
        create = _relay_create("$JS.API", relay, recipient, sender)
        # renamed, so that the recipient's account reaches this sender's JetStream alone
        local = _relay_create(subjects.relay_api(sender), relay, recipient, sender)
        deliver = f"{subjects.relay_deliver(sender, recipient)}.>"
        imports += [
            {"service": {"account": sender, "subject": create}, "to": local},
            {"service": {"account": sender, "subject": f"$JS.FC.{relay}.>"}},
            {"stream": {"account": sender, "subject": deliver}},
        ]
    return imports


def _relay_create(prefix: str, relay: str, recipient: str, sender: str) -> str:
    """The filtered consumer-create subject (``$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>``)
    nats-server sends to set up a filtered source."""
    return f"{prefix}.CONSUMER.CREATE.{relay}.*.{subjects.inbox_export(recipient, sender)}"

"""The hub's part of attachments (docs/envelope.md section 13), rendered into the config.

Per state ``A``: a file stream ``ATTACH_A`` on ``attach.*.A.>`` in ``A``'s own account, one
message per segment, on ``attach.<recipient>.A.<object>.<segment>``. ``A``'s node stores its own
objects there (a local publish: no other account can write into the stream) and purges those of
a recipient once that recipient's receipt confirms its own copy. What ``A`` stores counts against
``A``'s account alone, so a state that fills its attachment stream delays its own files and no
other state's (design section 5: a hostile peer delays no one else). One stream per sender, not
per pair of states (35 streams, not 1,190): the exports below keep the recipients apart.

For each other state ``B``, ``A`` exports direct gets of ``ATTACH_A`` whose subject, written in the
API subject, is one addressed to ``B`` (``$JS.API.DIRECT.GET.ATTACH_A.attach.B.A.>``), to account
``B`` alone; ``B`` imports it under ``$JS.ATTACH.A.API``. nats-server answers such a request with
that subject's last message and refuses a body naming another subject or a sequence
(``processDirectGetLastBySubjectRequest``), and no other API subject of ``ATTACH_A`` is exported:
``B`` reads what was addressed to it and cannot read another recipient's objects, list, inspect,
consume, purge or write the stream.

Not nats-py's object store: its client needs the bucket stream's JetStream API (info, purge,
consumers) from the reader, which cannot be granted across accounts without letting one reader
see every other's objects, and its ``get`` holds a whole object in memory.
"""

from __future__ import annotations

from nats.js import api

from services.core import subjects

#: Room for the NATS headers around the largest segment (16 chunks of 64 KiB and their tags).
MAX_CHUNK_MESSAGE = 1024 * 1024 + 16 * 1024


def node_publish(state: str) -> list[str]:
    """What ``state``'s node user may publish for attachments."""
    stream = subjects.attachment_stream(state)
    return [
        subjects.attachment_filter(state),  # store its own segments, for any recipient
        # its stream's size and retention: a recipient's share of it (services/node/attachments)
        f"$JS.API.STREAM.INFO.{stream}",
        # drop a recipient's objects once its receipt confirms them (a purge with a filter)
        f"$JS.API.STREAM.PURGE.{stream}",
        # read what others stored for it, through each sender's import (confined by the export)
        subjects.attachment_reads(state),
    ]


def leaf_publish(state: str) -> list[str]:
    """What ``state``'s leaf may send into the hub for attachments (services/hub/leaf.py): what
    :func:`node_publish` grants a node on the hub, the stream's calls in the hub's JetStream
    domain, since the leaf's own JetStream answers the plain API prefix."""
    stream, hub = subjects.attachment_stream(state), subjects.hub_api()
    return [
        subjects.attachment_filter(state),  # its segments, into its own stream at the hub
        f"{hub}.STREAM.INFO.{stream}",
        f"{hub}.STREAM.PURGE.{stream}",
        subjects.attachment_reads(state),
    ]


def state_exports(state: str, others: list[str]) -> list[dict[str, object]]:
    """``state`` lets each other state read, from ``state``'s stream, what is addressed to it."""
    return [
        {"service": subjects.attachment_read_export(state, recipient), "accounts": [recipient]}
        for recipient in others
    ]


def state_imports(state: str, others: list[str]) -> list[dict[str, object]]:
    """``state`` reads what each other state stored for it, under that sender's prefix."""
    return [
        {
            "service": {
                "account": sender,
                "subject": subjects.attachment_read_export(sender, state),
            },
            "to": subjects.attachment_read_import(sender, state),
        }
        for sender in others
    ]


def stream_config(
    state: str, *, max_bytes: int, max_age_s: float, duplicate_window_s: float, replicas: int
) -> api.StreamConfig:
    """``ATTACH_<state>``: what ``state`` stores for its recipients. Objects go when their
    recipient's receipt confirms them, or with the inbox's retention (a backstop for a recipient
    that never answers). A full stream refuses new segments (the sender's upload stops with a
    clear error and resumes later); no one may delete a single segment."""
    return api.StreamConfig(
        name=subjects.attachment_stream(state),
        description=f"Encrypted attachments {state} stores for its recipients, in segments",
        subjects=[subjects.attachment_filter(state)],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.NEW,
        max_bytes=max_bytes,
        max_age=max_age_s,
        max_msg_size=MAX_CHUNK_MESSAGE,
        max_msgs_per_subject=1,  # a segment stored again replaces itself: never two copies
        duplicate_window=duplicate_window_s,
        num_replicas=replicas,
        allow_direct=True,  # the recipients' reads, through the exports above
        deny_delete=True,
        deny_purge=False,  # the sender's node purges what a receipt confirmed (section 13.6)
    )

"""The hub's part of attachments (docs/envelope.md section 13), rendered into the config.

Per state ``B``: a file stream ``ATTACH_B`` on ``attach.B.>`` in ``B``'s account, one message per
chunk. ``B`` exports ``attach.B.A.>`` to account ``A`` alone, which imports it: ``A`` can store
chunks for ``B`` under its own code and nowhere else, cannot read them, and cannot write over
another state's objects, exactly as it writes into ``B``'s inbox. ``B``'s node reads its own
stream by subject (direct get) and purges an object once it holds its own copy; nobody else can.

Not nats-py's object store: its client needs the bucket stream's JetStream API (info, purge,
consumers) from the writer, which cannot be granted across accounts without letting one sender
read or purge every other sender's objects, and its ``get`` holds a whole object in memory. The
layout here is the object store's idea (chunks as messages, one bucket per owner) with the
isolation of the inboxes.
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
        f"attach.*.{state}.>",  # store chunks for any state it was granted, as itself
        subjects.direct_get_subject(stream),  # read its own objects by subject
        f"{subjects.direct_get_subject(stream)}.>",
        subjects.stream_purge_subject(stream),  # drop an object once it holds its own copy
        f"$JS.API.STREAM.INFO.{stream}",
    ]


def state_exports(state: str, others: list[str]) -> list[dict[str, object]]:
    return [
        {"service": subjects.attachment_export(state, sender), "accounts": [sender]}
        for sender in others
    ]


def state_imports(state: str, others: list[str]) -> list[dict[str, object]]:
    return [
        {
            "service": {
                "account": recipient,
                "subject": subjects.attachment_export(recipient, state),
            }
        }
        for recipient in others
    ]


def stream_config(
    state: str, *, max_bytes: int, max_age_s: float, duplicate_window_s: float, replicas: int
) -> api.StreamConfig:
    """``ATTACH_<state>``: chunks expire with the inbox's retention, or sooner when the node
    purges an object it has fetched. A full stream refuses new chunks (the sender's upload
    stops with a clear error and resumes later); no one may delete a single chunk."""
    return api.StreamConfig(
        name=subjects.attachment_stream(state),
        description=f"Encrypted attachments addressed to {state}, in segments of chunks",
        subjects=[subjects.attachment_filter(state)],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.NEW,
        max_bytes=max_bytes,
        max_age=max_age_s,
        max_msg_size=MAX_CHUNK_MESSAGE,
        max_msgs_per_subject=1,  # a chunk stored again replaces itself: never two copies
        duplicate_window=duplicate_window_s,
        num_replicas=replicas,
        allow_direct=True,
        deny_delete=True,
        deny_purge=False,  # the recipient's node purges what it fetched (docs, section 13.6)
    )

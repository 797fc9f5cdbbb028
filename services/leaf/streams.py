"""The leaf's local streams and the node's consumer (services/hub/leaf.py says the flow).

- ``OUTBOX_<A>``: what the node sends, stored on the leaf whether or not the link is up. Limits
  retention, never work-queue: a work-queue stream on a leaf loses what it acknowledged to a
  source that then fails (the pitfall issue 16 names). Its duplicate window drops the node's own
  retries; a full outbox refuses (the node's store keeps the message and tries again).
- ``INBOX_<A>``: a mirror of the hub's inbox, from the hub's JetStream domain. Nothing ever
  publishes to it (a mirror accepts nothing but its origin); the node reads it through its durable
  consumer, as it reads the hub's inbox without a leaf.
- ``KV_DIRECTORY``: a mirror of the state's directory bucket at the hub, read as a bucket, on a
  durable consumer too (an ephemeral one set up while the link is down waits out a 30 s timeout).
"""

from __future__ import annotations

from pathlib import Path

from nats.js import api
from nats.js.errors import NotFoundError

from services.core import subjects
from services.core.connection import connect
from services.hub.config import MAX_PAYLOAD
from services.hub.provision import DAY, Policy, node_consumer_config
from services.hub.relay import link_consumer_config

#: How long the leaf keeps what it sent: well past any cut the hub's relay sources it after.
OUTBOX_MAX_AGE_S = 14 * DAY


def outbox_config(state: str, policy: Policy, max_bytes: int) -> api.StreamConfig:
    return api.StreamConfig(
        name=subjects.leaf_outbox_stream(state),
        description=f"What {state}'s node sent, until the hub has sourced it",
        subjects=[subjects.leaf_outbox_filter(state)],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        duplicate_window=policy.duplicate_window_s,
        max_age=OUTBOX_MAX_AGE_S,
        max_bytes=max_bytes,
        discard=api.DiscardPolicy.NEW,
        max_msg_size=MAX_PAYLOAD,
        deny_delete=True,
        deny_purge=True,
    )


def inbox_mirror_config(state: str, policy: Policy) -> api.StreamConfig:
    return api.StreamConfig(
        name=subjects.inbox_stream(state),
        description=f"{state}'s inbox at the hub, mirrored",
        # on the durable consumer the hub keeps for it (services/hub/relay.py says why)
        mirror=api.StreamSource(
            name=subjects.inbox_stream(state),
            external=api.ExternalStream(api=subjects.hub_api()),
            consumer=api.StreamConsumerSource(
                name=subjects.LEAF_MIRROR_CONSUMER,
                deliver_subject=subjects.leaf_mirror_deliver(state),
            ),
        ),
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        max_age=policy.inbox_max_age_s,
        max_msg_size=MAX_PAYLOAD,
        allow_direct=True,  # the node replays it by sequence (`cifta node recover`)
        deny_delete=True,
        deny_purge=True,
    )


def directory_mirror_config(state: str) -> api.StreamConfig:
    return api.StreamConfig(
        name=subjects.DIRECTORY_STREAM,
        description="The state's directory bucket at the hub, mirrored",
        mirror=api.StreamSource(
            name=subjects.DIRECTORY_STREAM,
            external=api.ExternalStream(api=subjects.hub_api()),
            consumer=api.StreamConsumerSource(
                name=subjects.LEAF_MIRROR_CONSUMER,
                deliver_subject=subjects.leaf_directory_deliver(state),
            ),
        ),
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        max_msgs_per_subject=16,  # read as a bucket: nats-py asks for a history
        allow_direct=True,
    )


async def provision_leaf(
    url: str, seed: Path, state: str, policy: Policy, outbox_max_bytes: int
) -> None:
    """Create the leaf's streams and the node's consumer, as the leaf's admin user. Idempotent."""
    async with connect(url, seed, name="cifta-leaf-provision") as nc:
        js = nc.jetstream()
        for config in (
            outbox_config(state, policy, outbox_max_bytes),
            inbox_mirror_config(state, policy),
            directory_mirror_config(state),
        ):
            try:
                await js.stream_info(config.name or "")
            except NotFoundError:
                await js.add_stream(config)
                continue
            await js.update_stream(config)
        await js.add_consumer(subjects.inbox_stream(state), config=node_consumer_config(policy))
        await js.add_consumer(
            subjects.leaf_outbox_stream(state),
            config=link_consumer_config(
                subjects.RELAY_CONSUMER,
                subjects.relay_consumer_deliver(state),
                subjects.leaf_outbox_filter(state),
            ),
        )

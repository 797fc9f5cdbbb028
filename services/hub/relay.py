"""The hub's streams for states on a leaf (services/hub/leaf.py says the flow): each such state's
relay, and the sources every recipient's inbox takes from the relays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from nats.js import api

from services.core import subjects
from services.core.connection import connect
from services.hub.provision import Policy, _ensure_stream
from services.hub.resources import StreamSizes

#: How long the relay keeps what a leaf sent: its recipients' inboxes source it within seconds
#: when all is well, and within this when one of them stays unreachable.
RELAY_MAX_AGE_S = 14 * 24 * 3600.0
#: Deliveries in flight across a leaf link, unanswered by the other side's flow control.
LINK_MAX_ACK_PENDING = 4096


def leaf_sizes(sizes: StreamSizes) -> tuple[StreamSizes, int]:
    """The stream sizes of a state on a leaf, and its relay's: the relay's quarter comes out of
    the inbox's share, so the account's limit still holds every stream's ``max_bytes``."""
    relay = sizes.inbox // 4
    return replace(sizes, inbox=sizes.inbox - relay), relay


def relay_config(state: str, policy: Policy, max_bytes: int) -> api.StreamConfig:
    """``RELAY_<state>``: the leaf's outbox, sourced into the state's account at the hub. No
    subjects of its own (nothing may publish into it), its messages kept for a long cut's
    recipients to source them."""
    return api.StreamConfig(
        name=subjects.relay_stream(state),
        description=f"What {state}'s leaf sent, on its way to the recipients' inboxes",
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        duplicate_window=policy.duplicate_window_s,
        num_replicas=policy.replicas,
        max_age=RELAY_MAX_AGE_S,
        max_bytes=max_bytes,
        # full: the relay stops sourcing, the leaf's outbox keeps the rest until there is room
        discard=api.DiscardPolicy.NEW,
        deny_delete=True,
        deny_purge=True,
        sources=[
            api.StreamSource(
                name=subjects.leaf_outbox_stream(state),
                external=api.ExternalStream(api=subjects.leaf_api(state)),
                # A durable consumer the leaf keeps (nats-server's durable sourcing, ADR-60):
                # after a cut the relay resets it within seconds, where an ephemeral one waits
                # out a 30 s setup timeout and a retry backoff of up to two minutes, showing a
                # lag of 0 all the while (server/stream.go, srcConsumerWaitTime).
                consumer=api.StreamConsumerSource(
                    name=subjects.RELAY_CONSUMER,
                    deliver_subject=subjects.relay_consumer_deliver(state),
                ),
            )
        ],
    )


def relay_sources(recipient: str, leaves: Sequence[str]) -> list[api.StreamSource]:
    """The sources of ``recipient``'s inbox: the relay of every other state on a leaf, filtered
    to what was addressed to ``recipient`` under the sender's own code."""
    return [
        api.StreamSource(
            name=subjects.relay_stream(sender),
            filter_subject=subjects.inbox_export(recipient, sender),
            external=api.ExternalStream(
                api=subjects.relay_api(sender), deliver=subjects.relay_deliver(sender, recipient)
            ),
        )
        for sender in leaves
        if sender != recipient
    ]


def link_consumer_config(
    name: str, deliver_subject: str, filter_subject: str | None = None
) -> api.ConsumerConfig:
    """A durable push consumer that a source or a mirror across a leaf link runs on: the
    sourcing stream acknowledges by its flow-control answers (``flow_control``), so the
    consumer's ack floor is what the other side has stored."""
    return api.ConsumerConfig(
        durable_name=name,
        description="Runs a source or a mirror across a state's leaf link",
        deliver_subject=deliver_subject,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.FLOW_CONTROL,
        flow_control=True,
        idle_heartbeat=1.0,  # the only heartbeat nats-server allows with this ack policy
        max_ack_pending=LINK_MAX_ACK_PENDING,
        filter_subject=filter_subject,
    )


async def provision_relay(
    url: str, seed: Path, state: str, policy: Policy, max_bytes: int, tls_ca: Path | None = None
) -> None:
    """Create or update ``state``'s relay, as its account's provisioning user. Idempotent.

    Before any inbox that sources it: an inbox whose source finds no relay yet waits out
    nats-server's retry backoff (a first failure, then 10 s, growing to two minutes) before it
    tries again, while the relay's messages for it wait."""
    async with connect(url, seed, tls_ca) as nc:
        await _ensure_stream(nc, relay_config(state, policy, max_bytes))


async def provision_link_consumers(
    url: str, seed: Path, state: str, tls_ca: Path | None = None
) -> None:
    """The durable consumers the state's leaf mirrors its inbox and directory bucket through
    (after the state's own streams exist). Idempotent."""
    async with connect(url, seed, tls_ca) as nc:
        for stream, deliver in (
            (subjects.inbox_stream(state), subjects.leaf_mirror_deliver(state)),
            (subjects.DIRECTORY_STREAM, subjects.leaf_directory_deliver(state)),
        ):
            await nc.jetstream().add_consumer(
                stream, config=link_consumer_config(subjects.LEAF_MIRROR_CONSUMER, deliver)
            )

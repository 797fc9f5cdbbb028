"""Create each state's streams and consumer, and report on them (design section 5).

Runs as each account's provisioning user: a node's own credentials cannot create, change, delete
or purge a stream or a consumer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from nats.aio.client import Client
from nats.js import api
from nats.js.errors import BucketNotFoundError, NotFoundError

from services.core import subjects
from services.core.connection import connect
from services.hub.config import MAX_PAYLOAD

DAY = 24 * 3600.0


@dataclass(frozen=True)
class Policy:
    """Retention and delivery settings every state's inbox gets."""

    duplicate_window_s: float = DAY  # a retried publish within a day is stored once
    inbox_max_age_s: float = 90 * DAY
    quarantine_max_age_s: float = 365 * DAY
    max_deliver: int = 10  # with the node's retry schedule, about two hours of attempts
    ack_wait_s: float = 30.0
    max_ack_pending: int = 256
    replicas: int = 1  # 3 on a three-server hub cluster
    #: Within the account's 10 GiB (services/hub/config.py). A full inbox refuses new envelopes
    #: (senders' outboxes keep them and retry); a full quarantine drops its oldest copies (the
    #: node's store still records every refusal).
    inbox_max_bytes: int = 8 * 1024**3
    quarantine_max_bytes: int = 1024**3


DEFAULT_POLICY = Policy()


def _kept_stream(policy: Policy, **config: object) -> api.StreamConfig:
    """A file stream nobody may delete from or purge: what every stream of the hub is."""
    return api.StreamConfig(
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        duplicate_window=policy.duplicate_window_s,
        num_replicas=policy.replicas,
        deny_delete=True,
        deny_purge=True,
        **config,  # type: ignore[arg-type]
    )


def inbox_config(state: str, policy: Policy) -> api.StreamConfig:
    return _kept_stream(
        policy,
        name=subjects.inbox_stream(state),
        description=f"Envelopes addressed to {state}",
        subjects=[subjects.inbox_filter(state)],
        max_age=policy.inbox_max_age_s,
        max_bytes=policy.inbox_max_bytes,
        discard=api.DiscardPolicy.NEW,
        max_msg_size=MAX_PAYLOAD,
        allow_direct=True,  # the node reads it by sequence to recover (`cifta node recover`)
    )


def quarantine_config(state: str, policy: Policy) -> api.StreamConfig:
    return _kept_stream(
        policy,
        name=subjects.quarantine_stream(state),
        description=f"What {state}'s node could not accept, with the reason",
        subjects=[subjects.quarantine_filter(state)],
        max_age=policy.quarantine_max_age_s,
        max_bytes=policy.quarantine_max_bytes,
        discard=api.DiscardPolicy.OLD,
        max_msg_size=MAX_PAYLOAD,
    )


def node_consumer_config(policy: Policy) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=subjects.NODE_CONSUMER,
        description="The state's node reads its inbox through this consumer",
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        max_deliver=policy.max_deliver,
        ack_wait=policy.ack_wait_s,
        max_ack_pending=policy.max_ack_pending,
    )


async def _ensure_stream(nc: Client, config: api.StreamConfig) -> None:
    js = nc.jetstream()
    try:
        await js.stream_info(config.name or "")
    except NotFoundError:
        await js.add_stream(config)
        return
    await js.update_stream(config)


async def provision_state(
    url: str, seed: Path, state: str, policy: Policy = DEFAULT_POLICY, tls_ca: Path | None = None
) -> None:
    """Create or update ``state``'s inbox, quarantine and node consumer. Idempotent."""
    async with connect(url, seed, tls_ca) as nc:
        await _ensure_stream(nc, inbox_config(state, policy))
        await _ensure_stream(nc, quarantine_config(state, policy))
        await nc.jetstream().add_consumer(
            subjects.inbox_stream(state), config=node_consumer_config(policy)
        )
        await ensure_directory_bucket(nc, policy)


@dataclass(frozen=True)
class StateStatus:
    """What the secretariat sees of one state's inbox: never contents."""

    state: str
    stored: int  # envelopes held in the inbox stream
    pending: int  # not yet delivered to the node
    unacknowledged: int  # delivered, not yet acknowledged
    redelivered: int  # delivered more than once and not yet acknowledged
    waiting_pulls: int  # the node's outstanding pull requests: >0 means it is connected now
    last_seen: datetime | None  # last delivery to the node
    quarantined: int

    @property
    def lag(self) -> int:
        return self.pending + self.unacknowledged

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["last_seen"] = None if self.last_seen is None else self.last_seen.isoformat()
        out["lag"] = self.lag
        return out


async def state_status(url: str, seed: Path, state: str, tls_ca: Path | None = None) -> StateStatus:
    async with connect(url, seed, tls_ca) as nc:
        js = nc.jetstream()
        inbox = await js.stream_info(subjects.inbox_stream(state))
        quarantine = await js.stream_info(subjects.quarantine_stream(state))
        consumer = await js.consumer_info(subjects.inbox_stream(state), subjects.NODE_CONSUMER)
    return StateStatus(
        state=state,
        stored=inbox.state.messages,
        pending=consumer.num_pending or 0,
        unacknowledged=consumer.num_ack_pending or 0,
        redelivered=consumer.num_redelivered or 0,
        waiting_pulls=consumer.num_waiting or 0,
        last_seen=consumer.delivered.last_active if consumer.delivered else None,
        quarantined=quarantine.state.messages,
    )


async def ensure_directory_bucket(nc: Client, policy: Policy) -> None:
    """The state's ``DIRECTORY`` bucket: its copy of the signed directory, written by the
    directory service through the secretariat's import, read by the node."""
    js = nc.jetstream()
    try:
        await js.key_value(subjects.DIRECTORY_BUCKET)
    except BucketNotFoundError:
        await js.create_key_value(
            api.KeyValueConfig(
                bucket=subjects.DIRECTORY_BUCKET,
                description="Signed directory entries, one key per party",
                history=16,
                storage=api.StorageType.FILE,
                replicas=policy.replicas,
                max_value_size=512 * 1024,
            )
        )


def audit_stream_config(states: list[str], policy: Policy) -> api.StreamConfig:
    """The AUDIT account's stream: every inbox sourced across accounts, and the nodes' events."""
    return _kept_stream(
        policy,
        name=subjects.AUDIT_STREAM,
        description="Every inbox, sourced, and the nodes' signed events: the audit log's input",
        subjects=["audit.events.>"],
        sources=[
            api.StreamSource(
                name=subjects.inbox_stream(state),
                external=api.ExternalStream(
                    api=subjects.audit_source_api(state),
                    deliver=subjects.audit_source_deliver(state),
                ),
            )
            for state in states
        ],
        max_age=policy.inbox_max_age_s,
    )


async def provision_audit(
    url: str,
    seed: Path,
    states: list[str],
    policy: Policy = DEFAULT_POLICY,
    tls_ca: Path | None = None,
) -> None:
    """Create or update the AUDIT stream (with a source per state), the audit service's
    quarantine, and its consumer per state (taking over where a former single consumer stood)."""
    async with connect(url, seed, tls_ca) as nc:
        await _ensure_stream(nc, audit_stream_config(states, policy))
        await _ensure_stream(
            nc,
            _kept_stream(
                policy,
                name=subjects.AUDIT_QUARANTINE_STREAM,
                description="Records the audit service gave up on after its last attempt",
                subjects=[subjects.AUDIT_QUARANTINE_FILTER],
                max_age=policy.quarantine_max_age_s,
                max_bytes=policy.quarantine_max_bytes,
                discard=api.DiscardPolicy.OLD,
                max_msg_size=MAX_PAYLOAD,
            ),
        )
        js = nc.jetstream()
        try:  # a hub provisioned before: its single consumer's ack floor is where to go on
            former = await js.consumer_info(subjects.AUDIT_STREAM, subjects.AUDIT_CONSUMER)
            start: int | None = former.ack_floor.stream_seq + 1 if former.ack_floor else 1
        except NotFoundError:
            start = None
        for state in states:
            name = subjects.audit_consumer(state)
            try:  # the deliver policy of an existing consumer cannot change: keep it
                held = (await js.consumer_info(subjects.AUDIT_STREAM, name)).config
                deliver, start_seq = held.deliver_policy, held.opt_start_seq
            except NotFoundError:
                deliver = (
                    api.DeliverPolicy.ALL if start is None else api.DeliverPolicy.BY_START_SEQUENCE
                )
                start_seq = start
            await js.add_consumer(
                subjects.AUDIT_STREAM,
                config=api.ConsumerConfig(
                    durable_name=name,
                    description=f"The audit service: what {state} published or filed",
                    # one per state (design section 5): a state's flood waits behind itself
                    filter_subjects=subjects.audit_consumer_filters(state),
                    ack_policy=api.AckPolicy.EXPLICIT,
                    deliver_policy=deliver,
                    opt_start_seq=start_seq,
                    ack_wait=policy.ack_wait_s,
                    # Bounded: what cannot be resolved yet is acknowledged and parked by the
                    # service itself, so only a record it fails to process (its store failing)
                    # is delivered again, and on the last delivery it is quarantined.
                    max_deliver=policy.max_deliver,
                    max_ack_pending=1024,
                ),
            )
        if start is not None:
            await js.delete_consumer(subjects.AUDIT_STREAM, subjects.AUDIT_CONSUMER)

"""Create each state's streams and consumer, and report on them (design section 5).

Runs as each account's provisioning user: a node's own credentials cannot create, change, delete
or purge a stream or a consumer. Stream sizes come from the hub's plan of the accounts' limits
(services/hub/resources.py): each stream's ``max_bytes`` counts against its account's limit.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from services.core import subjects
from services.core.connection import connect
from services.hub import attachments
from services.hub.config import MAX_PAYLOAD
from services.hub.resources import StreamSizes

DAY = 24 * 3600.0
#: nats-server's "insufficient storage resources available"
INSUFFICIENT_STORAGE = 10047
#: The audit service's quarantine: within the AUDIT account's half of the disk (resources.py).
AUDIT_QUARANTINE_MAX_BYTES = 1024**3


class ProvisionError(Exception):
    """The hub could not be reached, or does not hold what the home provisioned; the message says
    what to do."""


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


def inbox_config(
    state: str,
    policy: Policy,
    sizes: StreamSizes,
    sources: list[api.StreamSource] | None = None,
) -> api.StreamConfig:
    """A full inbox refuses new envelopes (senders' outboxes keep them and retry). Direct get
    lets the node replay what it still holds by stream sequence (``cifta node recover``).
    ``sources``: the relays of the senders on a leaf (services/hub/relay.py)."""
    return _kept_stream(
        policy,
        name=subjects.inbox_stream(state),
        description=f"Envelopes addressed to {state}",
        subjects=[subjects.inbox_filter(state)],
        max_age=policy.inbox_max_age_s,
        max_bytes=sizes.inbox,
        discard=api.DiscardPolicy.NEW,
        max_msg_size=MAX_PAYLOAD,
        allow_direct=True,  # the node reads it by sequence to recover (`cifta node recover`)
        sources=sources or None,
    )


def quarantine_config(state: str, policy: Policy, sizes: StreamSizes) -> api.StreamConfig:
    """A full quarantine drops its oldest copies (the node's store still records every refusal)."""
    return _kept_stream(
        policy,
        name=subjects.quarantine_stream(state),
        description=f"What {state}'s node could not accept, with the reason",
        subjects=[subjects.quarantine_filter(state)],
        max_age=policy.quarantine_max_age_s,
        max_bytes=sizes.quarantine,
        discard=api.DiscardPolicy.OLD,
        max_msg_size=MAX_PAYLOAD,
    )


def undelivered_config(state: str, policy: Policy, sizes: StreamSizes) -> api.StreamConfig:
    """The record of the inbox messages the node's consumer gave up on: JetStream forgets them
    once their last delivery attempt fails (the ack floor moves past them, so the consumer shows
    nothing pending), and says so only in an advisory, which this stream keeps. Kept as long as
    the inbox keeps the messages, so each record names one the node can still replay."""
    return _kept_stream(
        policy,
        name=subjects.undelivered_stream(state),
        description=f"Advisories of {state}'s inbox messages past their last delivery attempt",
        subjects=[subjects.max_deliveries_advisory(state)],
        max_age=policy.inbox_max_age_s,
        max_bytes=sizes.undelivered,
        discard=api.DiscardPolicy.OLD,
    )


def directory_bucket_config(policy: Policy, sizes: StreamSizes) -> api.StreamConfig:
    """The state's ``DIRECTORY`` key-value bucket (nats-py's bucket layout): its copy of the
    signed directory, written by the directory service through the secretariat's import, read by
    the node. Deny purge as well as delete, hence no roll-ups (nats-server refuses both
    together): the directory service only ever puts entries."""
    return _kept_stream(
        policy,
        name=subjects.DIRECTORY_STREAM,
        description="Signed directory entries, one key per party",
        subjects=[f"$KV.{subjects.DIRECTORY_BUCKET}.>"],
        max_msgs_per_subject=16,  # each party's last 16 entries
        max_msg_size=512 * 1024,
        max_bytes=sizes.directory,
        discard=api.DiscardPolicy.NEW,
        allow_direct=True,
        allow_rollup_hdrs=False,
        allow_msg_ttl=True,  # as nats-py creates buckets; nats-server cannot turn it off later
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
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            await js.add_stream(config)
            return
        await js.update_stream(config)
    except APIError as exc:  # e.g. the account's limit cannot hold the stream's max_bytes
        hint = ""
        if exc.err_code == INSUFFICIENT_STORAGE:
            # streams made under larger limits still reserve them: they must shrink while the
            # server still runs the configuration that holds them (docs/operations.md, 1.4)
            hint = (
                "; if the hub was restarted on smaller limits, start it again on the previous "
                "nats.conf, run `cifta hub provision` there, then restart on the new one"
            )
        raise ProvisionError(
            f"the hub refused stream {config.name}: {exc.description} (code {exc.err_code})" + hint
        ) from None


#: How long a state's JetStream may take to answer after the reload that added its account.
READY_S = 15.0


async def jetstream_answers(nc: Client, within: float = READY_S) -> None:
    """Wait until the account's JetStream API answers. Right after the reload that adds an
    account, its first request can go unanswered (the onboarding test saw a stream request time
    out once, after both reloads were confirmed in the server's log); an account's information is
    the cheapest request to ask until it does."""
    js = nc.jetstream(timeout=1.0)
    deadline = time.monotonic() + within
    while True:
        try:
            await js.account_info()
            return
        except (TimeoutError, NoRespondersError, ServiceUnavailableError):
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.1)  # the next ask; the server is enabling the account


async def provision_state(
    url: str,
    seed: Path,
    state: str,
    sizes: StreamSizes,
    policy: Policy = DEFAULT_POLICY,
    tls_ca: Path | None = None,
    sources: list[api.StreamSource] | None = None,
) -> None:
    """Create or update ``state``'s inbox (with ``sources``: the relays of the senders on a
    leaf), quarantine, undelivered record, node consumer and directory bucket. Idempotent."""
    async with connect(url, seed, tls_ca) as nc:
        await jetstream_answers(nc)
        # the record first, so that no advisory is published before it can be kept
        await _ensure_stream(nc, undelivered_config(state, policy, sizes))
        await _ensure_stream(nc, inbox_config(state, policy, sizes, sources))
        await _ensure_stream(nc, quarantine_config(state, policy, sizes))
        await nc.jetstream().add_consumer(
            subjects.inbox_stream(state), config=node_consumer_config(policy)
        )
        await _ensure_stream(nc, directory_bucket_config(policy, sizes))
        await _ensure_stream(nc, attachment_config(state, policy, sizes))
        # Before the sender's streams (docs/operations.md 2.9) this stream held what the other
        # states stored for this one, ``attach.<state>.>``: nothing reads those any more, and
        # they would take this state's own room until their retention. Nothing of the present
        # layout is under that filter (a state never stores files for itself).
        try:
            await nc.jetstream().purge_stream(
                subjects.attachment_stream(state), subject=subjects.attachment_filter_former(state)
            )
        except APIError as exc:  # a leader election under way, say: run it again
            raise ProvisionError(
                f"the hub did not clear {subjects.attachment_stream(state)}'s former objects: "
                f"{exc.description} (code {exc.err_code}); run the provisioning again"
            ) from None


def attachment_config(state: str, policy: Policy, sizes: StreamSizes) -> api.StreamConfig:
    """``ATTACH_<state>``: what the state stores for its recipients, in its own account, kept at
    most as long as the inbox keeps envelopes (services/hub/attachments.py)."""
    return attachments.stream_config(
        state,
        max_bytes=sizes.attachments,
        max_age_s=policy.inbox_max_age_s,
        duplicate_window_s=policy.duplicate_window_s,
        replicas=policy.replicas,
    )


@dataclass(frozen=True)
class StateStatus:
    """What the secretariat sees of one state's inbox: never contents."""

    state: str
    stored: int  # envelopes held in the inbox stream
    pending: int  # not yet delivered to the node
    unacknowledged: int  # delivered, not yet acknowledged
    #: delivered more than once, as JetStream counts it: those still being retried and those
    #: past their last attempt, while the inbox holds them
    redelivered: int
    #: given up on after ``max_deliver`` attempts: never acknowledged, no longer offered
    past_last_attempt: int
    last_given_up: datetime | None
    waiting_pulls: int  # the node's outstanding pull requests: >0 means it is connected now
    last_seen: datetime | None  # last delivery to the node
    quarantined: int

    @property
    def lag(self) -> int:
        """Waiting for the node's acknowledgement; messages past their last attempt are not in
        it (JetStream moves its ack floor past them), hence ``past_last_attempt``."""
        return self.pending + self.unacknowledged

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        for name in ("last_seen", "last_given_up"):
            value = getattr(self, name)
            out[name] = None if value is None else value.isoformat()
        out["lag"] = self.lag
        return out


async def _given_up(js: JetStreamContext, state: str) -> tuple[int, datetime | None]:
    """How many inbox messages the node consumer gave up on, and when it last did."""
    info = await js.stream_info(subjects.undelivered_stream(state))
    if not info.state.messages:
        return 0, None
    last = await js.get_msg(subjects.undelivered_stream(state), info.state.last_seq)
    return info.state.messages, last.time


async def state_status(url: str, seed: Path, state: str, tls_ca: Path | None = None) -> StateStatus:
    """``state``'s inbox as the secretariat sees it; ProvisionError when it was not provisioned
    on the server at ``url``."""
    async with connect(url, seed, tls_ca) as nc:
        js = nc.jetstream()
        try:
            inbox = await js.stream_info(subjects.inbox_stream(state))
            quarantine = await js.stream_info(subjects.quarantine_stream(state))
            consumer = await js.consumer_info(subjects.inbox_stream(state), subjects.NODE_CONSUMER)
            given_up, last_given_up = await _given_up(js, state)
        except NotFoundError:
            raise ProvisionError(
                f"{state} has no inbox, quarantine or undelivered record on the hub at {url}: "
                "run `cifta hub provision`, or check that nats-server runs on this hub home's "
                "nats.conf (another store would be empty)"
            ) from None
    return StateStatus(
        state=state,
        stored=inbox.state.messages,
        pending=consumer.num_pending or 0,
        unacknowledged=consumer.num_ack_pending or 0,
        redelivered=consumer.num_redelivered or 0,
        past_last_attempt=given_up,
        last_given_up=last_given_up,
        waiting_pulls=consumer.num_waiting or 0,
        last_seen=consumer.delivered.last_active if consumer.delivered else None,
        quarantined=quarantine.state.messages,
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
                max_bytes=AUDIT_QUARANTINE_MAX_BYTES,
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

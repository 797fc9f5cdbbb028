"""Isolation across leaves: a state's leaf, whatever its own operator configures on it, cannot
read, write as, or administer another state's streams, nor write into an inbox around its relay.

The hub's wall is the leaf user's permissions and the recipients' source filters (services/hub/
leaf.py); the state holds its leaf's configuration, so each test plays a hostile leaf. Each also
does the permitted neighbour of the forbidden act, so that it cannot pass because nothing works.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NoStreamResponseError

from services.core import subjects
from services.core.connection import connect
from services.core.files import write_secret
from services.hub import server
from services.hub.credentials import LEAF_USER, PROVISION_USER
from services.hub.relay import link_consumer_config
from services.leaf.home import ADMIN, NODE
from services.testbed.leaf import allow_leaves, start_leaf
from tests.builders import sealed
from tests.support.hub import Hub, eventually

#: What a client of the leaf sees when the hub drops its request: no one answers.
REFUSED = (NatsTimeout, NoRespondersError, NoStreamResponseError)


@pytest.fixture
async def leaf_hub(hub_home: Hub) -> AsyncIterator[Hub]:
    allow_leaves(hub_home, "MEX")
    hub_home.start()
    await hub_home.provision()
    yield hub_home


@pytest.fixture
async def bare_leaf(leaf_hub: Hub, tmp_path: Path) -> AsyncIterator[str]:
    """A leaf MEX's operator wrote by hand: MEX's leaf seed, no JetStream of its own, no
    permissions locally, so every subject its client uses is tried at the hub. Its client URL."""
    root = tmp_path / "bare-leaf"
    root.mkdir()
    config = root / "leaf.conf"
    body = {
        "port": -1,
        "host": "127.0.0.1",
        "leafnodes": {
            "reconnect": "1s",
            "remotes": [{
                "urls": [leaf_hub.home.leaf_url()],
                "nkey": leaf_hub.home.user_seed("MEX", LEAF_USER).read_text().strip(),
            }],
        },
    }  # fmt: skip
    write_secret(config, json.dumps(body).encode())
    running = server.start(config, run_dir=root, log_file=root / "leaf.log")
    try:
        await until_hub_answers(running.client_url)
        yield running.client_url
    finally:
        server.stop(running.pid)


async def until_hub_answers(url: str, timeout: float = 30.0) -> None:
    """Until a client of the leaf at ``url`` reaches the hub's JetStream: the link is
    authenticated and the hub's interest has crossed it. nats-server logs "Leafnode connection
    created" before either, so a test that starts then finds no responders at first."""
    nc = await nats.connect(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                await publish_quarantine_copy(nc)
                return
            except (NoRespondersError, NoStreamResponseError, NatsTimeout):
                # (a JetStream publish reports no responders as NoStreamResponseError)
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def inbox_count(hub: Hub, state: str) -> int:
    async with connect(hub.url, hub.home.user_seed(state, PROVISION_USER)) as nc:
        return (await nc.jetstream().stream_info(subjects.inbox_stream(state))).state.messages


async def test_a_leaf_cannot_publish_into_an_inbox_around_its_relay(
    leaf_hub: Hub, bare_leaf: str
) -> None:
    nc = await nats.connect(bare_leaf)
    try:
        envelope = sealed(sender=leaf_hub.keys["MEX"], to=[leaf_hub.keys["USA"]])
        with pytest.raises(REFUSED):
            await nc.jetstream().publish(
                subjects.inbox_subject("USA", "MEX", "around"), envelope, timeout=2
            )
        await publish_quarantine_copy(nc)  # the neighbour
    finally:
        await nc.close()
    assert await inbox_count(leaf_hub, "USA") == 0


async def publish_quarantine_copy(nc: nats.aio.client.Client) -> None:
    """What a leaf may do at the hub: file into its own quarantine (PubAck from the hub)."""
    ack = await nc.jetstream().publish(
        subjects.quarantine_subject("MEX", "bad_signature"), b"x", timeout=5
    )
    assert ack.stream == subjects.quarantine_stream("MEX")


@pytest.mark.parametrize(
    "request_subject",
    [
        f"$JS.hub.API.STREAM.DELETE.{subjects.inbox_stream('MEX')}",
        f"$JS.hub.API.STREAM.PURGE.{subjects.relay_stream('MEX')}",
        f"$JS.hub.API.STREAM.UPDATE.{subjects.inbox_stream('MEX')}",
        f"$JS.API.STREAM.DELETE.{subjects.inbox_stream('MEX')}",
        f"$JS.hub.API.CONSUMER.CREATE.{subjects.inbox_stream('MEX')}",
        f"$JS.hub.API.CONSUMER.DELETE.{subjects.inbox_stream('MEX')}.{subjects.NODE_CONSUMER}",
        f"$JS.hub.API.STREAM.INFO.{subjects.inbox_stream('USA')}",
        # its own attachment stream: its size and a purge are granted (its node's uploads),
        # never a redefinition (its cap is the hub's), a deletion or a consumer
        f"$JS.hub.API.STREAM.UPDATE.{subjects.attachment_stream('MEX')}",
        f"$JS.hub.API.STREAM.DELETE.{subjects.attachment_stream('MEX')}",
        f"$JS.hub.API.CONSUMER.CREATE.{subjects.attachment_stream('MEX')}",
    ],
)
async def test_a_leaf_cannot_administer_streams_at_the_hub(
    leaf_hub: Hub, bare_leaf: str, request_subject: str
) -> None:
    nc = await nats.connect(bare_leaf)
    try:
        with pytest.raises(REFUSED):
            await nc.request(request_subject, b"{}", timeout=2)
        await publish_quarantine_copy(nc)
    finally:
        await nc.close()
    async with connect(leaf_hub.url, leaf_hub.home.user_seed("MEX", PROVISION_USER)) as hub:
        js = hub.jetstream()
        inbox = await js.stream_info(subjects.inbox_stream("MEX"))
        assert inbox.config.subjects == [subjects.inbox_filter("MEX")]
        await js.stream_info(subjects.relay_stream("MEX"))
        await js.consumer_info(subjects.inbox_stream("MEX"), subjects.NODE_CONSUMER)
        attach = await js.stream_info(subjects.attachment_stream("MEX"))
        assert attach.config.subjects == [subjects.attachment_filter("MEX")]
        assert attach.config.deny_delete and (attach.config.max_bytes or 0) > 0


async def test_a_leaf_reads_nothing_of_the_inboxes_traffic(leaf_hub: Hub, bare_leaf: str) -> None:
    """Not another state's, and not even its own state's inbox subjects at the hub: those reach
    it through its mirror alone."""
    nc = await nats.connect(bare_leaf)
    seen: list[tuple[str, bytes]] = []

    async def record(msg: nats.aio.msg.Msg) -> None:
        seen.append((msg.subject, msg.data))

    try:
        await nc.subscribe(">", cb=record)
        await nc.flush()  # the leaf has the subscription; the hub hears of it in its own time
        async with connect(leaf_hub.url, leaf_hub.home.user_seed("AUDIT", "audit")) as audit:

            async def checkpoint_heard() -> bool:
                await audit.publish(subjects.AUDIT_CHECKPOINTS, b"checkpoint")
                await audit.flush()
                return (subjects.AUDIT_CHECKPOINTS, b"checkpoint") in seen

            # the neighbour: a checkpoint the audit service publishes does reach the leaf, once
            # the leaf's interest has crossed the link (before, the traffic below would not be
            # offered to the leaf at all, and the test would prove nothing)
            await eventually(checkpoint_heard, what="a checkpoint at the leaf")
            async with connect(leaf_hub.url, leaf_hub.home.node_seed("USA")) as usa:
                js = usa.jetstream()
                envelope = sealed(sender=leaf_hub.keys["USA"], to=[leaf_hub.keys["COL"]])
                await js.publish(subjects.inbox_subject("COL", "USA", "one"), envelope)
                to_mex = sealed(sender=leaf_hub.keys["USA"], to=[leaf_hub.keys["MEX"]])
                await js.publish(subjects.inbox_subject("MEX", "USA", "two"), to_mex)
            # a checkpoint of its own after the stored envelopes: what the hub offered the leaf
            # of them crossed the link before it
            fence = (subjects.AUDIT_CHECKPOINTS, b"after the envelopes")
            await audit.publish(*fence)
            await eventually(lambda: fence in seen, what="the checkpoint after the envelopes")
    finally:
        await nc.close()
    assert [s for s, _ in seen if s.startswith("inbox.")] == []


async def test_a_leaf_stores_attachments_in_its_own_stream_at_the_hub_and_no_other(
    leaf_hub: Hub, bare_leaf: str
) -> None:
    """Its node's uploads (services/hub/attachments.py, ``leaf_publish``): a segment under its
    own name lands in ``ATTACH_MEX``; one under another sender's name lands nowhere."""
    oid = "ab" * 32
    nc = await nats.connect(bare_leaf)
    try:
        js = nc.jetstream()
        own = subjects.attachment_chunk_subject("COL", "MEX", oid, 0)
        ack = await js.publish(own, b"segment", timeout=5)
        assert ack.stream == subjects.attachment_stream("MEX")
        with pytest.raises(REFUSED):
            await js.publish(
                subjects.attachment_chunk_subject("COL", "USA", oid, 0), b"x", timeout=2
            )
    finally:
        await nc.close()
    for state, held in (("MEX", 1), ("USA", 0)):
        seed = leaf_hub.home.user_seed(state, PROVISION_USER)
        async with connect(leaf_hub.url, seed) as hub:
            info = await hub.jetstream().stream_info(subjects.attachment_stream(state))
            assert info.state.messages == held


async def test_a_leaf_storing_under_another_senders_name_gets_nowhere(
    leaf_hub: Hub, tmp_path: Path
) -> None:
    """MEX's operator widens its outbox and the relay's consumer to COL's subjects: the relay
    takes what it is given, and USA's inbox, filtered to ``inbox.USA.MEX.>``, none of it."""
    leaf = await start_leaf(leaf_hub, "MEX", tmp_path)
    try:
        async with connect(leaf.url(), leaf.seed(ADMIN)) as nc:
            js = nc.jetstream()
            outbox = subjects.leaf_outbox_stream("MEX")
            config = (await js.stream_info(outbox)).config
            config.subjects = ["inbox.*.MEX.>", "inbox.*.COL.>"]
            await js.update_stream(config)
            # the same consumer, its filter dropped (an update: the relay stays bound to it)
            await js.add_consumer(outbox, config=link_consumer_config(
                subjects.RELAY_CONSUMER, subjects.relay_consumer_deliver("MEX")))  # fmt: skip
            forged = sealed(sender=leaf_hub.keys["MEX"], to=[leaf_hub.keys["USA"]])
            await js.publish(subjects.inbox_subject("USA", "COL", "forged"), forged)
            honest = sealed(sender=leaf_hub.keys["MEX"], to=[leaf_hub.keys["USA"]])
            await js.publish(subjects.inbox_subject("USA", "MEX", "honest"), honest)

        async def relayed_both() -> bool:
            seed = leaf_hub.home.user_seed("MEX", PROVISION_USER)
            async with connect(leaf_hub.url, seed) as hub:
                info = await hub.jetstream().stream_info(subjects.relay_stream("MEX"))
                return info.state.messages == 2

        async def honest_arrived() -> bool:
            return await inbox_count(leaf_hub, "USA") >= 1

        await eventually(relayed_both, what="the relay took both")
        await eventually(honest_arrived, what="the honest one in USA's inbox")
        async with connect(leaf_hub.url, leaf_hub.home.user_seed("USA", PROVISION_USER)) as hub:
            js = hub.jetstream()
            info = await js.stream_info(subjects.inbox_stream("USA"))
            held = [
                (await js.get_msg(subjects.inbox_stream("USA"), seq)).subject
                for seq in range(info.state.first_seq, info.state.last_seq + 1)
            ]
        assert held == [subjects.inbox_subject("USA", "MEX", "honest")]
    finally:
        leaf.stop()


@pytest.mark.parametrize(
    ("account", "user"), [("USA", "node"), ("MEX", "node"), ("SEC", "operator")]
)
async def test_only_a_leaf_users_key_opens_a_leaf_link_and_a_leaf_key_no_client_connection(
    leaf_hub: Hub, tmp_path: Path, account: str, user: str
) -> None:
    """The leaf listener takes the keys of the users allowed a leaf and nothing else: not a
    node's key (USA was never allowed a leaf; MEX's node key is not its leaf key), not the
    secretariat's; and the leaf user's key opens no ordinary client connection."""
    root = tmp_path / f"leaf-as-{account}-{user}"
    root.mkdir()
    body = {
        "port": -1,
        "host": "127.0.0.1",
        "leafnodes": {
            "reconnect": "1s",
            "remotes": [{
                "urls": [leaf_hub.home.leaf_url()],
                "nkey": leaf_hub.home.user_seed(account, user).read_text().strip(),
            }],
        },
    }  # fmt: skip
    write_secret(root / "leaf.conf", json.dumps(body).encode())
    log = root / "leaf.log"
    running = server.start(root / "leaf.conf", run_dir=root, log_file=log)
    try:
        # nats-server logs "connection created" for every attempt; the hub's verdict follows
        await eventually(lambda: "Leafnode Error 'Authorization Violation'" in log.read_text(),
                         what="the hub refusing the leaf link")  # fmt: skip
    finally:
        server.stop(running.pid)
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(
            leaf_hub.url, nkeys_seed=str(leaf_hub.home.user_seed("MEX", LEAF_USER)),
            max_reconnect_attempts=0, allow_reconnect=False, connect_timeout=2,
        )  # fmt: skip


DESTRUCTIVE_CALLS = (
    "STREAM.DELETE.{outbox}",
    "STREAM.PURGE.{outbox}",
    "STREAM.UPDATE.{outbox}",
    "STREAM.MSG.DELETE.{outbox}",
    "STREAM.DELETE.{inbox}",
    "CONSUMER.DELETE.{outbox}.{relay}",
    "CONSUMER.DELETE.{inbox}.{node}",
    # redefined by a create with its name (the filter to nothing, the window to one), or reset
    # past the end: the outbox would stay unsent while every PubAck said stored
    "CONSUMER.CREATE.{outbox}.{relay}",
    "CONSUMER.CREATE.{outbox}.{relay}.inbox.USA.MEX.none",
    "CONSUMER.DURABLE.CREATE.{outbox}.{relay}",
    "CONSUMER.RESET.{outbox}.{relay}",
    "CONSUMER.CREATE.{inbox}.{node}",
    "CONSUMER.RESET.{inbox}.{node}",
)


@pytest.mark.parametrize("prefix", ["$JS.API", "$JS.leaf-MEX.API"])
async def test_the_node_on_its_leaf_cannot_undo_what_the_leaf_holds(
    leaf_hub: Hub, tmp_path: Path, prefix: str
) -> None:
    """The node's own user on the leaf: a node that misbehaves (or whose key is taken) cannot
    delete, purge or redefine the outbox that holds what it sent, the inbox mirror, or the
    durable consumers the link runs on, under the local API prefix or the leaf's domain's.
    Each call is refused by the leaf server itself: a permissions violation naming it (a
    domain's call is named as the local API call nats-server maps it to)."""
    leaf = await start_leaf(leaf_hub, "MEX", tmp_path)
    names = {
        "outbox": subjects.leaf_outbox_stream("MEX"),
        "inbox": subjects.inbox_stream("MEX"),
        "relay": subjects.RELAY_CONSUMER,
        "node": subjects.NODE_CONSUMER,
    }
    calls = [call.format(**names) for call in DESTRUCTIVE_CALLS]
    refused: list[str] = []

    async def on_error(exc: Exception) -> None:
        refused.append(str(exc).lower())

    def named(call: str) -> bool:
        return any(f'"$js.api.{call.lower()}"' in e for e in refused)

    try:
        seed = leaf.seed(NODE).read_text().strip()
        nc = await nats.connect(leaf.url(), nkeys_seed_str=seed, error_cb=on_error)
        try:
            for call in calls:
                await nc.publish(f"{prefix}.{call}", b'{"seq": 1}', reply=nc.new_inbox())
            # nor may it answer the hub's flow control for the outbox, or deliver as the link
            link = [f"$JS.FC.{names['outbox']}.x.y", subjects.relay_consumer_deliver("MEX")]
            for subject in link:
                await nc.publish(subject, b"")
            await nc.flush()
            await eventually(lambda: all(named(c) for c in calls), what="every call refused")
            await eventually(
                lambda: all(any(f'"{x.lower()}"' in e for e in refused) for x in link),
                what="the link's subjects refused",
            )
        finally:
            await nc.close()
        assert all("permissions violation" in e for e in refused)
        async with connect(leaf.url(), leaf.seed(ADMIN)) as admin:
            js = admin.jetstream()
            await js.stream_info(names["outbox"])
            await js.stream_info(names["inbox"])
            await js.consumer_info(names["outbox"], subjects.RELAY_CONSUMER)
            await js.consumer_info(names["inbox"], subjects.NODE_CONSUMER)
    finally:
        leaf.stop()

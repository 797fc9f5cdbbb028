"""Isolation by the broker's real permissions: one state's node credentials against another's.

Each denial is checked twice: the server reports a permissions violation for exactly that subject,
and the attempt had no effect (nothing read, nothing stored, nothing deleted). Each test also does
the permitted neighbour of the forbidden act, so that it cannot pass because nothing works at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import nats
import pytest
from nats.aio.client import Client
from nats.js import api

from services.core import connection, subjects
from services.hub.credentials import PROVISION_USER
from services.testbed.cluster import ClusterHub
from tests.support.hub import Hub, eventually

pytestmark = pytest.mark.asyncio


@dataclass
class Connection:
    nc: Client
    violations: list[str] = field(default_factory=list)
    _seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def violation(self, subject: str, timeout: float = 5.0) -> str:
        """Wait for the server's permissions violation naming ``subject``."""

        async def named() -> str:
            while True:
                for v in self.violations:
                    # nats-py lower-cases the server's message
                    if (
                        "permissions violation for" in v.lower()
                        and f'"{subject.lower()}"' in v.lower()
                    ):
                        return v
                self._seen.clear()
                await self._seen.wait()

        return await asyncio.wait_for(named(), timeout)


@asynccontextmanager
async def as_node(hub: Hub, state: str) -> AsyncIterator[Connection]:
    conn: Connection | None = None

    async def on_error(exc: Exception) -> None:
        assert conn is not None
        conn.violations.append(str(exc))
        conn._seen.set()

    nc = await nats.connect(
        connection.servers(hub.url), nkeys_seed=str(hub.home.node_seed(state)), error_cb=on_error,
        allow_reconnect=False,
    )  # fmt: skip
    conn = Connection(nc)
    try:
        yield conn
    finally:
        await nc.close()


async def every_replica_holds(hub: Hub, state: str, stream: str) -> None:
    """Until every replica of ``state``'s ``stream`` holds what its leader holds. A direct get is
    answered by any replica of an R3 stream, and a follower may not yet have applied what the
    leader acknowledged (nats-server promises no read-after-write there): on the cluster, a test
    direct-gets what was just written once every member holds it. One server: at once."""
    if not isinstance(hub, ClusterHub):
        return
    async with connection.connect(hub.url, hub.home.user_seed(state, PROVISION_USER)) as nc:
        held = (await nc.jetstream().stream_info(stream)).state.messages
    await eventually(
        lambda: hub.replica_messages(state, stream) == dict.fromkeys(hub.names, held),
        what=f"every replica of {state}'s {stream} holding its {held} messages",
    )


async def stored(hub: Hub, state: str) -> int:
    async with connection.connect(hub.url, hub.home.user_seed(state, PROVISION_USER)) as nc:
        info = await nc.jetstream().stream_info(subjects.inbox_stream(state))
        return info.state.messages


async def test_a_state_cannot_subscribe_to_another_states_inbox(hub: Hub) -> None:
    async with as_node(hub, "USA") as usa:
        await usa.nc.subscribe("inbox.MEX.>")
        await usa.nc.flush()
        await usa.violation("inbox.MEX.>")
        # nor to its own inbox subjects: it reads only through its consumer
        await usa.nc.subscribe("inbox.USA.>")
        await usa.violation("inbox.USA.>")


async def test_a_state_cannot_read_another_states_stream_or_consumer(hub: Hub) -> None:
    async with as_node(hub, "MEX") as mex:
        ack = await mex.nc.jetstream().publish(
            subjects.inbox_subject("USA", "MEX", "m1"), b"sealed", headers={"Nats-Msg-Id": "m1"}
        )
        assert ack.stream == "INBOX_USA"
    async with as_node(hub, "COL") as col:
        js = col.nc.jetstream()
        with pytest.raises((nats.errors.TimeoutError, nats.js.errors.Error)):
            sub = await js.pull_subscribe_bind("node", "INBOX_USA")
            await sub.fetch(1, timeout=0.3)
        await col.violation("$JS.API.CONSUMER.MSG.NEXT.INBOX_USA.node")
        for api_subject in ("$JS.API.STREAM.MSG.GET.INBOX_USA", "$JS.API.DIRECT.GET.INBOX_USA"):
            with pytest.raises(nats.errors.TimeoutError):
                await col.nc.request(api_subject, b'{"seq":1}', timeout=0.3)
            await col.violation(api_subject)
    async with as_node(hub, "USA") as usa:  # the owner reads it through its consumer
        sub = await usa.nc.jetstream().pull_subscribe_bind("node", "INBOX_USA")
        [msg] = await sub.fetch(1, timeout=5)
        assert msg.data == b"sealed"


async def test_a_state_cannot_publish_as_another_state(hub: Hub) -> None:
    async with as_node(hub, "COL") as col:
        forged = subjects.inbox_subject("USA", "MEX", "forged")
        with pytest.raises(nats.errors.TimeoutError):
            await col.nc.jetstream().publish(forged, b"as MEX", timeout=0.3)
        await col.violation(forged)
        # publishing under its own name is what it may do
        ack = await col.nc.jetstream().publish(subjects.inbox_subject("USA", "COL", "own"), b"x")
        assert ack.stream == "INBOX_USA"
    assert await stored(hub, "USA") == 1


async def test_a_state_cannot_write_into_its_own_inbox_under_another_name(hub: Hub) -> None:
    async with as_node(hub, "USA") as usa:
        subject = subjects.inbox_subject("USA", "MEX", "self-forged")
        with pytest.raises(nats.errors.TimeoutError):
            await usa.nc.jetstream().publish(subject, b"as MEX", timeout=0.3)
        await usa.violation(subject)
    assert await stored(hub, "USA") == 0


async def test_a_node_cannot_delete_or_purge_streams(hub: Hub) -> None:
    async with as_node(hub, "MEX") as mex:
        await mex.nc.jetstream().publish(subjects.inbox_subject("USA", "MEX", "keep"), b"x")
    async with as_node(hub, "USA") as usa:
        for action in ("STREAM.DELETE", "STREAM.PURGE", "STREAM.MSG.DELETE", "STREAM.UPDATE"):
            for stream in ("INBOX_USA", "QUARANTINE_USA"):
                api_subject = f"$JS.API.{action}.{stream}"
                with pytest.raises(nats.errors.TimeoutError):
                    await usa.nc.request(api_subject, b"{}", timeout=0.3)
                await usa.violation(api_subject)
    assert await stored(hub, "USA") == 1


async def test_even_the_secretariat_cannot_purge_or_delete_messages_of_an_inbox(hub: Hub) -> None:
    async with as_node(hub, "MEX") as mex:
        await mex.nc.jetstream().publish(subjects.inbox_subject("USA", "MEX", "keep"), b"x")
    async with connection.connect(hub.url, hub.home.user_seed("USA", PROVISION_USER)) as nc:
        jsm = nc.jsm()
        with pytest.raises(nats.js.errors.Error):
            await jsm.purge_stream("INBOX_USA")
        with pytest.raises(nats.js.errors.Error):
            await jsm.delete_msg("INBOX_USA", 1)
    assert await stored(hub, "USA") == 1


async def test_a_node_cannot_create_change_or_delete_a_consumer(hub: Hub) -> None:
    async with as_node(hub, "USA") as usa:
        js = usa.nc.jetstream()
        config = api.ConsumerConfig(durable_name="spy", ack_policy=api.AckPolicy.EXPLICIT)
        with pytest.raises(nats.errors.TimeoutError):
            await js.add_consumer("INBOX_USA", config=config, timeout=0.3)
        await usa.violation("$JS.API.CONSUMER.DURABLE.CREATE.INBOX_USA.spy")
        for api_subject in (
            "$JS.API.CONSUMER.CREATE.INBOX_USA",  # an ephemeral consumer
            "$JS.API.CONSUMER.DELETE.INBOX_USA.node",
            "$JS.API.CONSUMER.CREATE.INBOX_USA.node",
            "$JS.API.STREAM.CREATE.STOLEN",
        ):
            with pytest.raises(nats.errors.TimeoutError):
                await usa.nc.request(api_subject, b"{}", timeout=0.3)
            await usa.violation(api_subject)
        # reading its own consumer's info is allowed (and all it may know of the server)
        info = await js.consumer_info("INBOX_USA", "node")
        assert info.config.durable_name == "node"


async def test_the_account_wall_holds_even_for_a_states_unrestricted_user(hub: Hub) -> None:
    """MEX's provisioning user may do anything in MEX's account, and still sees nothing of
    USA's: another account's streams and subjects do not exist for it."""
    async with connection.connect(hub.url, hub.home.user_seed("MEX", PROVISION_USER)) as nc:
        with pytest.raises(nats.js.errors.NotFoundError):
            await nc.jetstream().stream_info("INBOX_USA")
        sub = await nc.subscribe("inbox.USA.>")
        await nc.flush()
        async with as_node(hub, "COL") as col:
            await col.nc.jetstream().publish(subjects.inbox_subject("USA", "COL", "x"), b"x")
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.5)
    assert await stored(hub, "USA") == 1  # it was delivered where it belongs


async def test_a_node_reads_its_directory_bucket_and_cannot_write_it(hub: Hub) -> None:
    await every_replica_holds(hub, "USA", "KV_DIRECTORY")  # the directory was just published
    async with as_node(hub, "USA") as usa:
        kv = await usa.nc.jetstream().key_value("DIRECTORY")
        entry = await kv.get("MEX")  # reading is what it is for
        assert entry.value is not None and b"entry" in entry.value
        with pytest.raises(nats.errors.TimeoutError):
            await usa.nc.jetstream().publish("$KV.DIRECTORY.MEX", b"forged", timeout=0.3)
        await usa.violation("$KV.DIRECTORY.MEX")
    async with as_node(hub, "COL") as col:  # nor can another state reach USA's directory path
        with pytest.raises(nats.errors.TimeoutError):
            await col.nc.jetstream().publish("directory.USA.MEX", b"forged", timeout=0.3)
        await col.violation("directory.USA.MEX")


async def test_a_state_direct_gets_its_own_inbox_and_not_another_states(hub: Hub) -> None:
    """What `cifta node recover` replays from: the node's own inbox by stream sequence, and no
    other state's."""
    async with as_node(hub, "MEX") as mex:
        await mex.nc.jetstream().publish(subjects.inbox_subject("USA", "MEX", "r1"), b"sealed-1")
        await mex.nc.jetstream().publish(subjects.inbox_subject("COL", "MEX", "r2"), b"sealed-2")
    await every_replica_holds(hub, "USA", "INBOX_USA")
    await every_replica_holds(hub, "COL", "INBOX_COL")
    async with as_node(hub, "USA") as usa:
        js = usa.nc.jetstream()
        info = await js.stream_info("INBOX_USA")
        assert info.config.allow_direct and info.state.last_seq == 1
        got = await js.get_msg("INBOX_USA", 1, direct=True)
        assert got.data == b"sealed-1" and got.subject == "inbox.USA.MEX.r1"
        last = await js.get_msg("INBOX_USA", subject="inbox.USA.MEX.r1", direct=True)
        assert last.seq == 1  # by subject: the `.>` form of the same API
        for api_subject in (
            "$JS.API.DIRECT.GET.INBOX_COL",
            "$JS.API.DIRECT.GET.INBOX_COL.inbox.COL.MEX.r2",
            "$JS.API.STREAM.INFO.INBOX_COL",
            "$JS.API.STREAM.MSG.GET.INBOX_USA",  # the non-direct get stays the secretariat's
        ):
            with pytest.raises(nats.errors.TimeoutError):
                await usa.nc.request(api_subject, b'{"seq":1}', timeout=0.3)
            await usa.violation(api_subject)
    async with as_node(hub, "COL") as col:  # the owner of that inbox still reads it
        assert (await col.nc.jetstream().get_msg("INBOX_COL", 1, direct=True)).data == b"sealed-2"


async def test_no_one_can_purge_a_states_directory_bucket(hub: Hub) -> None:
    async with as_node(hub, "USA") as usa:
        with pytest.raises(nats.errors.TimeoutError):
            await usa.nc.request("$JS.API.STREAM.PURGE.KV_DIRECTORY", b"{}", timeout=0.3)
        await usa.violation("$JS.API.STREAM.PURGE.KV_DIRECTORY")
    # not even the account's provisioning user: the bucket denies purge and deletes
    async with connection.connect(hub.url, hub.home.user_seed("USA", PROVISION_USER)) as nc:
        info = await nc.jetstream().stream_info("KV_DIRECTORY")
        assert info.config.deny_purge and info.config.deny_delete
        entries = info.state.messages
        assert entries == len(hub.keys)  # one signed entry per state
        with pytest.raises(nats.js.errors.Error):
            await nc.jsm().purge_stream("KV_DIRECTORY")
        with pytest.raises(nats.js.errors.Error):
            await nc.jsm().delete_msg("KV_DIRECTORY", 1)
        assert (await nc.jetstream().stream_info("KV_DIRECTORY")).state.messages == entries

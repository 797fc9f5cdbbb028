"""The whole membership on the cluster: the 35 OAS member states provisioned R3, each state's
inbox filled and drained with its own node credentials, and each state's wall checked.

Shared by ``bench/cluster_scale.py`` (35 x 1,000) and a bounded test (35 x 20). The hub stores
envelopes as opaque bytes, so the load is the sealed envelopes' size in random bytes, published
the way a node publishes (one subject per recipient inbox, ``Nats-Msg-Id``), read the way a node
reads (its durable consumer, explicit acknowledgements).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout

from services.core import subjects
from services.core.connection import connect, servers
from services.hub import members
from services.hub.credentials import PROVISION_USER
from services.testbed.cluster import ClusterHub
from services.testbed.hub import Hub

#: The size of a typical sealed report: a few KiB of ciphertext and signatures.
ENVELOPE_BYTES = 4 * 1024


@dataclass(frozen=True)
class ServerFigures:
    name: str
    rss: int  # bytes, resident
    disk: int  # bytes under its JetStream store


@asynccontextmanager
async def as_node(hub: Hub, state: str, errors: list[str] | None = None) -> AsyncIterator[Client]:
    """A connection with ``state``'s node credentials, to any member; the server's errors
    (permissions violations) go to ``errors``."""

    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(str(exc).lower())

    nc = await nats.connect(
        servers(hub.url), nkeys_seed=str(hub.home.node_seed(state)), error_cb=on_error
    )
    try:
        yield nc
    finally:
        await nc.close()


def sender_of(states: tuple[str, ...], recipient: str) -> str:
    """Each state receives from the next one in the list (the last from the first)."""
    return states[(states.index(recipient) + 1) % len(states)]


async def fill(hub: Hub, states: tuple[str, ...], per_state: int) -> None:
    """Queue ``per_state`` envelopes in every state's inbox, each sent by another state."""

    async def one(recipient: str) -> None:
        sender = sender_of(states, recipient)
        async with as_node(hub, sender) as nc:
            js = nc.jetstream()
            for i in range(per_state):
                msg_id = f"{sender}-{recipient}-{i}"
                await js.publish(
                    subjects.inbox_subject(recipient, sender, msg_id), os.urandom(ENVELOPE_BYTES),
                    headers={"Nats-Msg-Id": msg_id},
                )  # fmt: skip

    await asyncio.gather(*(one(s) for s in states))


def expected_ids(states: tuple[str, ...], recipient: str, per_state: int) -> list[str]:
    """The ``Nats-Msg-Id`` of every envelope :func:`fill` queues for ``recipient``."""
    sender = sender_of(states, recipient)
    return [f"{sender}-{recipient}-{i}" for i in range(per_state)]


async def drain(hub: Hub, states: tuple[str, ...], per_state: int) -> dict[str, list[str]]:
    """Every state reads and acknowledges its inbox through its node consumer until it has
    ``per_state`` different envelopes (or nothing more comes); the ``Nats-Msg-Id`` of every
    delivery, in order, duplicates included."""

    async def one(state: str) -> list[str]:
        got: list[str] = []
        async with as_node(hub, state) as nc:
            sub = await nc.jetstream().pull_subscribe_bind(
                subjects.NODE_CONSUMER, subjects.inbox_stream(state)
            )
            while len(set(got)) < per_state:
                try:
                    batch = await sub.fetch(min(256, per_state - len(set(got))), timeout=5)
                except NatsTimeout:
                    break  # nothing more: the caller compares what arrived
                for msg in batch:
                    await msg.ack_sync()
                    got.append((msg.headers or {}).get("Nats-Msg-Id", ""))
        return got

    received = await asyncio.gather(*(one(s) for s in states))
    return dict(zip(states, received, strict=True))


async def walls_breached(hub: Hub, states: tuple[str, ...]) -> list[str]:
    """Every state's node credentials tried on its neighbour's inbox (read its stream, pull from
    its consumer, publish into its own inbox as the neighbour); each attempt that was answered,
    or that the server did not refuse with a permissions violation naming it. Each state also
    reads its own consumer, so that the check cannot pass because nothing works."""

    async def one(state: str) -> list[str]:
        other, breaches, errors = sender_of(states, state), list[str](), list[str]()
        async with as_node(hub, state, errors) as nc:
            own = subjects.inbox_stream(state)
            await nc.request(f"$JS.API.CONSUMER.INFO.{own}.{subjects.NODE_CONSUMER}", timeout=5)
            for subject in (
                f"$JS.API.STREAM.INFO.{subjects.inbox_stream(other)}",
                f"$JS.API.CONSUMER.MSG.NEXT.{subjects.inbox_stream(other)}.{subjects.NODE_CONSUMER}",
                subjects.inbox_subject(state, other, f"forged-{state}"),
            ):
                try:
                    await nc.request(subject, b"{}", timeout=1)
                    breaches.append(f"{state} answered on {subject}")
                except (NatsTimeout, nats.errors.NoRespondersError):
                    if not any(f'"{subject.lower()}"' in e for e in errors):
                        breaches.append(f"{state} not refused on {subject}")
        return breaches

    return [b for found in await asyncio.gather(*(one(s) for s in states)) for b in found]


async def audit_holds(hub: Hub) -> int:
    """How many messages the AUDIT stream holds (it sources every inbox)."""
    async with connect(hub.url, hub.home.user_seed("AUDIT", "audit")) as nc:
        info = await nc.jetstream().stream_info(subjects.AUDIT_STREAM)
    return info.state.messages


async def inbox_holds(hub: Hub, state: str) -> int:
    async with connect(hub.url, hub.home.user_seed(state, PROVISION_USER)) as nc:
        return (await nc.jetstream().stream_info(subjects.inbox_stream(state))).state.messages


def rss_of(pid: int) -> int:
    """The resident memory of process ``pid``, in bytes (Linux: /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def disk_of(store: Path) -> int:
    return sum(f.stat().st_size for f in store.rglob("*") if f.is_file())


def server_figures(hub: Hub) -> list[ServerFigures]:
    """Memory and disk of each of the hub's servers (one, or the cluster's three)."""
    if not isinstance(hub, ClusterHub):
        return [ServerFigures("single", rss_of(hub.pid), disk_of(hub.home.store_dir))]
    return [
        ServerFigures(
            m.name, rss_of(hub.member_pid(m.name)),
            disk_of(members.MemberPaths(hub.home.root, m.name).store),
        )
        for m in hub.cluster.members
    ]  # fmt: skip


async def timed(what: object) -> float:
    """Seconds ``what`` (an awaitable) took."""
    start = time.perf_counter()
    await what  # type: ignore[misc]
    return time.perf_counter() - start

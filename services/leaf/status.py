"""How a leaf link is doing, seen from either end (docs/operations.md, "A state's leaf").

A source or a mirror that cannot reach its origin still reports a lag of 0 (it last heard of
nothing more), so lag alone says nothing: each report also gives how long ago the other side was
last heard from (``active``, -1: never) and the last error. What waits to cross is counted where
it is stored: on the leaf, the relay consumer's messages not yet answered by the hub's flow
control; at the hub, the mirror consumer's not yet answered by the leaf.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerInfo
from nats.js.client import JetStreamContext

from services.core import subjects
from services.core.connection import connect


@dataclass(frozen=True)
class SourceHealth:
    """One source or mirror: what it reports of its origin."""

    origin: str
    lag: int
    active_s: float | None  # since the origin was last heard from; None: never
    error: str | None

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> SourceHealth:
        active = info.get("active", -1)
        error = info.get("error") or None
        return cls(
            origin=str(info.get("name", "?")),
            lag=int(info.get("lag") or 0),
            active_s=None if active is None or active < 0 else active / 1e9,
            error=None if error is None else str(error.get("description", error)),
        )

    def heard_within(self, seconds: float) -> bool:
        """The origin was heard from within ``seconds`` and no error stands."""
        return self.error is None and self.active_s is not None and self.active_s <= seconds

    def line(self) -> str:
        heard = "never heard from" if self.active_s is None else f"heard {self.active_s:.1f}s ago"
        error = f", error: {self.error}" if self.error else ""
        return f"{self.origin}: lag {self.lag}, {heard}{error}"


T = TypeVar("T")


class LinkStatusError(Exception):
    """A stream of the link could not be read; the message names it."""


def _unanswered(what: str) -> LinkStatusError:
    return LinkStatusError(
        f"{what}: JetStream did not answer, asked {ASKED} times {ANSWER_S:g} s apart (a server may "
        "be starting or "
        "its streams electing a leader): ask again in a moment"
    )


#: How long a status question waits for JetStream's answer, and how often it is asked: a
#: question sent while a stream of the hub's cluster elects a leader goes unanswered, and the
#: same question a moment later finds the new leader (a status is asked for in such moments).
ANSWER_S = 5.0
ASKED = 3


async def _asked(question: Callable[[], Awaitable[T]], what: str) -> T:
    for attempt in range(ASKED):
        try:
            return await question()
        except (NatsTimeout, NoRespondersError):
            if attempt == ASKED - 1:
                raise _unanswered(what) from None
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def _stream_info(nc: Client, stream: str) -> dict[str, Any]:
    """The stream's info as the server sends it (nats-py's keeps no source's ``active``)."""
    subject = f"$JS.API.STREAM.INFO.{stream}"
    reply = await _asked(lambda: nc.request(subject, b"", timeout=ANSWER_S), stream)
    data = json.loads(reply.data)
    if "error" in data:
        raise LinkStatusError(f"{stream}: {data['error'].get('description', data['error'])}")
    return dict(data)


async def _consumer_info(js: JetStreamContext, stream: str, name: str) -> ConsumerInfo:
    info: ConsumerInfo = await _asked(
        lambda: js.consumer_info(stream, name, timeout=ANSWER_S), f"{stream} consumer {name}"
    )
    return info


async def _mirrors(nc: Client, state: str) -> list[tuple[str, SourceHealth]]:
    return [
        (stream, SourceHealth.from_info((await _stream_info(nc, stream))["mirror"]))
        for stream in (subjects.inbox_stream(state), subjects.DIRECTORY_STREAM)
    ]


async def leaf_report(url: str, seed: Path, state: str) -> list[str]:
    """The leaf's side: its outbox, what of it the hub has not confirmed, its mirrors."""
    async with connect(url, seed, name="cifta-leaf-status") as nc:
        js = nc.jetstream()
        outbox = subjects.leaf_outbox_stream(state)
        held = int((await _stream_info(nc, outbox))["state"]["messages"])
        relay = await _consumer_info(js, outbox, subjects.RELAY_CONSUMER)
        waiting = (relay.num_pending or 0) + (relay.num_ack_pending or 0)
        lines = [f"{outbox}: {held} held, {waiting} not yet confirmed stored by the hub"]
        for stream, health in await _mirrors(nc, state):
            lines.append(f"{stream} (mirror) {health.line()}")
    return lines


async def leaf_mirrors(url: str, seed: Path, state: str) -> list[SourceHealth]:
    """The leaf's mirrors of the hub's inbox and directory bucket, as the leaf sees them."""
    async with connect(url, seed, name="cifta-leaf-status") as nc:
        return [health for _, health in await _mirrors(nc, state)]


async def inbox_sources(url: str, seed: Path, recipient: str) -> list[SourceHealth]:
    """The sources of ``recipient``'s inbox at the hub: the relays of the states on a leaf
    (``seed``: the recipient's provisioning seed)."""
    async with connect(url, seed) as nc:
        inbox = await _stream_info(nc, subjects.inbox_stream(recipient))
    return [SourceHealth.from_info(source) for source in inbox.get("sources") or []]


async def relay_sources(url: str, seed: Path, state: str) -> list[SourceHealth]:
    """The hub's relay of ``state`` and its source, the leaf's outbox (``seed``: the state's
    provisioning seed at the hub)."""
    async with connect(url, seed) as nc:
        relay = await _stream_info(nc, subjects.relay_stream(state))
    return [SourceHealth.from_info(source) for source in relay.get("sources") or []]


#: A source inside the hub's cluster hears its origin every few seconds (its heartbeats) while
#: the origin's servers run: one not heard for this long is stalled.
STALLED_S = 10.0


async def _step_down(url: str, seed: Path, stream: str) -> None:
    """Ask ``stream``'s leader to step down: the next one sets up its sources afresh."""
    subject = f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}"
    async with connect(url, seed) as nc:
        reply = await _asked(lambda: nc.request(subject, b"", timeout=ANSWER_S), subject)
    data = json.loads(reply.data)
    if "error" in data:
        raise LinkStatusError(f"{subject}: {data['error'].get('description', data['error'])}")


async def restart_relay_source(url: str, seed: Path, state: str) -> None:
    """Ask ``state``'s relay's leader to step down, so that the new one sets up its source of the
    leaf's outbox afresh (``seed``: the state's provisioning seed at the hub).

    Seen on a three-server hub: the relay's leadership moved while the link was cut; the new
    leader's setup request went nowhere, the leaf came back while that request was pending, and
    the source was not set up again within three minutes (nothing lost: the messages wait in
    the leaf's outbox). A leader set up with the leaf connected hears it at once."""
    await _step_down(url, seed, subjects.relay_stream(state))


@dataclass(frozen=True)
class Restarts:
    """The inboxes whose leader stepped down, and those that could not be asked (with why)."""

    restarted: list[str]
    failed: dict[str, str]


async def restart_stalled_inbox_sources(
    url: str, seeds: dict[str, Path], state: str, stalled_s: float = STALLED_S
) -> Restarts:
    """Step down the leader of every inbox whose source of ``state``'s relay has not heard it
    within ``stalled_s`` (``seeds``: each state's provisioning seed). An inbox that cannot be
    read or asked (a leader being elected) is reported and the others are still tried.

    The relay and the inboxes are streams of the same cluster, so such a source is stalled, not
    waiting for a link: nats-server can leave a source unset when its stream's leadership moves
    (a server killed, say), and stepping down is what sets it up again (nats-server issues and
    pull request 8323). Nothing is lost meanwhile: the messages wait in the relay."""
    relay = subjects.relay_stream(state)
    done = Restarts([], {})
    for recipient, seed in seeds.items():
        if recipient == state:
            continue
        try:
            sources = await inbox_sources(url, seed, recipient)
            if any(s.origin == relay and not s.heard_within(stalled_s) for s in sources):
                await _step_down(url, seed, subjects.inbox_stream(recipient))
                done.restarted.append(recipient)
        except LinkStatusError as exc:
            done.failed[recipient] = str(exc)
    return done


async def relay_hears_leaf(url: str, seed: Path, state: str, within_s: float = 3.0) -> bool:
    """``state``'s relay heard the leaf's outbox within ``within_s``: its source is set up."""
    sources = await relay_sources(url, seed, state)
    return bool(sources) and all(s.heard_within(within_s) for s in sources)


async def hub_report(url: str, seeds: dict[str, Path], leaves: list[str]) -> list[str]:
    """The hub's side, for each state on a leaf: its relay's source (the leaf's outbox), every
    inbox's source of that relay, and what of its inbox the leaf has not confirmed mirrored.
    ``seeds``: each state's provisioning seed."""
    lines: list[str] = []
    for state in leaves:
        for source in await relay_sources(url, seeds[state], state):
            lines.append(f"{state} relay <- {source.line()}")
        async with connect(url, seeds[state]) as nc:
            mirror = await _consumer_info(
                nc.jetstream(), subjects.inbox_stream(state), subjects.LEAF_MIRROR_CONSUMER
            )
            waiting = (mirror.num_pending or 0) + (mirror.num_ack_pending or 0)
            lines.append(f"{state} inbox -> leaf: {waiting} not yet confirmed mirrored")
    for recipient, seed in seeds.items():
        for source in await inbox_sources(url, seed, recipient):
            lines.append(f"{recipient} inbox <- {source.line()}")
    return lines

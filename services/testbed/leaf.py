"""A state on its own leaf node, for tests, benchmarks and the cluster demo: the hub allows it,
its leaf server starts in a temporary directory (through a cuttable proxy when asked), and its
node's settings point at the leaf."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

from services.core import subjects
from services.hub.credentials import LEAF_USER, PROVISION_USER
from services.leaf import status
from services.leaf.home import ADMIN, LeafHome, LeafSettings
from services.leaf.proxy import Proxy
from services.testbed.hub import Hub

#: A source or mirror counts as linked when its origin was heard this recently: its consumer's
#: heartbeat comes every second (services/hub/relay.py).
HEARD_WITHIN_S = 3.0


def allow_leaves(hub: Hub, *states: str) -> None:
    """Before the hub starts: a leaf listener, and ``states`` allowed to run a leaf."""
    hub.leaf_port = -1
    for state in states:
        hub.home.allow_leaf(state)


class Link:
    """A state's leaf link through one proxy per hub server: cut, paused, restored as one."""

    def __init__(self, proxies: list[Proxy]) -> None:
        self.proxies = proxies

    @property
    def url(self) -> str:
        return ",".join(f"nats-leaf://127.0.0.1:{p.port}" for p in self.proxies)

    def cut(self) -> None:
        for p in self.proxies:
            p.cut()

    def pause(self) -> None:
        for p in self.proxies:
            p.pause()

    def restore(self) -> None:
        for p in self.proxies:
            p.restore()

    async def stop(self) -> None:
        for p in self.proxies:
            await p.stop()


async def link_proxy(hub: Hub) -> Link:
    """Proxies in front of the hub's leaf listeners (one per server), started."""
    proxies = []
    for url in hub.home.leaf_url().split(","):
        target = urlsplit(url)
        proxy = Proxy(target.hostname or "127.0.0.1", target.port or 0)
        await proxy.start()
        proxies.append(proxy)
    return Link(proxies)


async def start_leaf(hub: Hub, state: str, root: Path, link: Link | None = None) -> LeafHome:
    """``state``'s leaf, started and provisioned, linked to the hub (through ``link``)."""
    url = hub.home.leaf_url() if link is None else link.url
    leaf = LeafHome(root / f"leaf-{state}")
    leaf.init(LeafSettings(state, url), hub.home.user_seed(state, LEAF_USER))
    leaf.render_config()
    await leaf.start(hub.policy)
    await until_linked(hub, leaf)
    return leaf


async def until_linked(hub: Hub, leaf: LeafHome, timeout: float = 90.0) -> None:
    """Wait until both ends of ``leaf``'s link hear each other: the hub's relay hears the leaf's
    outbox, every other state's inbox hears the relay, and the leaf's mirrors hear the hub.

    A link is up within a second when the leaf connects while no setup request is in flight.
    The first one usually is: the hub provisioned the relay before the leaf existed, and its
    request to reset the leaf's consumer went nowhere. nats-server then waits out that request
    (5 s) and retries when the consumer's heartbeat is heard or its backoff ends (10 s, then
    longer): what a state sends in the meantime waits in its outbox, and arrives once the link
    is set up (docs/operations.md, "A state's leaf"). A test that measures something after the
    start waits for this first."""
    state = leaf.settings().state
    provision_seed = hub.home.user_seed(state, PROVISION_USER)
    recipients = [s for s in hub.home.registry().codes() if s != state]
    deadline = time.monotonic() + timeout
    while True:
        relay = await status.relay_sources(hub.url, provision_seed, state)
        mirrors = await status.leaf_mirrors(leaf.url(), leaf.seed(ADMIN), state)
        inboxes = [  # every other state's inbox hears the relay too
            source
            for recipient in recipients
            for source in await status.inbox_sources(
                hub.url, hub.home.user_seed(recipient, PROVISION_USER), recipient
            )
            if source.origin == subjects.relay_stream(state)
        ]
        ends = relay + mirrors + inboxes
        if ends and all(end.heard_within(HEARD_WITHIN_S) for end in ends):
            return
        if time.monotonic() > deadline:
            lines = "; ".join(end.line() for end in ends)
            raise TimeoutError(f"{state}'s leaf link not set up after {timeout}s: {lines}")
        await asyncio.sleep(0.2)

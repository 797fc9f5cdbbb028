"""A state on its own leaf node, for tests, benchmarks and the cluster demo: the hub allows it,
its leaf server starts in a temporary directory (through a cuttable proxy when asked), and its
node's settings point at the leaf."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from services.hub.credentials import LEAF_USER
from services.leaf.home import LeafHome, LeafSettings
from services.leaf.proxy import Proxy
from services.testbed.hub import Hub


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
    return leaf

"""A state on its own leaf node, for tests, benchmarks and the cluster demo: the hub allows it,
its leaf server starts in a temporary directory (through a cuttable proxy when asked), and its
node's settings point at the leaf."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from services.hub.credentials import LEAF_USER
from services.leaf.home import LeafHome, LeafSettings
from services.testbed.hub import Hub
from services.testbed.proxy import Proxy


def allow_leaves(hub: Hub, *states: str) -> None:
    """Before the hub starts: a leaf listener, and ``states`` allowed to run a leaf."""
    hub.leaf_port = -1
    for state in states:
        hub.home.allow_leaf(state)


async def link_proxy(hub: Hub) -> Proxy:
    """A proxy in front of the hub's leaf listener, started."""
    target = urlsplit(hub.home.leaf_url())
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 0)
    await proxy.start()
    return proxy


async def start_leaf(hub: Hub, state: str, root: Path, proxy: Proxy | None = None) -> LeafHome:
    """``state``'s leaf, started and provisioned, linked to the hub (through ``proxy``)."""
    url = hub.home.leaf_url() if proxy is None else f"nats-leaf://127.0.0.1:{proxy.port}"
    leaf = LeafHome(root / f"leaf-{state}")
    leaf.init(LeafSettings(state, url), hub.home.user_seed(state, LEAF_USER))
    leaf.render_config()
    await leaf.start(hub.policy)
    return leaf

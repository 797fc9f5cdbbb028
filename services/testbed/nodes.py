"""Nodes running in the caller's event loop, against a testbed hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from services.node.app import NodeRuntime
from services.testbed.hub import Hub


@asynccontextmanager
async def running_node(
    hub: Hub, party: str, root: Path, **overrides: object
) -> AsyncIterator[NodeRuntime]:
    """A started node of ``party`` (settings from :meth:`Hub.node_settings`), stopped after."""
    # keys from the node's own key file (written from hub.keys on first use), so that what a
    # rotation writes there is what the node uses when it starts again
    runtime = NodeRuntime(hub.node_settings(party, root, **overrides))
    await runtime.start(connect_timeout=10)
    try:
        yield runtime
    finally:
        await runtime.stop()

"""Nodes running in the test's event loop, and what tests read from their stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from schemas import HandlingCode
from schemas.registry import example_body
from services.core.envelope import ProtectedHeader
from services.node.app import NodeRuntime
from tests.support.hub import Hub


@asynccontextmanager
async def running_node(
    hub: Hub, party: str, root: Path, **overrides: object
) -> AsyncIterator[NodeRuntime]:
    # keys from the node's own key file (written from hub.keys on first use), so that what a
    # rotation writes there is what the node uses when it starts again
    runtime = NodeRuntime(hub.node_settings(party, root, **overrides))
    await runtime.start(connect_timeout=10)
    try:
        yield runtime
    finally:
        await runtime.stop()


def send_routes_report(
    node: NodeRuntime, to: list[str], case_id: str = "MEX-FGR-2026-0412"
) -> ProtectedHeader:
    header = node.core.compose(
        example_body("info.trafficking_routes"),
        to,
        handling=HandlingCode.H2,
        confidential=True,
        case_id=case_id,
    )
    node.outbox.wake()
    return header


def delivered_to(node: NodeRuntime, msg_id: str) -> set[str]:
    return {s.recipient for s in node.store.recipient_statuses(msg_id) if s.state == "delivered"}

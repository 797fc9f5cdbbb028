"""Nodes running in the test's event loop, and what tests read from their stores."""

from __future__ import annotations

from schemas import HandlingCode
from schemas.registry import example_body
from services.core.envelope import ProtectedHeader
from services.node.app import NodeRuntime
from services.testbed.nodes import running_node


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


__all__ = ["delivered_to", "running_node", "send_routes_report"]

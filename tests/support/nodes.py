"""Nodes running in the test's event loop, and what tests read from their stores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nats.js.api import RawStreamMsg

from schemas import HandlingCode
from schemas.registry import example_body
from services.core.connection import connect
from services.core.envelope import ProtectedHeader, peek_header
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


async def stream_messages(url: str, seed: Path, stream: str) -> list[RawStreamMsg]:
    """Every message ``stream`` holds, in stream order (``seed``: a user of its account)."""
    async with connect(url, seed) as nc:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        return [
            await js.get_msg(stream, seq)
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]


def copies_by_id(messages: list[RawStreamMsg]) -> dict[str, list[RawStreamMsg]]:
    """Messages of an inbox or a relay by the msg_id their subject ends with, in stream order."""
    copies: dict[str, list[RawStreamMsg]] = {}
    for msg in messages:
        copies.setdefault((msg.subject or "").rsplit(".", 1)[-1], []).append(msg)
    return copies


class _Acked:
    """What a publish reports when the stream acknowledged a message it then lost."""

    def __init__(self) -> None:
        self.stream, self.seq, self.duplicate = "lost", 0, False


def lose_first(node: NodeRuntime, which: Callable[[bytes], bool]) -> list[str]:
    """Make the node's first publish of an envelope ``which`` picks report a PubAck without
    publishing anything; returns the msg_ids of the envelopes so lost."""
    publish, lost = node.outbox._publish, []

    async def losing(data: bytes, *args: Any) -> Any:
        if not lost and which(data):
            lost.append(peek_header(data).msg_id)
            return _Acked()
        return await publish(data, *args)

    node.outbox._publish = losing  # type: ignore[assignment]
    return lost


def resends(node: NodeRuntime, msg_id: str, recipient: str) -> int:
    """How many times the node sent ``msg_id`` to ``recipient`` again for want of an answer."""
    row = node.store.db.execute(
        "SELECT resends FROM outbox WHERE msg_id = ? AND recipient = ?", (msg_id, recipient)
    ).fetchone()
    return int(row[0])


__all__ = [
    "copies_by_id", "delivered_to", "lose_first", "resends", "running_node",
    "send_routes_report", "stream_messages",
]  # fmt: skip

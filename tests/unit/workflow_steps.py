"""Builders for the pure decide functions' tests: bodies from the registry's examples and the
:class:`Step` a node would hand over, with no store, no broker and no clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from schemas import Body, HandlingCode
from schemas.registry import BODY_MODELS, example_body
from services.node.workflows.steps import Step

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
_ids = count(1)


def body(kind: str, **changes: Any) -> Body:
    """The registry's example of ``kind`` with ``changes``, validated like a received body."""
    data = {**example_body(kind).model_dump(mode="json"), **changes}
    return BODY_MODELS[kind].model_validate(data)


def msg_id() -> str:
    """A fresh message id (UUIDv7-shaped; only its uniqueness matters here)."""
    return f"019ab5c2-7d10-7a3e-8f21-{next(_ids):012x}"


def step(
    sender: str,
    to: Iterable[str],
    b: Body,
    *,
    party: str,
    at: datetime = NOW,
    after: timedelta = timedelta(0),
    **options: Any,
) -> Step:
    """``sender``'s message ``b`` to ``to`` as node ``party`` is about to store it: its own
    (``mine``) when ``party`` sent it."""
    return Step(
        msg_id=options.pop("msg_id", None) or msg_id(),
        kind=b.kind,
        sender=sender,
        recipients=tuple(to),
        at=at + after,
        body=b,
        party=party,
        mine=sender == party,
        handling=options.pop("handling", HandlingCode.H1),
        **options,
    )

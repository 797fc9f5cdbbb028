"""Blind record lookup under the broker's real permissions (services/hub/lookup.py).

As in test_isolation: each denial is seen as the server's permissions violation or as the
absence of any responder, shown to have had no effect, and set beside the permitted neighbour.
"""

from __future__ import annotations

from datetime import UTC, datetime

import nats
import pytest

from services.core import connection, subjects
from services.hub.credentials import PROVISION_USER
from services.node.lookup_client import build_filter, fetch_filter, publish_filter
from tests.security.test_isolation import as_node
from tests.support.hub import Hub

pytestmark = pytest.mark.asyncio
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _filter(hub: Hub, state: str, n: int) -> bytes:
    inputs = [f"cifta-lookup-v1\x00GLOCK\x00A{i}".encode() for i in range(n)]
    return build_filter(hub.keys[state], inputs, 1e-6, NOW)


async def _records_of(hub: Hub, state: str) -> int | None:
    """``state``'s published filter as another state (COL) reads it: its record count."""
    directory = hub.node_settings("COL", hub.home.root.parent).directory_trust().directory()
    async with as_node(hub, "COL") as col:
        published = await fetch_filter(col.nc, state, directory)
    return None if published is None else published.records


async def test_a_state_cannot_write_another_states_filter(hub: Hub) -> None:
    async with as_node(hub, "USA") as usa:
        await publish_filter(usa.nc, "USA", _filter(hub, "USA", 3))  # its own: permitted
    assert await _records_of(hub, "USA") == 3

    key = subjects.lookup_filter_key("USA")
    async with as_node(hub, "MEX") as mex:
        with pytest.raises(nats.errors.TimeoutError):
            await mex.nc.jetstream().publish(key, _filter(hub, "MEX", 7), timeout=0.5)
        await mex.violation(key)
        # its own filter, through the same bucket: permitted
        await publish_filter(mex.nc, "MEX", _filter(hub, "MEX", 7))
    # MEX's unrestricted provisioning user cannot reach the bucket either: no import leads there
    async with connection.connect(hub.url, hub.home.user_seed("MEX", PROVISION_USER)) as nc:
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await nc.jetstream().publish(key, _filter(hub, "MEX", 7), timeout=0.5)
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request(f"{subjects.LOOKUP_API}.STREAM.PURGE.{subjects.LOOKUP_STREAM}", b"")
    assert await _records_of(hub, "USA") == 3
    assert await _records_of(hub, "MEX") == 7


async def test_a_state_cannot_reach_the_filter_bucket_but_to_read_it(hub: Hub) -> None:
    async with as_node(hub, "MEX") as mex:
        for api in ("STREAM.PURGE", "STREAM.DELETE", "STREAM.INFO", "CONSUMER.CREATE"):
            subject = f"{subjects.LOOKUP_API}.{api}.{subjects.LOOKUP_STREAM}"
            with pytest.raises(nats.errors.TimeoutError):
                await mex.nc.request(subject, b"{}", timeout=0.3)
            await mex.violation(subject)


async def test_a_state_cannot_ask_as_another_state_or_answer_for_one(hub: Hub) -> None:
    async with as_node(hub, "MEX") as mex:
        forged = subjects.lookup_evaluation_subject("USA", "COL")
        with pytest.raises(nats.errors.TimeoutError):
            await mex.nc.request(forged, b"{}", timeout=0.3)
        await mex.violation(forged)
        endpoint = subjects.lookup_evaluation_filter("USA")
        await mex.nc.subscribe(endpoint)
        await mex.violation(endpoint)
        # asking as itself reaches USA's account (nobody answers there in this test)
        with pytest.raises(nats.errors.NoRespondersError):
            await mex.nc.request(subjects.lookup_evaluation_subject("USA", "MEX"), b"{}")

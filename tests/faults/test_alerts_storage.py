"""The storage alerts of deploy/prometheus/alerts.yml fire when a state's inbox and account fill
up at a real hub, and not before (issue 15).

The hub is rendered with the smallest state account the plan allows (64 MiB, services/hub/
resources.py), so 80% of an inbox or an account is reached with a few dozen envelopes of 1 MiB.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import nats
import pytest

from services.core import subjects
from services.core.metrics import MetricsServer
from services.hub.config import Listen
from services.hub.monitor import HubMonitor
from services.hub.resources import GIB, MIB, Resources
from tests.support.hub import Hub
from tests.support.metrics import hub_monitor, scrape, served, take, value
from tests.support.promql import Scrapes, firing

#: the plan's floor for a state's account; the AUDIT account must still hold its 1 GiB quarantine
SMALL = Resources(jetstream_disk=2 * GIB, planned_states=3, state_disk=64 * MIB)
CHUNK = b"\0" * MIB


@pytest.fixture
async def small_hub(hub_home: Hub) -> AsyncIterator[Hub]:
    """A running, provisioned hub whose state accounts hold 64 MiB each."""
    hub_home.home.render_config(Listen(port=-1), SMALL)
    hub_home.start()  # keeps the resources just rendered
    await hub_home.provision()
    yield hub_home


async def publish(hub: Hub, user: str, subject_of: list[str]) -> None:
    """One 1 MiB message on each subject, as ``user``'s node."""
    nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(user)))
    try:
        js = nc.jetstream()
        for subject in subject_of:
            await js.publish(subject, CHUNK, timeout=10)
    finally:
        await nc.close()


def into_inbox(recipient: str, sender: str, first: int, count: int) -> list[str]:
    return [subjects.inbox_subject(recipient, sender, f"m{i}") for i in range(first, first + count)]


async def test_an_inbox_nobody_reads_fires_state_inbox_near_limit_past_80_percent(
    small_hub: Hub,
) -> None:
    monitor = hub_monitor(small_hub)
    async with served(monitor.registry, monitor.ready) as m:
        limit = value(
            await _refreshed(monitor, m), "cifta_hub_stream_max_bytes", stream="INBOX_USA"
        )
        under = int(limit * 0.75) // MIB  # 75% of the inbox: still under the threshold
        await publish(small_hub, "MEX", into_inbox("USA", "MEX", 0, under))
        await monitor.refresh()
        assert firing("StateInboxNearLimit", await take(Scrapes(), m)) == []
        over = int(limit * 0.82) // MIB + 1 - under  # past 80%
        await publish(small_hub, "MEX", into_inbox("USA", "MEX", under, over))
        await monitor.refresh()
        fired = firing("StateInboxNearLimit", await take(Scrapes(), m))
        assert [labels["stream"] for labels in fired] == ["INBOX_USA"]  # not MEX's, not COL's


async def test_a_states_account_filling_up_fires_account_storage_near_limit(
    small_hub: Hub,
) -> None:
    """Its inbox, quarantine and attachments (what USA stores for its recipients) together: each
    stream is under its own limit, the account as a whole past 80% of what it reserved."""
    monitor = hub_monitor(small_hub)
    object_id = hashlib.sha256(b"a large attachment").hexdigest()
    chunks = [subjects.attachment_chunk_subject("MEX", "USA", object_id, i) for i in range(12)]
    quarantined = [subjects.quarantine_subject("USA", "malformed")] * 7
    async with served(monitor.registry, monitor.ready) as m:
        await publish(small_hub, "MEX", into_inbox("USA", "MEX", 0, 30))
        await publish(small_hub, "USA", quarantined + chunks)
        text = await _refreshed(monitor, m)
        reserved = value(text, "cifta_hub_account_reserved_storage_bytes", account="USA")
        assert value(text, "cifta_hub_account_storage_bytes", account="USA") < 0.8 * reserved
        assert firing("AccountStorageNearLimit", await take(Scrapes(), m)) == []
        await publish(small_hub, "MEX", into_inbox("USA", "MEX", 30, 4))
        await monitor.refresh()
        fired = firing("AccountStorageNearLimit", await take(Scrapes(), m))
        assert [labels["account"] for labels in fired] == ["USA"]  # not MEX's, not COL's


async def _refreshed(monitor: HubMonitor, m: MetricsServer) -> str:
    await monitor.refresh()
    return await scrape(m)

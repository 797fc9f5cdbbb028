"""What the audit service has still to read, for the tests and the benchmarks."""

from __future__ import annotations

from services.core import subjects
from services.core.connection import connect
from services.testbed.hub import Hub


async def audit_backlog(hub: Hub) -> tuple[int, int]:
    """(pending, unacknowledged) over the audit service's consumers, one per state."""
    pending = unacknowledged = 0
    async with connect(hub.url, hub.home.user_seed("AUDIT", "audit")) as nc:
        js = nc.jetstream()
        for state in hub.home.registry().codes():
            info = await js.consumer_info(subjects.AUDIT_STREAM, subjects.audit_consumer(state))
            pending += info.num_pending or 0
            unacknowledged += info.num_ack_pending or 0
    return pending, unacknowledged

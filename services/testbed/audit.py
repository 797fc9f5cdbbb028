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


async def audit_reading(hub: Hub) -> bool:
    """Whether the audit service reads: each state's consumer has a pull of it waiting. A
    ``cifta audit run`` process that has started is not yet one that reads (its imports, its
    connection and its log take a second or more on a loaded machine)."""
    async with connect(hub.url, hub.home.user_seed("AUDIT", "audit")) as nc:
        js = nc.jetstream()
        for state in hub.home.registry().codes():
            info = await js.consumer_info(subjects.AUDIT_STREAM, subjects.audit_consumer(state))
            if not info.num_waiting:
                return False
    return True

"""A real hub for tests (``services/testbed/hub.py``, shared with the benchmarks)."""

from services.testbed.hub import (
    APPROVED_AGO,
    NAMES,
    OAS_MEMBER_STATES,
    OFFICIAL,
    STATES,
    Hub,
    build_hub,
    details,
    eventually,
    state_name,
)

__all__ = [
    "APPROVED_AGO",
    "NAMES",
    "OAS_MEMBER_STATES",
    "OFFICIAL",
    "STATES",
    "Hub",
    "build_hub",
    "details",
    "eventually",
    "state_name",
]

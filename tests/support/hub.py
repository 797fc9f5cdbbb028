"""A real hub for tests (``services/testbed/hub.py``, shared with the benchmarks)."""

from services.testbed.hub import (
    APPROVED_AGO,
    NAMES,
    OFFICIAL,
    STATES,
    Hub,
    build_hub,
    details,
    eventually,
)

__all__ = [
    "APPROVED_AGO",
    "NAMES",
    "OFFICIAL",
    "STATES",
    "Hub",
    "build_hub",
    "details",
    "eventually",
]

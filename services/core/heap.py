"""The garbage collector's share of a long-running service's latency.

CPython's cyclic collector scans every tracked object of the generations it collects. A service
holds a large, permanent heap after start-up (modules, pydantic validators, FastStream's and
nats-py's objects, the directory); each full collection walks all of it, stalling the event loop
for tens of milliseconds in the middle of a delivery (docs/performance.md).
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once, then move everything alive into the collector's permanent generation, so
    that later collections scan only what the service allocated since (``gc.freeze``, Python
    3.7+). Call once per process, after start-up; what is frozen is never collected, so only the
    long-lived start-up heap should be there (tests that start many services in one process do not
    call it)."""
    gc.collect()
    gc.freeze()

"""One state's flood (``services/testbed/flood.py``, shared with the benchmarks)."""

from services.testbed.flood import Flood, bogus_event, build_flood, publish_flood, sealed_for

__all__ = ["Flood", "bogus_event", "build_flood", "publish_flood", "sealed_for"]

"""USA's node in its own process for ``bench/e2e.py``, noting when each message was stored.

    python bench/usa_node.py HOME OUT

The node runs as ``cifta node run`` runs it (``services.node.app``: the home's lock, start,
SIGTERM, a clean stop), with its inbox's ``decide`` wrapped as ``bench/stages.py`` wraps it when
both nodes share a process: for every message stored, the ``perf_counter`` of its delivery to the
handler and of its group's commit. On Linux that clock is the system-wide monotonic clock, so
MEX's process can set them beside its own marks: "stored at USA", stage by stage, with each node
on its own core as states deploy them. Written to OUT as JSON when the node stops.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.core.logs import configure
from services.node.app import NodeRuntime, run_until_signalled
from services.node.application.service import load_settings
from services.node.lockfile import HomeLock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stages import at_delivery  # bench is not a package: loaded from its folder


async def run(home: Path, out: Path) -> None:
    settings = load_settings(home)
    marks: dict[str, dict[str, float]] = {}
    restarts: list[tuple[float, float]] = []
    with HomeLock(settings.home):
        runtime = NodeRuntime(settings)
        runtime.inbox.decide = at_delivery(runtime.inbox.decide, marks)  # type: ignore[method-assign]
        held = runtime.metrics.restart_held  # handed to the WAL thread when the node starts

        def noted(seconds: float) -> None:
            restarts.append((time.perf_counter(), seconds))  # (when it ended, its hold)
            held(seconds)

        runtime.metrics.restart_held = noted  # type: ignore[method-assign]
        try:
            await run_until_signalled(runtime)
        finally:
            out.write_text(json.dumps(marks))
            restarts_file(out).write_text(json.dumps(restarts))


def restarts_file(out: Path) -> Path:
    return out.with_name(out.stem + "-restarts.json")


def read(out: Path) -> dict[str, dict[str, float]]:
    """msg_id -> {"d0": delivered to the handler, "d1": its group committed}, as ``run`` wrote
    them ({} if the node did not write them)."""
    return json.loads(out.read_text()) if out.exists() else {}  # type: ignore[no-any-return]


def read_restarts(out: Path) -> list[tuple[float, float]]:
    """Each WAL restart of the node's store: (``perf_counter`` when it ended, seconds it held
    the node's writes), as ``run`` wrote them."""
    path = restarts_file(out)
    return [(t, s) for t, s in json.loads(path.read_text())] if path.exists() else []


def main() -> int:
    home, out = Path(sys.argv[1]), Path(sys.argv[2])
    configure(json=True, level="WARNING")
    asyncio.run(run(home, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

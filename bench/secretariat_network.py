"""The secretariat's network view: one round of ``$SYS`` requests against a connection per state.

    python bench/secretariat_network.py            # 12 states, 20 rounds
    python bench/secretariat_network.py --states 35

On a real hub (nats-server from the wheel, loopback, free port) provisioned for N states, in the
same run: the console's network view (``$SYS.REQ.SERVER.PING.VARZ / JSZ / CONNZ``, one system
connection) and the per-state figures as ``cifta hub status`` reads them (a connection per state
with its provisioning user). Prints the median time of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.core.logs import configure
from services.hub import provision
from services.hub.credentials import PROVISION_USER
from services.secretariat.network import network_view
from services.testbed.hub import OAS_MEMBER_STATES, build_hub


async def timed(work: object, rounds: int) -> float:
    """The median seconds of ``rounds`` runs of ``work()``."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await work()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main(states: int, rounds: int) -> None:
    configure(json=True, level="ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        hub = build_hub(Path(tmp), tuple(OAS_MEMBER_STATES[:states]))
        hub.start()
        try:
            await hub.provision()
            codes = hub.home.registry().codes()

            async def view() -> None:
                await network_view(hub.home, datetime.now(UTC))

            async def per_state() -> None:
                for s in codes:
                    seed = hub.home.user_seed(s, PROVISION_USER)
                    await provision.state_status(hub.url, seed, s)

            one = await timed(view, rounds)
            each = await timed(per_state, rounds)
        finally:
            hub.stop()
    print(f"{states} states, median of {rounds} rounds")
    print(f"  network view ($SYS VARZ/JSZ/CONNZ, one connection): {one * 1000:8.1f} ms")
    print(f"  hub status (a connection per state):                {each * 1000:8.1f} ms")
    print(f"  ratio hub status / network view:                    {each / one:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.states, args.rounds))

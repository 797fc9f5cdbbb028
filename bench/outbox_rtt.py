"""The outbox across a long link: whether what an officer sends waits for the hub to acknowledge
the round before it.

    make bench-outbox
    python bench/outbox_rtt.py --delay-ms 40 --rate 50 --overlap-ms 5

MEX's node (``NodeRuntime``, deployed settings, the hub syncing every ``2m`` as a production
cluster's servers do) reaches the hub through a proxy that holds every chunk ``--delay-ms`` in each
direction (services/leaf/proxy.py): a national node far from the hub. It composes 1 KB reports for
USA at a fixed rate; each message is timed from its compose (sealed and committed) to the hub's
PubAck recorded in MEX's store (marked sent). The outbox runs one round at a time (each round
waits for the one before it to be acknowledged and committed) and pipelined (the node's own way:
a round in flight for ``publish_overlap_s``, or ``--overlap-ms``, no longer holds the next one
back, up to ``publish_concurrency`` rows in flight), alternated, three times each.

Baseline, in the same run: nats-py alone through the same proxy, as MEX's node user, one
JetStream publish into USA's inbox per message at the same rate, each awaiting its PubAck: the
link's round trip and the hub's write, nothing else. Printed: p50 and p99 of each, and each
against the baseline's. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(Path(__file__).resolve().parent))  # the other benches, after the project

import nats

from schemas import HandlingCode
from services.core import subjects
from services.core.logs import configure
from services.hub.cluster import RELAXED_SYNC
from services.leaf.proxy import Proxy
from services.node.app import NodeRuntime
from services.node.settings import NodeSettings
from services.testbed.hub import build_hub
from services.testbed.nodes import running_node

body_of = importlib.import_module("crypto").body_of  # bench/crypto.py

CASE_ID = "MEX-BENCH-2026-0002"
WARM_S = 0.5  # of the same load first, not measured
WAIT_S = 60.0


def deployed_overrides(hub_url: str) -> dict[str, object]:
    """The node's deployed timers (the test bed's are short), pointed at ``hub_url``."""
    names = ("fetch_timeout_s", "publish_timeout_s", "outbox_poll_s", "retry_initial_s",
             "retry_max_s", "publish_concurrency", "publish_overlap_s")  # fmt: skip
    values: dict[str, object] = {n: NodeSettings.model_fields[n].default for n in names}
    values["hub_url"] = hub_url
    return values


def quantiles_ms(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples) * 1e3, cuts[98] * 1e3


async def offered(rate: float, n: int, send: Callable[[], Awaitable[None]]) -> None:
    """Call ``send`` ``n`` times on the schedule of ``rate`` per second."""
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send()


async def outbox_run(mex: NodeRuntime, overlap_s: float | None, rate: float, n: int) -> list[float]:
    """Seconds from compose to marked sent, for ``n`` messages at ``rate`` (after a warm-up);
    ``overlap_s`` None: one round at a time."""
    mex.outbox.overlap_after_s = overlap_s
    body = body_of(1024)
    composed: dict[str, float] = {}
    recorded: dict[str, float] = {}
    everything = asyncio.Event()
    record = mex.outbox.record

    def noting(sent, failed):  # type: ignore[no-untyped-def]
        record(sent, failed)
        now = time.perf_counter()
        for item, _ in sent:
            recorded.setdefault(item.msg_id, now)
        if len(recorded) >= len(composed) >= total:
            everything.set()

    warm = int(rate * WARM_S)
    total = warm + n
    order: list[str] = []

    async def send() -> None:
        header = mex.core.compose(body, ["USA"], handling=HandlingCode.H0, case_id=CASE_ID)
        composed[header.msg_id] = time.perf_counter()
        order.append(header.msg_id)
        mex.outbox.wake()

    mex.outbox.record = noting  # type: ignore[method-assign]
    try:
        await offered(rate, total, send)
        await asyncio.wait_for(everything.wait(), WAIT_S)
    finally:
        mex.outbox.record = record  # type: ignore[method-assign]
    return [recorded[m] - composed[m] for m in order[warm:]]


async def raw_run(url: str, seed: Path, rate: float, n: int, payload: bytes) -> list[float]:
    """Seconds from publish to PubAck, nats-py alone, one publish per message at ``rate``."""
    nc = await nats.connect(url, nkeys_seed=str(seed), allow_reconnect=False)
    try:
        js = nc.jetstream()
        stream = subjects.inbox_stream("USA")
        times: list[float] = []
        pending: set[asyncio.Task[None]] = set()
        warm = int(rate * WARM_S)

        async def one(i: int) -> None:
            t = time.perf_counter()
            subject = subjects.inbox_subject("USA", "MEX", f"raw-{time.time_ns()}-{i}")
            await js.publish(subject, payload, stream=stream, timeout=10.0)
            if i >= warm:
                times.append(time.perf_counter() - t)

        count = iter(range(warm + n))

        async def send() -> None:
            task = asyncio.create_task(one(next(count)))
            pending.add(task)
            task.add_done_callback(pending.discard)

        await offered(rate, warm + n, send)
        await asyncio.gather(*pending)
        return times
    finally:
        await nc.close()


async def run(delay_ms: float, rate: float, n: int, overlap_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="cifta-bench-outbox-") as tmp:
        root = Path(tmp)
        (root / "hub").mkdir()
        hub = build_hub(root / "hub", states=("MEX", "USA"))
        hub.sync_interval = RELAXED_SYNC
        hub.start()
        try:
            await hub.provision()
            target = urlsplit(hub.url)
            proxy = Proxy(target.hostname or "127.0.0.1", target.port or 0,
                          delay_s=delay_ms / 1e3)  # fmt: skip
            await proxy.start()
            url = f"nats://127.0.0.1:{proxy.port}"
            try:
                async with running_node(
                    hub, "MEX", root / "nodes", **deployed_overrides(url)
                ) as mex:
                    await outbox_run(mex, overlap_s, rate, 20)  # the link and caches warm
                    sample = mex.store.messages(direction="out")[0]
                    payload = b"x" * len(sample.envelope)  # a sealed 1 KB report's size
                    results: dict[str, list[float]] = {"raw": [], "one": [], "pipelined": []}
                    for _ in range(3):
                        results["raw"] += await raw_run(url, hub.home.node_seed("MEX"), rate, n,
                                                        payload)  # fmt: skip
                        results["one"] += await outbox_run(mex, None, rate, n)
                        results["pipelined"] += await outbox_run(mex, overlap_s, rate, n)
            finally:
                await proxy.stop()
        finally:
            hub.stop()
    report(delay_ms, rate, n, overlap_s, results)


def report(
    delay_ms: float, rate: float, n: int, overlap_s: float, results: dict[str, list[float]]
) -> None:
    raw50, raw99 = quantiles_ms(results["raw"])
    print(f"The outbox across a link of {delay_ms:.0f} ms each way ({2 * delay_ms:.0f} ms round "
          f"trip), 1 KB, {rate:.0f} msg/s offered, {3 * n} messages per line")  # fmt: skip
    print(f"{'':48} {'p50 ms':>8} {'p99 ms':>8} {'p50/raw':>8} {'p99/raw':>8}")
    print(f"{'raw JetStream, publish -> PubAck':48} {raw50:8.1f} {raw99:8.1f}")
    labels = {
        "one": "outbox one round at a time, compose -> sent",
        "pipelined": f"outbox, overlap after {overlap_s * 1e3:g} ms, compose -> sent",
    }
    for key, label in labels.items():
        p50, p99 = quantiles_ms(results[key])
        print(f"{label:48} {p50:8.1f} {p99:8.1f} {p50 / raw50:8.2f} {p99 / raw99:8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay-ms", type=float, default=20.0, help="each way (default 20)")
    parser.add_argument("--rate", type=float, default=100.0, help="msg/s offered (default 100)")
    parser.add_argument("--n", type=int, default=300, help="messages per run (default 300)")
    default_ms = NodeSettings.model_fields["publish_overlap_s"].default * 1e3
    parser.add_argument(
        "--overlap-ms", type=float, default=default_ms,
        help=f"publish_overlap_s, in ms (default the node's, {default_ms:g})",
    )  # fmt: skip
    args = parser.parse_args()
    configure(json=True, level="WARNING")
    asyncio.run(run(args.delay_ms, args.rate, args.n, args.overlap_ms / 1e3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

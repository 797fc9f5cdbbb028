"""Blind record lookup: a lookup across 35 states and a 100,000-record filter, against the bare
OPRF operations measured in the same run.

    make bench-lookup            # the full run
    python bench/lookup.py --quick

* bare: RFC 9497 operations alone, one core (``voprf``): Blind, BlindEvaluate (with its DLEQ
  proof), Finalize (proof verified), Evaluate (a known input), and one Bloom filter test.
* filter: a state's filter of 100,000 records built from its register's lookup inputs (one
  Evaluate each, then the Bloom filter, then the Ed25519 signature), its size in bytes as
  published, and the build time against 100,000 bare Evaluates.
* lookup: a real nats-server with 35 state accounts (the generated config: per-state service
  exports and imports, the filter bucket), 34 answering states each running the node's
  evaluation endpoint (``LookupResponder``, with its register and signed audit events) on its own
  connection as its node user, and MEX asking all 34 at once (``lookup``: fetch and verify 34
  filters, blind 34 times, 34 requests, verify 34 proofs, test 34 filters). Twice: with filters of
  1,000 records each and of 100,000 records each. Everything runs in this one process on one
  event loop, so answering states take turns on one core; the hub has the other.
  Ratio: lookup / the bare crypto one lookup needs (34 x Blind + BlindEvaluate + Finalize).

Nothing is asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats

from services.core.logs import configure
from services.core.lookup_filter import DEFAULT_FP_RATE, BloomFilter
from services.core.normalise import firearm
from services.core.oprf import LookupKeys, blind, finalize
from services.node.lookup_client import (
    build_filter,
    connect,
    lookup,
    open_connection,
    publish_filter,
)
from services.node.lookup_service import Budget, EvaluationEndpoint, LookupResponder
from services.node.records import REGISTER_FILE, Register
from services.testbed.hub import Hub, build_hub

#: The 35 member states of the OAS, MEX (the asker) first.
STATES = ("MEX", "ATG", "ARG", "BHS", "BRB", "BLZ", "BOL", "BRA", "CAN", "CHL", "COL", "CRI",
          "CUB", "DMA", "DOM", "ECU", "SLV", "GRD", "GTM", "GUY", "HTI", "HND", "JAM", "NIC",
          "PAN", "PRY", "PER", "KNA", "LCA", "VCT", "SUR", "TTO", "USA", "URY", "VEN")  # fmt: skip
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def per_op_us(fn: Callable[[], object], budget_s: float) -> float:
    """Median of five timed batches, in microseconds per call."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget_s / 10:
        fn()
        n += 1
    batches = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        batches.append((time.perf_counter() - t) / n)
    return statistics.median(batches) * 1e6


def bare(budget_s: float) -> dict[str, float]:
    keys = LookupKeys.generate()
    data = firearm("Glock", "G19", "9mm", "BXKM417").lookup_input()
    b = blind(data)
    evaluated, proof = keys.evaluate(b.element)
    public = keys.public()
    bloom = BloomFilter.build([keys.output(data)], 1, DEFAULT_FP_RATE)
    y = keys.output(data)
    return {
        "Blind": per_op_us(lambda: blind(data), budget_s),
        "BlindEvaluate (with proof)": per_op_us(lambda: keys.evaluate(b.element), budget_s),
        "Finalize (proof verified)": per_op_us(
            lambda: finalize(b, evaluated, proof, public), budget_s
        ),
        "Evaluate (known input)": per_op_us(lambda: keys.output(data), budget_s),
        "Bloom filter test": per_op_us(lambda: y in bloom, budget_s),
    }


def inputs(n: int, state: str) -> list[bytes]:
    return [f"cifta-lookup-v1\x00MAKER{state}\x00S{i}".encode() for i in range(n)]


def filter_build(n: int, evaluate_us: float) -> None:
    from services.core.keys import NodeKeys

    keys = NodeKeys.generate("MEX")
    data = inputs(n, "MEX")
    t = time.perf_counter()
    value = build_filter(keys, data, DEFAULT_FP_RATE, NOW)
    took = time.perf_counter() - t
    bare_s = n * evaluate_us / 1e6
    print(f"filter of {n:,} records at fp rate {DEFAULT_FP_RATE:g}:")
    print(f"  published size {len(value):,} bytes ({len(value) / n:.1f} bytes per record)")
    print(f"  build {took:.2f} s; {n:,} bare Evaluates {bare_s:.2f} s; ratio {took / bare_s:.2f}")


def network_hub(root: Path) -> Hub:
    """A hub for the whole membership, with the account limits it plans for 35 states."""
    return build_hub(root, STATES)


async def answering(hub: Hub, root: Path, state: str, records: int) -> nats.aio.client.Client:
    """``state``'s evaluation endpoint on its own connection, and its filter published."""
    settings = hub.node_settings(state, root)
    keys = hub.keys[state]
    register = Register(settings.home / REGISTER_FILE, keys.lookup)
    responder = LookupResponder(state, lambda: keys, register, lambda events: None,
                                lambda: datetime.now(UTC), Budget(10**9, 3600.0))  # fmt: skip
    nc = await open_connection(settings, f"{state}-lookup", reconnect=False)
    await EvaluationEndpoint(responder).serve(nc)
    async with connect(settings) as pub:
        await publish_filter(pub, state, build_filter(keys, inputs(records, state), 1e-6, NOW))
    return nc


async def run_lookups(hub: Hub, root: Path, records: int, rounds: int) -> list[float]:
    endpoints = [await answering(hub, root, s, records) for s in STATES if s != "MEX"]
    settings = hub.node_settings("MEX", root)
    directory = settings.directory_trust().directory()
    held = firearm("Glock", "", "", "S7")  # not held: every state answers no_hit
    times = []
    try:
        async with connect(settings) as nc:
            await lookup(nc, "MEX", held, directory, timeout=30)  # warm-up, not timed
            for _ in range(rounds):
                t = time.perf_counter()
                answers = await lookup(nc, "MEX", held, directory, timeout=30)
                times.append(time.perf_counter() - t)
                assert len(answers) == len(STATES) - 1
    finally:
        for nc in endpoints:
            await nc.close()
    return times


async def network(records_each: list[int], rounds: int, bare_lookup_ms: float) -> None:
    with tempfile.TemporaryDirectory(prefix="cifta-bench-lookup-") as tmp:
        root = Path(tmp)
        hub = network_hub(root)
        hub.start()
        try:
            await hub.provision()
            for n in records_each:
                times = await run_lookups(hub, root / f"r{n}", n, rounds)
                p50 = statistics.median(times) * 1e3
                worst = max(times) * 1e3
                print(f"  filters of {n:>7,} records: p50 {p50:8.1f} ms, max {worst:8.1f} ms;"
                      f" ratio to bare crypto {p50 / bare_lookup_ms:6.1f}")  # fmt: skip
        finally:
            hub.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer records and rounds")
    args = parser.parse_args()
    configure(json=False, level="WARNING")
    budget = 0.2 if args.quick else 1.0
    records = 10_000 if args.quick else 100_000
    print(f"CIFTA Exchange blind record lookup benchmark ({os.cpu_count()} CPUs)\n")
    ops = bare(budget)
    print("bare RFC 9497 operations (voprf, ristretto255-SHA512), one core:")
    for name, us in ops.items():
        print(f"  {name:<28} {us:8.1f} us")
    per_state = ops["Blind"] + ops["BlindEvaluate (with proof)"] + ops["Finalize (proof verified)"]
    bare_lookup_ms = per_state * (len(STATES) - 1) / 1e3
    print(f"  one lookup's crypto, 34 states  {bare_lookup_ms:6.2f} ms\n")
    filter_build(records, ops["Evaluate (known input)"])
    print(f"\nlookup across {len(STATES)} states (34 asked), real hub, one process:")
    asyncio.run(network([1_000, records], 5 if args.quick else 20, bare_lookup_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

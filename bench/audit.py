"""Audit log: append throughput, proof generation and verification, next to raw SHA-256.

    make bench-audit                 # 10^4, 10^5 and 10^6 leaves
    python bench/audit.py --quick    # 10^4 and 10^5

For each size N, in the same run: appending events to the SQLite log one committed transaction
per record (as the service does), and N events in transactions of 10,000 (what batching would
give), the same N leaves into
an in-memory tree, an
inclusion proof and a consistency proof generated from the SQLite log and verified, each averaged
over many random leaves; and the raw SHA-256 rate of the machine on 64-byte inputs, for scale
(a leaf costs at least one hash, an append about two on average).

Then the service itself, fed through JetStream (``bench/audit_service.py``): ``cifta audit run``
against a real hub with a backlog of sealed envelopes, next to its ``Recorder`` alone and the
signature check alone, measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.audit import AuditEvent, EventType
from services.audit.log import AuditLog
from services.audit.service import AuditSettings
from services.core.encoding import uuid7
from services.core.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion

BATCH = 10_000
GROUP = AuditSettings.group_max  # the service's group commit (256)
GROUPED_N = 20_000  # records appended so, onto a log of each size
TARGET = 20_000  # appends per second as the service commits them (issue 18)


def sha256_rate(seconds: float = 1.0) -> float:
    data, n, t0 = os.urandom(64), 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10_000):
            hashlib.sha256(data).digest()
        n += 10_000
    return n / (time.perf_counter() - t0)


def event(i: int) -> AuditEvent:
    return AuditEvent(
        event_id=uuid7(), event=EventType.STORED, msg_id=uuid7(), kind="info.trafficking_routes",
        sender="MEX", recipients=["USA"], actor="USA", handling="H2", confidential=True,
        envelope_sha256=hashlib.sha256(i.to_bytes(8, "big")).hexdigest(),
        signature_sha256=hashlib.sha256(b"s" + i.to_bytes(8, "big")).hexdigest(),
        occurred_at=datetime.now(UTC),
    )  # fmt: skip


def run(n: int, root: Path) -> dict[str, float]:
    events = [event(i) for i in range(n)]
    log = AuditLog(root / f"audit-{n}.sqlite")
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        with log.batch():
            for e in events[start : start + BATCH]:
                log.append(e)
    t_sql = time.perf_counter() - t0
    # one committed transaction per record (fsync each), as the service appended before issue 18
    single = AuditLog(root / f"audit-single-{n}.sqlite")
    sample = events[: min(n, 5_000)]
    t0 = time.perf_counter()
    for e in sample:
        single.append(e)
    t_single = (time.perf_counter() - t0) / len(sample)
    single.close()
    leaves = [e.model_dump_json(exclude_none=True).encode() for e in events]
    mem = MerkleTree()
    t0 = time.perf_counter()
    for leaf in leaves:
        mem.append(leaf)
    t_mem = time.perf_counter() - t0
    assert mem.root() == log.tree.root()

    rounds = 200
    picks = [random.randrange(n) for _ in range(rounds)]
    root_hash = log.tree.root()
    t0 = time.perf_counter()
    proofs = [log.tree.inclusion_proof(m) for m in picks]
    t_inc = (time.perf_counter() - t0) / rounds
    t0 = time.perf_counter()
    ok = all(
        verify_inclusion(leaf_hash(leaves[m]), m, n, p, root_hash)
        for m, p in zip(picks, proofs, strict=True)
    )
    t_inc_v = (time.perf_counter() - t0) / rounds
    olds = [random.randrange(1, n) for _ in range(rounds)]
    old_roots = [log.tree.root(m) for m in olds]
    t0 = time.perf_counter()
    cons = [log.tree.consistency_proof(m) for m in olds]
    t_con = (time.perf_counter() - t0) / rounds
    t0 = time.perf_counter()
    ok = ok and all(
        verify_consistency(m, n, r, root_hash, p)
        for m, r, p in zip(olds, old_roots, cons, strict=True)
    )
    t_con_v = (time.perf_counter() - t0) / rounds
    # as the service commits, onto this log of n leaves: a group of records per transaction
    # (what one pull brought, up to AuditSettings.group_max), taken together (no savepoint per
    # record: a failure undoes the group, which the service then takes again), one fsync per group
    more = [event(n + i) for i in range(min(n, GROUPED_N))]
    t0 = time.perf_counter()
    for start in range(0, len(more), GROUP):
        log.begin()
        with log.together():
            for e in more[start : start + GROUP]:
                with log.batch():
                    log.append(e)
        log.commit()
    t_grouped = (time.perf_counter() - t0) / len(more)
    log.close()
    if not ok:
        raise SystemExit("a proof did not verify")
    return {
        "sql_rate": n / t_sql, "single_rate": 1 / t_single, "mem_rate": n / t_mem,
        "grouped_rate": 1 / t_grouped,
        "inc_us": t_inc * 1e6,
        "inc_v_us": t_inc_v * 1e6, "con_us": t_con * 1e6, "con_v_us": t_con_v * 1e6,
        "path": sum(len(p) for p in proofs) / rounds,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    sha = sha256_rate()
    print(f"CIFTA Exchange audit log benchmark ({os.cpu_count()} CPUs)")
    print(f"raw SHA-256 (64-byte inputs): {sha:,.0f} hashes/s\n")
    header = (
        f"{'leaves':>9} {'append/s 1 tx':>14} {'append/s group':>15} {'append/s batch':>15} "
        f"{'append/s mem':>13} "
        f"{'vs SHA-256':>11} "
        f"{'incl gen us':>12} {'incl ver us':>12} {'cons gen us':>12} {'cons ver us':>12}"
    )
    print(header)
    print("-" * len(header))
    grouped: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="cifta-audit-bench-") as tmp:
        for n in sizes:
            r = run(n, Path(tmp))
            grouped[n] = r["grouped_rate"]
            print(
                f"{n:>9,} {r['single_rate']:>14,.0f} {r['grouped_rate']:>15,.0f} "
                f"{r['sql_rate']:>15,.0f} "
                f"{r['mem_rate']:>13,.0f} "
                f"{r['sql_rate'] / sha:>11.4f} {r['inc_us']:>12.1f} {r['inc_v_us']:>12.1f} "
                f"{r['con_us']:>12.1f} {r['con_v_us']:>12.1f}"
            )
    print(
        f"\n'1 tx' = one committed transaction per record (the first 5,000 records), as the"
        f" service appended before its group commit; 'group' = {GROUP} records per transaction,"
        f" taken together, as the service commits what one pull brought ({GROUPED_N:,}"
        " more, onto the log of that many leaves); 'batch' = 10,000 per transaction, one"
        " savepoint;"
        " 'vs SHA-256' = batched"
        " appends per second / raw hashes per second (an append costs two hashes on average,"
        " plus its SQLite rows and the event's JSON)."
    )
    lowest = min(grouped, key=lambda n: grouped[n])
    verdict = "MET" if grouped[lowest] >= TARGET else "MISSED"
    print(
        f"Target: audit appends as the service commits them (groups of {GROUP}; the log alone, the"
        f" signature checks are below) >= {TARGET:,}/s: {verdict} (lowest {grouped[lowest]:,.0f}/s,"
        f" onto a log of {lowest:,} leaves)"
    )
    print()
    service = load_service_bench()
    service.report(service.run(4_000 if args.quick else 10_000))
    return 0


def load_service_bench() -> ModuleType:
    """bench/audit_service.py, loaded by path (bench is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "bench_audit_service", Path(__file__).with_name("audit_service.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    raise SystemExit(main())

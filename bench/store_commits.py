"""The node store's commit latency, and what the WAL's checkpoints add to its tail.

    python bench/store_commits.py

Commits of one 10 KB row (about a stored envelope with its receipt and events) at a paced rate
through the node's own ``Database``, three ways in the same run, each twice, alternated:

* sqlite:  SQLite's default: the commit that finds the log past 1,000 pages copies it into the
           database file, and waits for that copy and its fsyncs;
* thread:  as a running node does (``store_checkpoint_s``): a thread of its own copies it
           (services/node/store/wal.py), no commit does;
* none:    no checkpoint at all until the end, the baseline: what a commit costs by itself.

Printed per way: p50, p99, p99.9 and the longest commit, how many took over 5 ms, the p99.9 over
the baseline's, and the largest the WAL file grew (none: every commit stays in it). Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.node.store.db import Database

ROW = 10_000
WAYS = ("sqlite", "thread", "none")


def commits(way: str, root: Path, n: int, rate: float) -> tuple[list[float], int]:
    """Seconds of each of ``n`` commits offered at ``rate`` per second, and the WAL file's size
    at the end (its high-water mark: SQLite reuses the file from its start, never shrinks it)."""
    path = root / f"{way}-{time.monotonic_ns()}.sqlite"
    db = Database(path)
    db.db.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, b BLOB)")
    if way == "thread":
        db.checkpoint_in_background(1.0)
    elif way == "none":
        db.db.execute("PRAGMA wal_autocheckpoint = 0")
    payload = os.urandom(ROW)
    took = []
    t0 = time.perf_counter()
    for i in range(n):
        while time.perf_counter() < t0 + i / rate:
            pass  # the offered load's schedule, on a busy loop as the node's is
        start = time.perf_counter()
        with db.tx() as c:
            c.execute("INSERT INTO filler (b) VALUES (?)", (payload,))
        took.append(time.perf_counter() - start)
    wal = path.with_name(path.name + "-wal").stat().st_size
    db.close()
    return took, wal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="commits per round")
    parser.add_argument("--rate", type=float, default=600.0, help="commits offered per second")
    args = parser.parse_args()
    samples: dict[str, list[float]] = {way: [] for way in WAYS}
    wal: dict[str, int] = dict.fromkeys(WAYS, 0)
    with tempfile.TemporaryDirectory(prefix="cifta-store-bench-") as tmp:
        for _ in range(2):
            for way in WAYS:
                took, size = commits(way, Path(tmp), args.n, args.rate)
                samples[way] += took
                wal[way] = max(wal[way], size)
    print(f"CIFTA Exchange node store: {args.n} commits of {ROW // 1000} KB at {args.rate:g}/s,")
    print("each way twice, alternated (ms)\n")
    header = (
        f"{'way':>7} {'p50':>6} {'p99':>6} {'p99.9':>6} {'max':>6} {'> 5 ms':>7} "
        f"{'p99.9/none':>11} {'WAL MB':>7}"
    )
    print(header)
    print("-" * len(header))
    tail = {}
    for way in reversed(WAYS):  # the baseline first: the others are read against it
        took = sorted(samples[way])
        cuts = statistics.quantiles(took, n=1000)
        tail[way] = cuts[998]
        print(
            f"{way:>7} {statistics.median(took) * 1e3:6.2f} {cuts[989] * 1e3:6.2f} "
            f"{cuts[998] * 1e3:6.2f} {took[-1] * 1e3:6.1f} {sum(t > 0.005 for t in took):>7} "
            f"{cuts[998] / tail['none']:11.1f} {wal[way] / 1e6:7.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The audit service's sustained append rate, fed through JetStream (run by ``bench/audit.py``).

    python bench/audit_service.py --n 10000

A real hub (nats-server on loopback, provisioned) and ``cifta audit run`` as its own process, as
the secretariat runs it. Before the service starts, MEX and USA publish ``n`` sealed 1 KB
envelopes to each other's inbox (half each way); the ``AUDIT`` stream sources them, so the whole
backlog waits in the service's two consumers (``--recipients 2`` seals each for two states: it
reaches the AUDIT stream once per recipient inbox, a record each). Then the service is started and
the rate is taken from its first leaf to its last, read from its SQLite log: what it sustains
when records come faster than it can take them (fetch, verify the sender's signature, append,
group commit, ack).

Envelopes only, no node events: an event names an envelope, and read through another state's
consumer it may come first and be parked until the next tick, which would measure the parking
schedule rather than the service.
"""

from __future__ import annotations

import asyncio
import math
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats

from schemas import HandlingCode
from schemas.registry import example_body
from services.audit.log import AuditLog
from services.audit.parking import Budget
from services.audit.recorder import Recorder
from services.cli.audit_cmd import _directory_of
from services.core import subjects
from services.core.envelope import seal, verify_sender
from services.testbed.audit import audit_backlog
from services.testbed.hub import Hub, build_hub

POLL_S = 0.02  # how often the log's size is read
TARGET = 20_000  # appends per second (issue 18's figure, for the log: bench/audit.py)


def leaves(hub: Hub) -> int:
    if not hub.home.audit_log_path.exists():
        return 0
    log = AuditLog(hub.home.audit_log_path)
    try:
        return log.size
    finally:
        log.close()


async def until(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until true or ``timeout`` seconds passed (reported, not raised)."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


Record = tuple[str, str, str, bytes]  # (sender, recipient, inbox subject, envelope)


def records_of(hub: Hub, n: int, recipients: int) -> list[Record]:
    """``n`` sealed 1 KB envelopes, half from MEX and half from USA, each to ``recipients`` of the
    hub's states, once per recipient inbox (what the AUDIT stream sources)."""
    out: list[Record] = []
    for sender in ("MEX", "USA"):
        to = [p for p in hub.keys if p != sender][:recipients]
        keys = [hub.keys[p].current_encryption.public() for p in to]
        for i in range(n // 2):
            data = seal(
                example_body("info.trafficking_routes"), sender=hub.keys[sender],
                recipients=keys, handling=HandlingCode.H2, now=datetime.now(UTC),
            )  # fmt: skip
            out += [(sender, r, subjects.inbox_subject(r, sender, f"b{i}"), data) for r in to]
    return out


async def fill(hub: Hub, records: list[Record]) -> None:
    """Publish the records to their recipients' inboxes, and wait until the AUDIT stream holds
    them all."""
    for sender in ("MEX", "USA"):
        mine = [r for r in records if r[0] == sender]
        nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(sender)))
        js = nc.jetstream()
        try:
            for start in range(0, len(mine), 256):
                await asyncio.gather(
                    *(
                        js.publish(subject, data, stream=subjects.inbox_stream(recipient))
                        for _, recipient, subject, data in mine[start : start + 256]
                    )
                )
        finally:
            await nc.close()

    async def sourced() -> bool:
        pending, _ = await audit_backlog(hub)
        return pending >= len(records)

    if not await until(sourced, 120.0):
        raise SystemExit("the AUDIT stream did not source the inboxes")


async def measure(
    n: int, root: Path, profile: str | None = None, recipients: int = 1
) -> dict[str, float]:
    """{"rate": leaves per second from the first leaf to the last, "leaves": leaves, ...}."""
    hub = build_hub(root)
    hub.start()
    proc = None
    try:
        await hub.provision()
        records = records_of(hub, n, recipients)
        await fill(hub, records)
        want = len(records)
        args = [sys.executable, "-m", "services.cli.main", "audit", "--hub-home",
                str(hub.home.root), "run", "--url", hub.url, "--log-level", "WARNING"]  # fmt: skip
        if profile:  # py-spy's raw flame graph of the service (docs/performance.md)
            args = ["py-spy", "record", "-r", "200", "-f", "raw", "-o", profile, "--", *args]
        with (root / "audit-service.log").open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

        async def first() -> bool:
            return leaves(hub) > 0

        async def last() -> bool:
            return leaves(hub) >= want

        await until(first, 60.0)
        t0, size0 = time.perf_counter(), leaves(hub)
        complete = await until(last, 120.0)
        elapsed = time.perf_counter() - t0
        size = leaves(hub)
        rate = (size - size0) / elapsed
        stop(proc, profile)
        proc = None
        alone, verify_s = recorder_alone(hub, records, root / "alone.sqlite")
        return {"rate": rate, "leaves": size, "want": want, "complete": float(complete),
                "alone": alone, "verify_rate": 1 / verify_s}  # fmt: skip
    finally:
        stop(proc, profile)
        hub.stop()


def stop(proc: subprocess.Popen[bytes] | None, profile: str | None) -> None:
    if proc is not None:  # py-spy writes its file on SIGINT
        proc.send_signal(signal.SIGINT if profile else signal.SIGTERM)
        proc.wait(timeout=30)


def recorder_alone(hub: Hub, records: list[Record], path: Path) -> tuple[float, float]:
    """The same records taken by the service's ``Recorder`` in this process, no broker, committed
    in groups of 256 as fetched: (records per second, seconds per ``verify_sender`` alone)."""
    directory = _directory_of(hub.home)
    log = AuditLog(path)
    recorder = Recorder(log, lambda: directory, Budget())
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    for start in range(0, len(records), 256):
        log.begin()
        for seq, (_, _, subject, data) in enumerate(records[start : start + 256], start + 1):
            recorder.take(subject, data, now, seq)
        log.commit()
    alone = len(records) / (time.perf_counter() - t0)
    log.close()
    sample = records[0][3]
    t0 = time.perf_counter()
    for _ in range(500):
        verify_sender(sample, directory=directory, stored_at=now)
    return alone, (time.perf_counter() - t0) / 500


def run(n: int, profile: str | None = None, recipients: int = 1) -> dict[str, float]:
    """Measure with ``n`` envelopes, each to ``recipients`` states (n x recipients records)."""
    with tempfile.TemporaryDirectory(prefix="cifta-audit-service-") as tmp:
        return asyncio.run(measure(n, Path(tmp), profile, recipients))


def report(r: dict[str, float]) -> None:
    """The service's rate, and the same-run baselines it is read against."""
    short = "" if r["complete"] else f" (timed out: {r['leaves']:.0f}/{r['want']:.0f})"
    print(f"audit service fed through JetStream: {r['rate']:>9,.0f} appends/s{short}")
    print(
        f"  its Recorder alone, no broker:       {r['alone']:>9,.0f} records/s "
        f"(service / alone {r['rate'] / r['alone']:.2f})"
    )
    print(
        f"  verify_sender alone (signatures):    {r['verify_rate']:>9,.0f} records/s "
        f"(service / verify {r['rate'] / r['verify_rate']:.2f})"
    )
    cores = math.ceil(TARGET / r["verify_rate"])
    print(
        f"  {TARGET:,} records/s fed through JetStream would need {cores} cores for the signature"
        " checks alone (one Ed25519 verification per envelope): beyond one service process"
    )


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--profile", help="record the service with py-spy into this file")
    parser.add_argument(
        "--recipients", type=int, default=1, help="states each envelope is sealed for (1 or 2)"
    )
    args = parser.parse_args()
    r = run(args.n, args.profile, args.recipients)
    report(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

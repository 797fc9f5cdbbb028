"""The audit service under one state's flood: its CPU, its log volume, the delay of valid records.

    python bench/audit_flood.py            # 1,000 valid records, then one state's flood
    python bench/audit_flood.py --n 300    # smaller

A real hub (nats-server on loopback) and ``cifta audit run`` as its own process, at log level
INFO, its CPU read from ``/proc/<pid>/stat``. In the same run:

1. baseline: N valid envelopes (MEX -> USA) recorded; the service's CPU seconds and log lines;
   and the delay of one valid envelope from a third state (USA -> MEX: published, then its
   ``stored`` leaf in the log) when idle;
2. flood: MEX publishes N signed events naming envelopes that do not exist, N/10 garbage events,
   N/10 garbage envelopes and N/20 envelopes under an unknown key (``tests/support/flood.py``);
   USA's valid envelope is published once all of it is in the stream, its delay measured the
   same way;
3. after the flood, while MEX's parked records wait out their budget: CPU and log lines over a
   fixed window (a hot loop would show here).

Reported as ratios against the baseline of the same run, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats

from services.audit.log import AuditLog
from services.core import subjects
from services.core.logs import configure
from services.testbed.audit import audit_backlog
from services.testbed.flood import Flood, build_flood, publish_flood, sealed_for
from services.testbed.hub import Hub, build_hub

TICKS = os.sysconf("SC_CLK_TCK")
IDLE_WINDOW_S = 15.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def leaves(hub: Hub) -> int:
    log = AuditLog(hub.home.audit_log_path)
    try:
        return log.size
    finally:
        log.close()


async def wait_for(condition, timeout: float = 120.0) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not await condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError("the audit service did not get there")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def drained(hub: Hub) -> bool:
    return await audit_backlog(hub) == (0, 0)


class Meter:
    """CPU seconds and log lines of the audit process between two readings."""

    def __init__(self, pid: int, log: Path) -> None:
        self.pid, self.log = pid, log
        self.cpu, self.lines, self.at = cpu_seconds(pid), lines(log), time.monotonic()

    def read(self) -> tuple[float, int, float]:
        """(CPU seconds, log lines, wall seconds) since the last reading."""
        cpu, n, at = cpu_seconds(self.pid), lines(self.log), time.monotonic()
        out = (cpu - self.cpu, n - self.lines, at - self.at)
        self.cpu, self.lines, self.at = cpu, n, at
        return out


async def one_valid_delay(hub: Hub, nc: nats.NATS, envelope: bytes, name: str) -> float:
    """Seconds from USA's publishing ``envelope`` (to MEX) to its leaf in the log."""
    before = leaves(hub)
    await nc.publish(subjects.inbox_subject("MEX", "USA", name), envelope)
    await nc.flush()

    async def recorded() -> bool:
        return leaves(hub) > before

    return await wait_for(recorded)


async def run(n: int, root: Path) -> None:
    hub = build_hub(root)
    hub.start()
    await hub.provision()
    log_path = root / "audit-service.log"
    args = [sys.executable, "-m", "services.cli.main", "audit", "--hub-home", str(hub.home.root),
            "run", "--url", hub.url, "--log-level", "INFO"]  # fmt: skip
    with log_path.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        await measure(hub, proc.pid, log_path, n)
    finally:
        proc.terminate()
        proc.wait()
        hub.stop()


async def measure(hub: Hub, pid: int, log_path: Path, n: int) -> None:
    mex, usa = hub.keys["MEX"], hub.keys["USA"]
    valid = [sealed_for(mex, usa) for _ in range(n)]
    from_usa = [sealed_for(usa, mex) for _ in range(2)]
    nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("MEX")))
    third = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("USA")))

    async def started() -> bool:
        return b"audit_started" in log_path.read_bytes()

    await wait_for(started)
    meter = Meter(pid, log_path)
    for i, envelope in enumerate(valid):
        await nc.publish(subjects.inbox_subject("USA", "MEX", f"v{i}"), envelope)
    await nc.flush()

    async def all_valid() -> bool:
        return leaves(hub) >= n

    await wait_for(all_valid)
    base_cpu, base_lines, base_wall = meter.read()
    idle_delay = await one_valid_delay(hub, third, from_usa[0], "idle")

    flood = Flood(events=n, garbage_events=n // 10, garbage_envelopes=n // 10,
                  unknown_key_envelopes=n // 20)  # fmt: skip
    records = build_flood(mex, hub.keys["COL"], flood)  # signed and sealed beforehand
    meter.read()
    await publish_flood(nc, records)  # all of it ahead of USA's envelope in the stream
    flood_delay = await one_valid_delay(hub, third, from_usa[1], "during")

    async def caught_up() -> bool:
        return await drained(hub)

    await wait_for(caught_up)
    flood_cpu, flood_lines, flood_wall = meter.read()
    await asyncio.sleep(IDLE_WINDOW_S)  # a fixed window to watch for a hot loop, not a wait
    idle_cpu, idle_lines, idle_wall = meter.read()
    await nc.close()
    await third.close()

    print(f"{'phase':<34}{'records':>8}{'wall s':>9}{'CPU s':>8}{'CPU %':>7}{'log lines':>11}")
    for name, records, wall, cpu, n_lines in [
        ("baseline: valid envelopes", n, base_wall, base_cpu, base_lines),
        ("flood (one state's)", flood.records + 1, flood_wall, flood_cpu, flood_lines),
        (f"after the flood ({IDLE_WINDOW_S:.0f} s, parked)", 0, idle_wall, idle_cpu, idle_lines),
    ]:
        print(f"{name:<34}{records:>8}{wall:>9.2f}{cpu:>8.2f}{100 * cpu / wall:>7.1f}{n_lines:>11}")
    per_valid, per_flood = base_cpu / n, flood_cpu / (flood.records + 1)
    print(f"CPU per flood record / per valid record: {per_flood / per_valid:.2f}")
    print(f"log lines per 1,000 flood records: {1000 * flood_lines / (flood.records + 1):.1f}")
    print(f"delay of one valid envelope: idle {idle_delay:.3f} s, during the flood "
          f"{flood_delay:.3f} s (x{flood_delay / idle_delay:.1f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    configure(json=True, level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.n, Path(tmp)))


if __name__ == "__main__":
    main()

"""The node's WAL checkpoints, made by a thread of their own instead of by a commit.

In WAL mode SQLite copies the log back into the database file (a checkpoint) when a commit finds
the log past 1,000 pages, and that commit waits for it: the copy and its fsyncs, tens of
milliseconds, on the node's event loop, where every delivery, acknowledgement and publish of that
moment waits too (the tail of ``make bench``'s latency, docs/performance.md). A running node
turns that off on its connection and checkpoints from this thread instead, on a connection of its
own, every ``every_s``: ``PASSIVE``, so it never waits for or blocks the node's readers and writer,
and copies what no reader still needs. The ``sqlite3`` module releases the interpreter's lock
while SQLite works, so the event loop runs meanwhile.

Durability is unchanged: a commit is in the log before it returns, whoever copies it later; the
fsync settings are the connection's (``synchronous``). A CLI process writing while the node runs
keeps SQLite's own checkpoints, and the last connection to close checkpoints what is left.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from services.core.logs import get_logger

log = get_logger("cifta.node.store")


class WalCheckpointer:
    """Checkpoints ``path`` every ``every_s`` from its own thread until :meth:`stop`."""

    def __init__(self, path: Path, every_s: float, synchronous: str) -> None:
        self.path = path
        self.every_s = every_s
        self.synchronous = synchronous
        self.checkpoints = 0  # rounds made, for tests and metrics
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cifta-wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the round in progress (the node's own connection closes after this)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA synchronous = {self.synchronous}")
            failing = ""
            while not self._stop.wait(self.every_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the next round tries again; said once per kind
                    if type(exc).__name__ != failing:
                        failing = type(exc).__name__
                        log.warning("wal_checkpoint_failed", error=failing)
                    continue
                failing = ""
                self.checkpoints += 1
        finally:
            db.close()

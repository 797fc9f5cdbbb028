"""The node's WAL checkpoints, made by a thread of their own instead of by a commit.

In WAL mode SQLite copies the log back into the database file (a checkpoint) when a commit finds
the log past 1,000 pages, and that commit waits for it: the copy and its fsyncs, tens of
milliseconds, on the node's event loop, where every delivery, acknowledgement and publish of that
moment waits too (the tail of ``make bench``'s latency, docs/performance.md). A running node
leaves that to this thread instead, on a connection of its own, every ``every_s``:

1. ``PASSIVE``: the copy itself, which never waits for or blocks the node's reads and writes (the
   ``sqlite3`` module releases the interpreter's lock while SQLite works: the loop runs meanwhile);
2. when the log is still past ``RESTART_FRAMES`` after that: ``RESTART``, the few frames
   committed during the copy, after which the log starts again from its beginning. SQLite starts
   the log over by itself when a write begins with all of it copied: as soon as the load pauses
   for one round. A node committing all the time never finds that moment, and without this step
   its log would grow for as long as the load lasts. The step holds the node's next commit (and
   with it the node's event loop) for as long as that short copy and its fsyncs take. Every
   16 MB of log, as first built, that was every 2 s under ``make bench``'s load, and the most
   frequent cause of its latency tail (docs/performance.md); every 256 MB, it is one hold every
   7-8 s of ``make bench``'s load at half its peak. The step's fsyncs were most of its hold
   (15-30 ms, 68-93 ms with 64 KB messages): a ``PASSIVE`` copy that commits overtake never
   syncs the database file, so the ``RESTART`` synced everything the copies had written since.
   The thread now syncs both files itself just before, without holding anything: the hold fell
   to about 2 ms. The node's transactions wait for it on the store's ``writes`` lock, held by
   each of them and by this step, not in SQLite's busy handler: that one sleeps 1, 2, 5, 10,
   15 ms... between looks, and turned a hold of 15-19 ms into a stall of 33.

The node's own connection keeps an automatic checkpoint far above what one round leaves
(``VALVE_PAGES``): if this thread stopped, commits would bound the log again, less often. The log
file keeps the largest size it reached (SQLite writes it again from its start): a node that once
sustained load for half a minute keeps a log file of up to 256 MB.

Durability is unchanged: a commit is in the log before it returns, whoever copies it later; the
fsync settings are the connection's (``synchronous``). A CLI process writing while the node runs
keeps SQLite's own checkpoints, and the last connection to close checkpoints what is left.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from services.core.logs import get_logger

log = get_logger("cifta.node.store")

#: The node's own automatic checkpoint while this thread runs: 100,000 pages (400 MB of log).
VALVE_PAGES = 100_000
#: How long the RESTART step waits for the node's transaction in progress, in milliseconds.
BUSY_MS = 2_000
#: The log's length, in frames (pages), past which a round also starts it over: 256 MB.
RESTART_FRAMES = 65_536


def _sync(paths: Sequence[Path]) -> None:
    """fsync each of ``paths``, in order, through a descriptor SQLite already holds on it in this
    process (any descriptor of a file flushes all of it), found in one look at /proc/self/fd.
    Never one opened here: closing any descriptor of a file drops every POSIX lock the process
    holds on it, SQLite's included, and another process closing its connection would then take
    the database for unused and delete its log (sqlite.org/howtocorrupt.html, 2.2). Where /proc
    is not there, or a sync fails, nothing more is done: the RESTART syncs the files itself,
    only under the lock."""
    wanted = {os.path.realpath(p): i for i, p in enumerate(paths)}
    held: dict[int, int] = {}  # index in ``paths`` -> the first descriptor found on it
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # a descriptor closed meanwhile
                index = wanted.get(os.readlink(entry.path))
                if index is not None:
                    held.setdefault(index, int(entry.name))
        for index in sorted(held):
            os.fsync(held[index])


class WalCheckpointer:
    """Checkpoints ``path`` every ``every_s`` from its own thread until :meth:`stop`."""

    def __init__(
        self,
        path: Path,
        every_s: float,
        synchronous: str,
        writes: threading.Lock | None = None,
        on_restart: Callable[[float], None] | None = None,
    ) -> None:
        self.path = path
        self.every_s = every_s
        self.synchronous = synchronous
        self.writes = writes
        self.on_restart = on_restart  # told each RESTART's hold of ``writes``, in seconds
        self.files = (path, path.with_name(path.name + "-wal"))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cifta-wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the round in progress (the node's own connection closes after this)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @staticmethod
    def round(
        db: sqlite3.Connection, writes: threading.Lock | None = None, files: Sequence[Path] = ()
    ) -> float | None:
        """One round on ``db`` (the thread's connection). If it also started the log over,
        holding ``writes`` meanwhile (the lock the node's transactions take): for how long, in
        seconds; None otherwise. ``files`` (the database and its log) are synced first, without
        the lock."""
        _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames < RESTART_FRAMES:
            return None
        _sync(files)  # what the copies since the last sync left for the RESTART
        with writes if writes is not None else contextlib.nullcontext():
            started = time.perf_counter()
            db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            return time.perf_counter() - started

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        failing = ""
        try:
            while not self._stop.wait(self.every_s):
                try:
                    if db is None:
                        db = sqlite3.connect(
                            self.path, isolation_level=None, check_same_thread=False
                        )
                        db.execute(f"PRAGMA synchronous = {self.synchronous}")
                        db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
                    held = self.round(db, self.writes, self.files)
                except Exception as exc:  # the next round tries again; said once per kind
                    if type(exc).__name__ != failing:
                        failing = type(exc).__name__
                        log.warning("wal_checkpoint_failed", error=failing)
                    continue
                failing = ""
                if held is not None and self.on_restart is not None:
                    try:
                        self.on_restart(held)
                    except Exception as exc:  # the RESTART was made: only its report failed
                        log.warning("wal_restart_report_failed", error=type(exc).__name__)
        finally:
            if db is not None:
                db.close()

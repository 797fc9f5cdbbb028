"""The running node's WAL checkpoints come from a thread of their own, never from a commit.

A commit that finds the log past 1,000 pages copies it into the database file by default, and the
event loop waits for that copy and its fsyncs (the tail of the latency in docs/performance.md).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from services.node.store import wal
from services.node.store.db import Database
from services.node.store.wal import WalCheckpointer

ROW = os.urandom(16_000)  # four pages
ROWS = 400  # 1,600 pages: past SQLite's automatic checkpoint at 1,000


def write(db: Database, rows: int = ROWS) -> None:
    db.db.execute("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, b BLOB)")
    for _ in range(rows):
        with db.tx() as c:
            c.execute("INSERT INTO filler (b) VALUES (?)", (ROW,))


def long_log(db: Database) -> None:
    """Write the log past the (lowered) restart threshold before the checkpoint thread's first
    round. The node's own copies are held back meanwhile, as the thread holds them: a copy that
    caught up between two commits would let SQLite start the log over, short of the threshold."""
    db.db.execute(f"PRAGMA wal_autocheckpoint = {wal.VALVE_PAGES}")
    write(db, wal.RESTART_FRAMES // 4 + 10)


def sizes(path: Path) -> tuple[int, int]:
    """(the database file's bytes, the WAL's bytes)."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


def test_without_the_thread_a_commit_copies_the_wal_into_the_file(tmp_path: Path) -> None:
    # the default this module changes: a commit past 1,000 pages checkpoints
    path = tmp_path / "store.sqlite"
    db = Database(path)
    before, _ = sizes(path)
    write(db)
    after, _ = sizes(path)
    db.close()
    assert after - before > len(ROW) * ROWS // 2


def test_with_the_thread_no_commit_copies_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    db = Database(path)
    db.checkpoint_in_background(3600.0)  # the thread's first round is an hour away
    before, _ = sizes(path)
    write(db)
    after, wal = sizes(path)
    db.close()
    assert after == before  # every commit left the copy to the thread
    assert wal > len(ROW) * ROWS  # all of it still in the log
    assert sizes(path)[0] > len(ROW) * ROWS  # and the last connection's close copied it


def test_the_thread_copies_the_wal_into_the_file_and_stops_with_the_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite"
    db = Database(path)
    db.checkpoint_in_background(0.02)
    write(db)
    deadline = time.monotonic() + 10.0
    while sizes(path)[0] <= len(ROW) * ROWS and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the file for the thread's copy, with a deadline
    copied, _ = sizes(path)
    db.close()
    assert copied > len(ROW) * ROWS
    assert "cifta-wal-checkpoint" not in {t.name for t in threading.enumerate()}


class Restarting(NamedTuple):
    path: Path
    db: Database
    conn: sqlite3.Connection  # a connection of its own for the rounds the tests call
    checkpointer: WalCheckpointer


@pytest.fixture
def short_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The restart threshold lowered: 256 MB of log would take minutes of commits to write."""
    monkeypatch.setattr(wal, "RESTART_FRAMES", 1_024)


@pytest.fixture
def restarting(tmp_path: Path, short_restarts: None) -> Iterator[Restarting]:
    """A running node's store, its checkpoint thread an hour away (the tests call its rounds),
    and the restart threshold lowered (``short_restarts``)."""
    path = tmp_path / "store.sqlite"
    db = Database(path)
    db.checkpoint_in_background(3600.0)
    assert db._checkpointer is not None
    conn = sqlite3.connect(path, isolation_level=None)
    yield Restarting(path, db, conn, db._checkpointer)
    conn.close()
    db.close()


def test_a_round_starts_the_log_over_once_it_is_long(restarting: Restarting) -> None:
    # SQLite starts the log over only when a write begins with all of it copied, which a node
    # committing all the time never gives a PASSIVE copy (bench/store_commits.py shows the file
    # growing without end): past RESTART_FRAMES a round also makes a RESTART checkpoint. The
    # threshold is lowered (the fixture).
    db, conn = restarting.db, restarting.conn
    write(db, 10)  # 40 pages
    assert WalCheckpointer.round(conn) is None
    write(db, wal.RESTART_FRAMES // 4 + 10)  # past the threshold
    restarts: list[str] = []
    conn.set_trace_callback(lambda sql: restarts.append(sql) if "RESTART" in sql else None)
    held = WalCheckpointer.round(conn)
    assert held is not None and held > 0  # how long the node's writes waited, for the metric
    assert restarts == ["PRAGMA wal_checkpoint(RESTART)"]
    write(db, 1)  # the log starts over: one row's frames, not thousands
    assert conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1] < 16


def test_a_transaction_waits_for_the_restart_on_the_stores_lock(restarting: Restarting) -> None:
    # SQLite's busy handler looks again after 1, 2, 5, 10, 15 ms...: a RESTART holding the write
    # lock 15-19 ms held the node's next commit 33 ms. The RESTART runs under the store's own
    # lock, which every transaction holds, so a transaction waits for exactly its end.
    db, conn = restarting.db, restarting.conn
    held_during: list[bool] = []
    conn.set_trace_callback(
        lambda sql: held_during.append(db.writes.locked()) if "RESTART" in sql else None
    )
    assert db._checkpointer is not None and db._checkpointer.writes is db.writes  # its thread's
    write(db, wal.RESTART_FRAMES // 4 + 10)
    assert WalCheckpointer.round(conn, db.writes) is not None
    assert held_during == [True]
    assert not db.writes.locked()

    # a transaction started while the lock is held (as during a RESTART) waits for it
    committed = threading.Event()

    def one_row() -> None:
        write(db, 1)
        committed.set()

    with db.writes:
        writer = threading.Thread(target=one_row)
        writer.start()
        assert not committed.wait(0.2)
    assert committed.wait(10)
    writer.join()


def test_a_transaction_waits_for_the_lock_no_longer_than_its_busy_timeout(tmp_path: Path) -> None:
    db = Database(tmp_path / "store.sqlite", busy_timeout_s=0.2)
    acquired, release = threading.Event(), threading.Event()

    def hang() -> None:  # a RESTART whose fsync does not return (a stalled disk)
        with db.writes:
            acquired.set()
            release.wait(10)

    holder = threading.Thread(target=hang)
    holder.start()
    acquired.wait(5)
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            write(db, 1)
    finally:
        release.set()
        holder.join()
    write(db, 1)  # and once it is back, the store writes
    db.close()


def test_a_part_begun_after_sqlite_ended_its_transaction_fails_instead_of_waiting(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "store.sqlite")
    with pytest.raises(sqlite3.OperationalError, match="within one that ended"), db.tx() as c:
        c.execute("ROLLBACK")  # as SQLite does by itself on some failures (a full disk)
        with db.tx():
            pass
    write(db, 1)  # the lock was given back
    db.close()


def until_first_report(path: Path, on_restart: Callable[[float], None]) -> None:
    """A node's store at ``path``, its log past the restart threshold, its checkpoint thread
    running and telling ``on_restart`` of each RESTART, until it has told the first. The store
    is closed on return: the thread stopped, its handling of that report over."""
    reported = threading.Event()

    def report(seconds: float) -> None:
        try:
            on_restart(seconds)
        finally:
            reported.set()

    db = Database(path)
    try:
        long_log(db)
        db.checkpoint_in_background(0.02, on_restart=report)
        assert reported.wait(10)
    finally:
        db.close()


def test_the_thread_reports_how_long_each_restart_held_the_writes(
    tmp_path: Path, short_restarts: None
) -> None:
    # what cifta_node_store_restart_hold_seconds observes (services/node/metrics.py)
    held: list[float] = []
    until_first_report(tmp_path / "store.sqlite", held.append)
    assert held and all(s > 0 for s in held)


def test_a_restart_whose_report_fails_is_not_logged_as_a_failed_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_restarts: None
) -> None:
    # an operator reading wal_checkpoint_failed looks at the disk; a failing metric is not that
    logged: list[str] = []

    class Log:
        def warning(self, event: str, **_: object) -> None:
            logged.append(event)

    monkeypatch.setattr(wal, "log", Log())

    def on_restart(_: float) -> None:
        raise RuntimeError("the metric failed")

    until_first_report(tmp_path / "store.sqlite", on_restart)
    assert "wal_restart_report_failed" in logged
    assert "wal_checkpoint_failed" not in logged


def test_the_files_are_synced_before_the_restart_takes_the_lock(
    restarting: Restarting, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the RESTART syncs what the PASSIVE copies wrote to the database file since its last sync:
    # done first, without the lock, the node's writes wait about 2 ms instead of 15-90
    path, db, conn, checkpointer = restarting
    assert checkpointer.files == (path, path.with_name("store.sqlite-wal"))
    synced: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), db.writes.locked()))
        real_fsync(fd)

    monkeypatch.setattr(wal.os, "fsync", fsync)
    write(db, wal.RESTART_FRAMES // 4 + 10)
    assert WalCheckpointer.round(conn, db.writes, checkpointer.files) is not None
    assert synced == [(str(path), False), (str(path) + "-wal", False)]


def test_syncing_before_the_restart_keeps_the_processs_locks_on_the_database(
    restarting: Restarting,
) -> None:
    # a descriptor opened and closed on the database file would drop the node's POSIX locks on
    # it: a CLI closing its connection next would take the file for unused and delete the log
    # under the running node
    path, db, conn, checkpointer = restarting
    write(db, wal.RESTART_FRAMES // 4 + 10)
    assert WalCheckpointer.round(conn, db.writes, checkpointer.files) is not None
    write(db, 1)  # the log starts over, and holds this row
    other = (  # another process (the officer's CLI) reads and closes its connection
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
        " c.execute('SELECT count(*) FROM filler').fetchone(); c.close()"
    )
    subprocess.run([sys.executable, "-c", other, str(path)], check=True)
    assert path.with_name(path.name + "-wal").exists()  # the node's log is still there

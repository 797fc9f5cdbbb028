"""The node's SQLite connection: one file (WAL), one connection, one transaction at a time.

Every repository of the store (``services/node/store/``) writes through :meth:`Database.tx`, which
joins the enclosing transaction when there is one: several repositories' writes about one message
commit or roll back together. No method awaits, so concurrent handlers on one event loop cannot
interleave inside a transaction.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from services.core.logs import get_logger
from services.node.store.migrations import migrate
from services.node.store.wal import VALVE_PAGES, WalCheckpointer


def iso(t: datetime) -> str:
    """``t`` as the store writes times: UTC, to the millisecond, with a ``Z``."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """A time as :func:`iso` wrote it."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


log = get_logger("cifta.node.store")


class Database:
    """One node's SQLite file, opened and migrated to this software's schema."""

    def __init__(self, path: Path, *, durable: bool = False, busy_timeout_s: float = 10.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # routing metadata and officers' names: owner only
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: a commit survives the process being killed (the fault tests do it); the
        # last commits may be lost to a power cut, as the hub's own JetStream store would lose
        # its unsynced writes. CIFTA_NODE_DURABLE_COMMITS turns FULL (fsync per commit) on.
        self._synchronous = "FULL" if durable else "NORMAL"
        self._db.execute(f"PRAGMA synchronous = {self._synchronous}")
        # the CLI and the node share the file: wait that long for the other's write lock
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        self._db.execute("PRAGMA foreign_keys = ON")
        migrate(self._db)
        #: What to do once the enclosing transaction commits (dropped if it rolls back).
        self._after_commit: list[Callable[[], None]] = []
        self._checkpointer: WalCheckpointer | None = None
        #: Held by each transaction of this connection and by the checkpoint thread's RESTART
        #: step: a transaction waits for that step's end exactly (services/node/store/wal.py),
        #: and no longer than ``busy_timeout_s``, as for SQLite's own lock.
        self.writes = threading.Lock()
        self._writer: int | None = None  # the thread whose transaction holds it
        self._busy_timeout_s = busy_timeout_s

    def checkpoint_in_background(
        self, every_s: float, on_restart: Callable[[float], None] | None = None
    ) -> None:
        """From now on a thread copies the WAL into the database file every ``every_s``, and no
        commit of this connection does unless the log passes ``VALVE_PAGES`` (the thread
        stopped): services/node/store/wal.py. For a long-running node. ``on_restart`` is told,
        from that thread, how long each step that starts the log over held this connection's
        writes."""
        if self._checkpointer is not None or every_s <= 0:
            return
        self._db.execute(f"PRAGMA wal_autocheckpoint = {VALVE_PAGES}")
        self._checkpointer = WalCheckpointer(
            self.path, every_s, self._synchronous, self.writes, on_restart
        )
        self._checkpointer.start()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self._db.close()

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for reads."""
        return self._db

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the enclosing transaction commits, never if it rolls back (a log
        line saying a message was queued, not written for a preview that is rolled back)."""
        if self._db.in_transaction:
            self._after_commit.append(action)
        else:
            action()

    def tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One transaction, or a part of the enclosing one."""
        return self._tx()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._db.in_transaction:
            yield self._db  # the outer transaction commits or rolls back
            return
        if self._writer == threading.get_ident():  # SQLite ended the one it is a part of (a
            # full disk): fail as that part would have, never wait for this thread's own lock
            raise sqlite3.OperationalError("cannot start a transaction within one that ended")
        if not self.writes.acquire(timeout=self._busy_timeout_s):  # a checkpoint that hangs
            raise sqlite3.OperationalError("database is locked")  # (a stalled disk's fsync)
        self._writer = threading.get_ident()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._after_commit.clear()
            if self._db.in_transaction:  # never leave one open: the next would join it silently
                self._db.execute("ROLLBACK")
            raise
        finally:
            self._writer = None
            self.writes.release()
        done, self._after_commit = self._after_commit, []
        for action in done:
            try:
                action()
            except Exception as exc:  # committed all the same: the caller must not be told it
                # failed (it would take the work again), and the actions after it still run
                with contextlib.suppress(Exception):  # the log itself may be what failed
                    log.error("after_commit_action_failed", error=type(exc).__name__)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the enclosing transaction that is undone alone if it fails (one message of
        a group commit), or a transaction of its own outside one."""
        if not self._db.in_transaction:
            with self._tx():
                yield
            return
        self._db.execute("SAVEPOINT part")
        pending = len(self._after_commit)
        try:
            yield
        except BaseException:
            del self._after_commit[pending:]  # what the undone part would have done
            if self._db.in_transaction:  # some failures (a full disk) end the transaction
                self._db.execute("ROLLBACK TO part")
                self._db.execute("RELEASE part")
            raise
        self._db.execute("RELEASE part")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several store operations as one transaction (the write lock taken at once, so another
        process sharing the file, such as the officer's CLI, cannot interleave)."""
        with self._tx():
            yield

    def probe(self) -> bool:
        """Whether the store can take a write now: a write transaction on a connection of its
        own, with a short wait for the lock, so that a failing store is told apart from a
        message that fails."""
        try:
            probe = sqlite3.connect(self.path, isolation_level=None, timeout=0.5)
        except sqlite3.Error:
            return False
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute(
                "INSERT OR REPLACE INTO node_state (name, value, at) VALUES ('probe', '1', ?)",
                (iso(datetime.now(UTC)),),
            )
            probe.execute("COMMIT")
            return True
        except sqlite3.Error:
            return False
        finally:
            probe.close()


class Repository:
    """A table family's reads and writes, on the store's one connection and transaction."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _db(self) -> sqlite3.Connection:
        return self._database.db

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._database.tx()

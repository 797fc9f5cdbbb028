"""The node's store health: a store that cannot write stops the inbox instead of spending the
hub's delivery attempts.

A delivery that fails because the node's own disk is full or its SQLite file is locked says
nothing about the envelope. Asking the hub to deliver it again would spend its attempts, and after
the last one the envelope would be given up on (quarantined as ``processing_failed``, or left in
the stream) for a fault that was the node's. So when a write fails and a probe write on a
connection of its own fails too, the node closes this gate: the handlers hold their deliveries
(telling the hub they are still in progress, so no attempt is counted), the pull loop fetches
nothing more, the outboxes pause, and the operator is told loudly until the probe succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable

from services.core.logs import get_logger
from services.node.store import Store

log = get_logger("cifta.node")

#: How often a held delivery tells the hub it is still being worked on: well inside the
#: consumer's ack wait (30 s), so the hub never counts it as a new attempt.
HEARTBEAT_S = 5.0
#: How often a failing store is reported while it lasts.
REPORT_EVERY_S = 30.0


#: SQLite's own word that the store failed (a lock held too long, a full disk, an I/O error, a
#: read-only or missing file, no memory): no probe is asked, since a one-row probe can pass where
#: a message's insert fails (a full disk reusing WAL pages) or a lock be released just before it.
_STORE_CODES = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM,
})  # fmt: skip


def is_store_failure(exc: BaseException) -> bool:
    """Whether ``exc`` may come from the store rather than from the message."""
    return isinstance(exc, sqlite3.Error | OSError)


def _says_store_failed(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and (code & 0xFF) in _STORE_CODES


class StoreGate:
    """Open while the store takes writes; closed, and probed, while it does not."""

    def __init__(self, store: Store, probe_s: float = 1.0) -> None:
        self.store = store
        self.probe_s = probe_s
        self._open = asyncio.Event()
        self._open.set()
        self._probe: asyncio.Task[None] | None = None
        self.outages = 0

    @property
    def healthy(self) -> bool:
        return self._open.is_set()

    def check(self, exc: BaseException) -> bool:
        """After ``exc``: close the gate if the store itself is failing; returns whether it is."""
        if not self.healthy:
            return True
        if not is_store_failure(exc):
            return False
        if not _says_store_failed(exc) and self.store.probe():
            return False  # the store writes: the failure was the message's
        self._open.clear()
        self.outages += 1
        log.error(
            "store_unhealthy",
            error=type(exc).__name__,
            detail=str(exc)[:200],
            store=str(self.store.path),
            action="inbox paused: nothing is fetched or refused until the store writes again",
        )
        self._probe = asyncio.create_task(self._until_healthy(), name="store-probe")
        return True

    async def _until_healthy(self) -> None:
        started = last_report = time.monotonic()
        # in a thread: a probe may wait for a lock, and the event loop has heartbeats to send
        while not await asyncio.to_thread(self.store.probe):
            await asyncio.sleep(self.probe_s)  # a probe interval: there is no event to wait on
            if time.monotonic() - last_report >= REPORT_EVERY_S:
                last_report = time.monotonic()
                log.error("store_still_unhealthy", for_s=round(last_report - started))
        self._open.set()
        log.warning("store_recovered", after_s=round(time.monotonic() - started, 1))

    async def wait(self, heartbeat: Callable[[], Awaitable[object]] | None = None) -> None:
        """Return once the store writes; meanwhile call ``heartbeat`` every few seconds."""
        while not self._open.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._open.wait(), HEARTBEAT_S)
            if not self._open.is_set() and heartbeat is not None:
                with contextlib.suppress(Exception):  # the hub may be away too
                    await heartbeat()

    def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()

"""The audit service for tests: in this event loop, or as its own process (to be killed)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from services.audit.log import AuditLog
from services.audit.service import AuditService, AuditSettings
from services.cli.audit_cmd import _audit_private, _directory_of
from services.testbed.audit import audit_backlog as audit_backlog
from services.testbed.audit import audit_reading as audit_reading
from tests.support.hub import Hub
from tests.support.processes import cifta_process


@asynccontextmanager
async def running_audit(
    hub: Hub, checkpoint_every_s: float = 0.2, **overrides: Any
) -> AsyncIterator[AuditService]:
    """The audit service; ``directory`` (a callable) replaces the hub's directory as read once."""
    directory = overrides.pop("directory", None)
    if directory is None:
        fixed = _directory_of(hub.home)
        directory = lambda: fixed  # noqa: E731
    settings = AuditSettings(
        url=hub.url, seed=str(hub.home.user_seed("AUDIT", "audit")),
        parties=hub.home.registry().codes(), checkpoint_every_s=checkpoint_every_s, **overrides,
    )  # fmt: skip
    key = _audit_private(hub.home)
    service = AuditService(AuditLog(hub.home.audit_log_path), key, directory, settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@contextmanager
def audit_process(hub: Hub, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """``cifta audit run`` as its own process, so that it can be SIGKILLed (and has a core of
    its own, as in production)."""
    args = ["audit", "--hub-home", str(hub.home.root), "run", "--url", hub.url,
            "--checkpoint-every", "0.2", "--log-level", "WARNING",
            "--fetch-batch", "16", *options]  # fmt: skip
    with cifta_process(args, hub.home.root / "audit.log") as proc:
        yield proc

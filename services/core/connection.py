"""Connections to the hub: the TLS context every client uses, and the short connection of a
secretariat tool (provisioning, the directory's publisher, the audit service's tools)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError


class HubUnreachable(ConnectionError):
    """A secretariat tool could not connect to the hub; the message names the URL."""


def servers(url: str) -> list[str]:
    """The server URLs in ``url``: one, or several comma-separated (the members of a hub cluster;
    the client connects to any one that answers and moves to another when it goes)."""
    return [part.strip() for part in url.split(",") if part.strip()]


def tls_context(url: str, ca: Path | None) -> ssl.SSLContext | None:
    """The TLS context for ``url``: verified against ``ca`` (or the system's roots) when the URL
    says ``tls://`` or a CA is given; None for a plain loopback connection."""
    if ca is None and not url.startswith("tls://"):
        return None
    return ssl.create_default_context(cafile=str(ca) if ca else None)


async def quiet(exc: Exception) -> None:
    """An error callback that says nothing: the caller reports the failure in one line."""


@asynccontextmanager
async def connect(
    url: str, seed: Path, tls_ca: Path | None = None, name: str = "cifta-hub-provision"
) -> AsyncIterator[Client]:
    """One short connection of a secretariat tool, as the NKey user of ``seed``."""
    tls = tls_context(url, tls_ca)
    try:
        # nats-py retries a refused first connection without end unless max_reconnect_attempts
        # is positive, whatever allow_reconnect says: one retry, then a clear error.
        nc = await nats.connect(
            servers(url), nkeys_seed=str(seed), name=name, allow_reconnect=False, tls=tls,
            max_reconnect_attempts=1, reconnect_time_wait=0.5, connect_timeout=5,
            error_cb=quiet,  # nats-py's default logs each failure with a traceback
        )  # fmt: skip
    except (OSError, NatsError) as exc:
        raise HubUnreachable(
            f"cannot reach the hub at {url} ({type(exc).__name__}): is it running?"
        ) from None
    try:
        yield nc
    finally:
        await nc.close()

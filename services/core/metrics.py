"""Prometheus metrics, liveness and readiness for the long-running services.

Each service (a node, the audit service, the hub's monitor) owns one ``CollectorRegistry`` and
serves it with :class:`MetricsServer` on ``--metrics HOST:PORT`` (loopback unless told
otherwise): ``GET /metrics`` in Prometheus' text format, ``GET /livez`` (the process answers) and
``GET /readyz`` (it does its job: connected, store writing). The server runs in the service's own
event loop, so that collectors read the service's state without locks.

What leaves a state stays correlated by message id only: :class:`StripTraceHeaders` removes the
OpenTelemetry headers from every publish (they travel in the clear, outside the encrypted
envelope, and would let the hub link one state's internal traces to another's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faststream import BaseMiddleware
from nats.aio.client import Client
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from services.core.logs import get_logger

log = get_logger("cifta.metrics")

DEFAULT_HOST = "127.0.0.1"
#: W3C Trace Context (``traceparent``, ``tracestate``) and W3C Baggage: never across a border.
TRACE_HEADERS = frozenset({"traceparent", "tracestate", "baggage"})
_REQUEST_TIMEOUT_S = 5.0
_MAX_REQUEST_LINE = 4096


class MetricsAddressError(ValueError):
    """``--metrics`` was not ``HOST:PORT``; the message names what was typed and what is meant."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT`` for loopback; ``[::1]:PORT`` for IPv6) to (host, port)."""
    host, sep, port_text = text.rpartition(":")
    expected = "expected HOST:PORT, e.g. 127.0.0.1:9464"
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise MetricsAddressError(f"--metrics {text!r}: {expected}")
    host = host.strip("[]") or DEFAULT_HOST
    if not host.replace(".", "").replace("-", "").replace(":", "").isalnum():
        raise MetricsAddressError(f"--metrics {text!r}: {expected}")
    return host, int(port_text)


@dataclass(frozen=True)
class HealthReport:
    """A liveness or readiness answer: ``ok``, and why not (short, stable reason codes)."""

    ok: bool
    reasons: tuple[str, ...] = ()

    def response(self) -> tuple[int, bytes]:
        """The HTTP status and JSON body any front end may serve for it (200 or 503)."""
        body = json.dumps({"status": "ok" if self.ok else "unavailable", "reasons": self.reasons})
        return (200 if self.ok else 503), body.encode()


def report(checks: Sequence[tuple[str, bool]]) -> HealthReport:
    """A report from named checks: ok when each holds; the names of those that fail."""
    failing = tuple(name for name, held in checks if not held)
    return HealthReport(ok=not failing, reasons=failing)


def always_live() -> HealthReport:
    return HealthReport(ok=True)


class MetricsServer:
    """``/metrics``, ``/livez`` and ``/readyz`` over HTTP/1.0, in the caller's event loop."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        ready: Callable[[], HealthReport],
        live: Callable[[], HealthReport] = always_live,
        host: str = DEFAULT_HOST,
        port: int = 0,
    ) -> None:
        self.registry = registry
        self._routes: dict[str, Callable[[], tuple[int, bytes, str]]] = {
            "/metrics": self._metrics,
            "/livez": lambda: (*live().response(), "application/json"),
            "/readyz": lambda: (*ready().response(), "application/json"),
        }
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def _metrics(self) -> tuple[int, bytes, str]:
        return 200, generate_latest(self.registry), CONTENT_TYPE_LATEST

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body, ctype = await asyncio.wait_for(self._answer(reader), _REQUEST_TIMEOUT_S)
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            status, body, ctype = 400, b"bad request\n", "text/plain"
        head = (
            f"HTTP/1.0 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes, str]:
        line = await reader.readline()
        if len(line) > _MAX_REQUEST_LINE:
            raise ValueError("request line too long")
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            if len(header) > _MAX_REQUEST_LINE:
                raise ValueError("header too long")
        method, _, rest = line.decode("latin-1").partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, b"method not allowed\n", "text/plain"
        route = self._routes.get(path)
        if route is None:
            return 404, b"not found\n", "text/plain"
        return route()


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}  # fmt: skip


async def serve_metrics(
    listen: str | None, registry: CollectorRegistry, ready: Callable[[], HealthReport]
) -> MetricsServer | None:
    """Start a :class:`MetricsServer` on ``listen`` (``HOST:PORT``), or nothing without it."""
    if not listen:
        return None
    host, port = parse_listen(listen)
    server = MetricsServer(registry, ready=ready, host=host, port=port)
    await server.start()
    log.info("metrics_served", url=server.url)  # the port, when 0 asked for any free one
    return server


# -- what leaves a state -------------------------------------------------------------------------


def without_trace_headers(headers: dict[str, Any] | None) -> dict[str, Any]:
    """``headers`` less the OpenTelemetry ones (any spelling of their names)."""
    return {k: v for k, v in (headers or {}).items() if k.lower() not in TRACE_HEADERS}


class StripTraceHeaders(BaseMiddleware):
    """Removes trace headers from every message this broker publishes (issue 15: tracing stays
    inside one state; across states, correlation is by message id)."""

    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        cmd.headers = without_trace_headers(cmd.headers)
        return await call_next(cmd)


def strip_trace_headers_on(nc: Client) -> Client:
    """``nc`` (a nats-py client), its every publish less the trace headers: the same rule as
    :class:`StripTraceHeaders`, for connections that are not a FastStream broker. Its requests
    and JetStream publishes go through ``publish`` too, so they are covered."""
    publish = nc.publish

    async def stripped(
        subject: str, payload: bytes = b"", reply: str = "", headers: dict[str, str] | None = None
    ) -> None:
        await publish(subject, payload, reply=reply, headers=without_trace_headers(headers) or None)

    nc.publish = stripped  # type: ignore[method-assign]
    return nc


def add_metrics_option(parser: argparse.ArgumentParser) -> None:
    """``--metrics HOST:PORT`` on a long-running command (checked as it is parsed)."""

    def address(text: str) -> str:
        try:
            parse_listen(text)
        except MetricsAddressError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("--metrics ")) from None
        return text

    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        type=address,
        help="serve Prometheus metrics and /livez, /readyz there (e.g. 127.0.0.1:9464; "
        "keep it on loopback or a private network)",
    )

"""OpenTelemetry traces inside one state's services, and never beyond them.

A node traces what it does with each message (the broker's consume and publish spans, from
FastStream's NATS middleware) and sends the spans to the state's own collector over OTLP/HTTP
(``otlp_endpoint`` in node.json, or ``CIFTA_NODE_OTLP_ENDPOINT``). Off unless an
endpoint is set: the middleware costs throughput (not measured yet; FastStream's Prometheus
middleware, alike in shape, cost about 23% end to end: docs/performance.md).

What never leaves the state:
- the trace context: the W3C headers the middleware puts on every publish are removed before the
  message reaches the hub (:class:`services.core.metrics.StripTraceHeaders`, the innermost
  middleware), because they sit outside the encrypted envelope and would let the hub and the
  recipient correlate a state's internal work; across states, correlation is by message id;
- the spans: sent only to the endpoint given, which must be on the node's own machine
  (loopback) unless it is HTTPS;
- message contents: a span carries subjects, sizes and ids, never a body (FastStream's middleware
  records the body's size only).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the SDK and the exporter load only when a node traces (70 ms otherwise)
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

#: OTLP/HTTP's path for traces (the exporter is given the full URL).
TRACES_PATH = "/v1/traces"


class TracingEndpointError(ValueError):
    """The OTLP endpoint is not one spans may go to; the message names what was given."""


def check_endpoint(url: str) -> str:
    """``url`` if spans may go there: HTTPS anywhere, plain HTTP to loopback only. The path
    defaults to OTLP's ``/v1/traces``."""
    parts = urlsplit(url)
    expected = "expected an https:// URL, or http:// to 127.0.0.1, ::1 or localhost"
    if parts.username is not None or parts.password is not None:
        # never echoed: the error would carry the credentials into a log
        raise TracingEndpointError(
            "OTLP endpoint: a user or password in the URL would be written wherever the "
            f"settings are; {expected}, and the collector's credentials kept elsewhere"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TracingEndpointError(f"OTLP endpoint {url!r}: {expected}")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise TracingEndpointError(
            f"OTLP endpoint {url!r}: plain HTTP beyond this machine would carry the state's "
            f"traces in clear; {expected}"
        )
    return url if parts.path not in ("", "/") else url.rstrip("/") + TRACES_PATH


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tracer_provider(
    service: str, party: str, *, endpoint: str | None = None, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A provider whose spans name ``service`` and the state, batched to ``endpoint`` (checked
    by :func:`check_endpoint`) or to ``exporter`` (tests give an in-memory one)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        if endpoint is None:
            raise TracingEndpointError("a tracer provider needs an OTLP endpoint or an exporter")
        exporter = OTLPSpanExporter(endpoint=check_endpoint(endpoint), timeout=5)
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "cifta.state": party})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider

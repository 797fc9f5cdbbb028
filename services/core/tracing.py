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
  records the body's size only), and of an exception only its type: the SDK records an
  exception's text and stack trace, and a validation error's text can quote the value it refused
  (:func:`scrubbing_exporter`).

What is not taken from outside: a received message's trace context. The telemetry middleware
would continue a trace named in its headers; the node's parser hands FastStream none of the
sender's headers (``services.node.app._parse_untrusted``), so every trace a node records starts
in the node.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the SDK and the exporter load only when a node traces (70 ms otherwise)
    from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

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
    provider.add_span_processor(BatchSpanProcessor(scrubbing_exporter(exporter)))
    return provider


#: What an exception event keeps (OpenTelemetry's semantic conventions): its type, and whether
#: it left the span; never ``exception.message`` or ``exception.stacktrace``.
EXCEPTION_KEPT = frozenset({"exception.type", "exception.escaped"})


def _exception_type(event: Event) -> str | None:
    value = (event.attributes or {}).get("exception.type")
    return value if isinstance(value, str) else None


def scrubbed(span: ReadableSpan) -> ReadableSpan:
    """``span`` with its exceptions reduced to their types: each exception event keeps
    :data:`EXCEPTION_KEPT`, and an error status's description (the SDK writes
    ``"Type: text"``) becomes the last exception's type."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Status

    events = [
        Event(
            e.name,
            {k: v for k, v in (e.attributes or {}).items() if k in EXCEPTION_KEPT},
            timestamp=e.timestamp,
        )
        if e.name == "exception"
        else e
        for e in span.events
    ]
    types = [t for e in span.events if e.name == "exception" and (t := _exception_type(e))]
    status = span.status
    if status.description is not None:
        status = Status(status.status_code, types[-1] if types else None)
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=span.attributes, events=events, links=span.links, kind=span.kind,
        status=status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )  # fmt: skip


def scrubbing_exporter(inner: SpanExporter) -> SpanExporter:
    """``inner``, given every span :func:`scrubbed` first: what the state's collector receives.
    (The class is made here because the SDK loads only when a node traces.)"""
    from opentelemetry.sdk.trace.export import SpanExporter

    class _Scrubbed(SpanExporter):
        def __init__(self, inner: SpanExporter) -> None:
            self.inner = inner

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return self.inner.export([scrubbed(s) for s in spans])

        def shutdown(self) -> None:
            self.inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self.inner.force_flush(timeout_millis)

    return _Scrubbed(inner)

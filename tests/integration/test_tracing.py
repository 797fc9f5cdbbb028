"""OpenTelemetry inside one state (services/core/tracing.py): a traced node's spans reach its own
exporter, and the trace context the middleware adds never reaches the hub or another state."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import ValidationError

from services.core import subjects
from services.core.metrics import TRACE_HEADERS
from services.core.tracing import TracingEndpointError, check_endpoint, tracer_provider
from services.node.app import NodeRuntime
from tests.support.hub import Hub, eventually
from tests.support.nodes import send_routes_report


async def test_a_traced_node_records_its_spans_and_sends_no_trace_context_across(
    hub: Hub, tmp_path: Path
) -> None:
    spans = InMemorySpanExporter()
    mex = NodeRuntime(
        hub.node_settings("MEX", tmp_path),
        tracer=tracer_provider("cifta-node", "MEX", exporter=spans),
    )
    await mex.start(connect_timeout=10)
    try:
        sent = send_routes_report(mex, ["USA"])

        def published() -> bool:
            assert mex.tracer is not None
            mex.tracer.force_flush()
            return any(
                s.attributes
                and s.attributes.get("messaging.destination.name")
                == subjects.inbox_subject("USA", "MEX", sent.msg_id)
                for s in spans.get_finished_spans()
            )

        await eventually(published, what="MEX's publish span")
    finally:
        await mex.stop()
    names = {s.resource.attributes.get("cifta.state") for s in spans.get_finished_spans()}
    assert names == {"MEX"}
    # the envelope as USA's node will fetch it: MEX's headers, less the trace context
    nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("USA")))
    try:
        sub = await nc.jetstream().pull_subscribe_bind(
            durable=subjects.NODE_CONSUMER, stream=subjects.inbox_stream("USA")
        )
        [msg] = await sub.fetch(1, timeout=5)
    finally:
        await nc.close()
    received = {k.lower() for k in msg.headers or {}}
    assert "nats-msg-id" in received  # MEX's own headers travel
    assert not received & TRACE_HEADERS


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
        ("http://localhost:4318/v1/traces", "http://localhost:4318/v1/traces"),
        ("http://[::1]:4318/", "http://[::1]:4318/v1/traces"),
        ("https://otel.example.org/v1/traces", "https://otel.example.org/v1/traces"),
    ],
)
def test_spans_go_over_https_or_to_this_machine(typed: str, kept: str) -> None:
    assert check_endpoint(typed) == kept


def test_a_url_holding_credentials_is_refused_without_repeating_them() -> None:
    with pytest.raises(TracingEndpointError) as refused:
        check_endpoint("https://user:s3cret@otel.example.org")
    assert "s3cret" not in str(refused.value) and "user:" not in str(refused.value)


@pytest.mark.parametrize("typed", ["http://10.0.0.5:4318", "ftp://127.0.0.1", "127.0.0.1:4318"])
def test_a_collector_reached_in_clear_or_by_no_url_is_refused(typed: str, tmp_path: Path) -> None:
    with pytest.raises(TracingEndpointError, match="expected an https:// URL"):
        check_endpoint(typed)
    from services.node.settings import NodeSettings

    with pytest.raises(ValidationError, match="OTLP endpoint"):
        NodeSettings(party="MEX", home=tmp_path, otlp_endpoint=typed)


FOREIGN_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
FOREIGN_SPAN = "00f067aa0ba902b7"


async def test_a_received_trace_context_is_not_continued(hub: Hub, tmp_path: Path) -> None:
    """MEX puts a ``traceparent`` of its choosing on what it publishes to USA (the hub cannot
    stop a state's own client from doing so); USA's traced node records the delivery in a trace
    of its own, not as a child of MEX's span (its parser hands FastStream none of the sender's
    headers)."""
    spans = InMemorySpanExporter()
    usa = NodeRuntime(
        hub.node_settings("USA", tmp_path),
        tracer=tracer_provider("cifta-node", "USA", exporter=spans),
    )
    await usa.start(connect_timeout=10)
    try:
        nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("MEX")))
        try:
            await nc.jetstream().publish(
                subjects.inbox_subject("USA", "MEX", "0190f3a0-0000-7000-8000-000000000001"),
                b"not an envelope",
                headers={"traceparent": f"00-{FOREIGN_TRACE}-{FOREIGN_SPAN}-01"},
            )
        finally:
            await nc.close()
        await usa.wait_processed(1, timeout=20)
        assert usa.tracer is not None
        usa.tracer.force_flush()
    finally:
        await usa.stop()
    consumed = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert consumed, "USA recorded no consume span"
    for span in consumed:
        assert f"{span.context.trace_id:032x}" != FOREIGN_TRACE
        assert span.parent is None or f"{span.parent.span_id:016x}" != FOREIGN_SPAN


def test_an_exception_reaches_the_collector_as_its_type_alone() -> None:
    """The SDK records an exception's text and stack trace on the span, and a validation error's
    text can quote the value it refused; the state's collector gets the type only."""
    spans = InMemorySpanExporter()
    provider = tracer_provider("cifta-node", "USA", exporter=spans)
    tracer = provider.get_tracer("test")
    with pytest.raises(ValueError, match="SERIAL-AB123"), tracer.start_as_current_span("consume"):
        raise ValueError("input_value='SERIAL-AB123'")
    provider.force_flush()
    [span] = spans.get_finished_spans()
    assert "SERIAL-AB123" not in repr(
        [span.status.description, span.attributes, [dict(e.attributes or {}) for e in span.events]]
    )
    [event] = span.events
    assert event.name == "exception"
    assert dict(event.attributes or {}) == {
        "exception.type": "ValueError",
        "exception.escaped": "False",
    }
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError"

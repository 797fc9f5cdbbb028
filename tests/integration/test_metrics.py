"""Metrics, health endpoints and trace headers against a real hub (issue 15).

Every scrape is a real HTTP request to the service's own metrics server; the hub's numbers come
from nats-server's system account through ``cifta hub monitor``'s collector.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
from pathlib import Path

import nats
import pytest
from prometheus_client.exposition import generate_latest

from services.cli.main import build_parser
from services.core import subjects
from services.core.metrics import TRACE_HEADERS, parse_listen
from services.hub.monitor import HubMonitor
from services.node.lookup_client import connect as lookup_connect
from tests.support.audit import running_audit
from tests.support.hub import Hub, eventually
from tests.support.metrics import declared_names, http, hub_monitor, scrape, served, value
from tests.support.nodes import delivered_to, running_node, send_routes_report
from tests.support.processes import cifta_process
from tests.support.promql import metric_names, rules


async def test_metrics_move_when_messages_flow_and_every_rule_names_an_exported_metric(
    hub: Hub, tmp_path: Path
) -> None:
    monitor = hub_monitor(hub)
    async with (
        running_audit(hub) as audit,
        running_node(hub, "MEX", tmp_path) as mex,
        running_node(hub, "USA", tmp_path) as usa,
        served(mex.metrics.registry, mex.metrics.ready) as mex_m,
        served(usa.metrics.registry, usa.metrics.ready) as usa_m,
        served(audit.metrics.registry, audit.metrics.ready) as audit_m,
        served(monitor.registry, monitor.ready) as hub_m,
    ):
        before = await scrape(usa_m)
        assert value(before, "cifta_node_messages_stored", party="USA", direction="in") == 0
        sent = [send_routes_report(mex, ["USA"]).msg_id for _ in range(3)]
        await eventually(lambda: all(delivered_to(mex, m) == {"USA"} for m in sent),
                         what="receipts back at MEX")  # fmt: skip

        usa_text, mex_text = await scrape(usa_m), await scrape(mex_m)
        assert value(usa_text, "cifta_node_envelopes_total", outcome="accepted") == 3
        assert value(usa_text, "cifta_node_messages_stored", direction="in") == 3
        assert value(usa_text, "cifta_node_store_commit_seconds_count") >= 1
        # no WAL restart at this load: declared, with nothing observed
        assert value(usa_text, "cifta_node_store_restart_hold_seconds_count") == 0
        assert value(mex_text, "cifta_node_sent_total", party="MEX") == 3
        assert value(mex_text, "cifta_node_outbox_depth", party="MEX") == 0
        assert value(mex_text, "cifta_node_envelopes_total", outcome="accepted") == 3  # receipts
        assert value(mex_text, "cifta_node_hub_connected", party="MEX") == 1
        assert abs(value(mex_text, "cifta_node_clock_offset_seconds", party="MEX")) < 5

        await eventually(lambda: audit.log.size >= 6, what="stored and delivered leaves")
        await audit.metrics.refresh_backlog()
        audit_text = await scrape(audit_m)
        assert value(audit_text, "cifta_audit_leaves_total") >= 6
        assert set(audit.metrics.backlog) == {"MEX", "USA", "COL"}

        await monitor.refresh()
        hub_text = await scrape(hub_m)
        assert value(hub_text, "cifta_hub_reachable") == 1
        assert value(hub_text, "cifta_hub_server_up") == 1
        assert value(hub_text, "cifta_hub_stream_messages", stream="INBOX_USA") == 3
        assert value(hub_text, "cifta_hub_consumer_pending", stream="INBOX_USA") == 0

        exported = declared_names(usa_text + mex_text + audit_text + hub_text)
        for rule in rules():
            missing = metric_names(rule["expr"]) - exported
            assert not missing, f"{rule['alert']} names metrics nobody exports: {missing}"


async def test_liveness_and_readiness_of_a_node_and_the_audit_service(
    hub: Hub, tmp_path: Path
) -> None:
    async with (
        running_audit(hub) as audit,
        served(audit.metrics.registry, audit.metrics.ready) as m,
    ):
        assert await http(m.url + "/livez") == (200, '{"status": "ok", "reasons": []}')
        assert await http(m.url + "/readyz") == (200, '{"status": "ok", "reasons": []}')
    async with (
        running_node(hub, "MEX", tmp_path) as mex,
        served(mex.metrics.registry, mex.metrics.ready) as node_m,
    ):
        assert await http(node_m.url + "/livez") == (200, '{"status": "ok", "reasons": []}')
        assert (await http(node_m.url + "/readyz"))[0] == 200
        assert (await http(node_m.url + "/nothing"))[0] == 404
        assert (await http(node_m.url + "/metrics", "POST"))[0] == 405
        hub.kill()  # the hub gone: alive, not ready
        await eventually(lambda: not mex.connected.is_set(), what="MEX disconnected")
        status, body = await http(node_m.url + "/readyz")
        assert (status, body) == (503, '{"status": "unavailable", "reasons": ["hub_disconnected"]}')
        assert (await http(node_m.url + "/livez"))[0] == 200
        text = await scrape(node_m)
        assert value(text, "cifta_node_hub_connected", party="MEX") == 0
        hub.restart_on_same_port()  # back: ready again
        await eventually(lambda: mex.connected.is_set(), 20.0, what="MEX reconnected")
        assert (await http(node_m.url + "/readyz"))[0] == 200


async def test_trace_headers_never_reach_another_states_inbox(hub: Hub, tmp_path: Path) -> None:
    async with running_node(hub, "MEX", tmp_path) as mex:
        subject = subjects.inbox_subject("USA", "MEX", "traced")
        headers = {
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "TraceState": "vendor=x",
            "baggage": "officer=someone",
            "Cifta-Keep": "1",
        }
        stream = subjects.inbox_stream("USA")
        await mex.broker.publish(b"x", subject, stream=stream, headers=headers, timeout=5)
    nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("USA")))
    try:
        sub = await nc.jetstream().pull_subscribe_bind(
            durable=subjects.NODE_CONSUMER, stream=subjects.inbox_stream("USA")
        )
        [msg] = await sub.fetch(1, timeout=5)
    finally:
        await nc.close()
    received = {k.lower() for k in msg.headers or {}}
    assert "cifta-keep" in received  # headers do travel: the trace ones alone were removed
    assert not received & TRACE_HEADERS


async def test_the_lookup_clients_requests_reach_another_state_without_trace_headers(
    hub: Hub, tmp_path: Path
) -> None:
    """The lookup client asks other states over its own nats-py connection, not the broker."""
    seen: list[dict[str, str]] = []

    async def answer(msg: nats.aio.msg.Msg) -> None:
        seen.append(dict(msg.headers or {}))
        await msg.respond(b"{}")

    headers = {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "TraceState": "vendor=x",
        "Baggage": "officer=someone",
        "Cifta-Keep": "1",
    }
    subject = subjects.lookup_evaluation_subject("USA", "MEX")
    async with lookup_connect(hub.node_settings("USA", tmp_path), name="answerer") as usa:
        await usa.subscribe(subjects.lookup_evaluation_filter("USA"), cb=answer)
        await usa.flush()
        async with lookup_connect(hub.node_settings("MEX", tmp_path)) as mex:
            await mex.request(subject, b"{}", timeout=5, headers=headers)
            await mex.publish(subject, b"{}", headers={"traceparent": headers["traceparent"]})
            await mex.flush()
            await eventually(lambda: len(seen) == 2, what="both messages at USA")
    requested, published = ({k.lower() for k in h} for h in seen)
    assert "cifta-keep" in requested  # headers do travel: the trace ones alone were removed
    assert not requested & TRACE_HEADERS and not published & TRACE_HEADERS


@pytest.mark.parametrize("command", [["node", "run"], ["audit", "run"], ["hub", "monitor"]])
def test_a_mistyped_metrics_address_is_one_line_naming_what_was_typed(command: list[str]) -> None:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command, "--metrics", "9464"])
    assert exit_.value.code == 2
    last = stderr.getvalue().strip().splitlines()[-1]
    assert "--metrics" in last and "'9464'" in last and "HOST:PORT" in last
    assert "Traceback" not in stderr.getvalue()
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen(":9464") == ("127.0.0.1", 9464)  # loopback unless told otherwise


async def served_url(log: Path) -> str:
    """The metrics URL a ``cifta`` process logged (``--metrics 127.0.0.1:0``: any free port)."""
    found: list[str] = []

    def logged() -> bool:
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            if '"metrics_served"' in line:
                found.append(json.loads(line)["url"])
                return True
        return False

    await eventually(logged, 30.0, what="the metrics server's URL in the log")
    return found[0]


async def test_cifta_node_run_serves_its_metrics_and_the_hub_sees_it_stop(
    hub: Hub, tmp_path: Path
) -> None:
    settings = hub.node_settings("USA", tmp_path)
    settings.save()
    log = settings.home / "node.log"
    monitor = hub_monitor(hub)
    args = ["node", "run", "--home", str(settings.home), "--metrics", "127.0.0.1:0"]
    with cifta_process(args, log) as proc:
        url = await served_url(log)

        async def ready() -> bool:
            return (await http(url + "/readyz"))[0] == 200

        await eventually(ready, 30.0, what="the node ready")
        text = (await http(url + "/metrics"))[1]
        assert value(text, "cifta_node_hub_connected", party="USA") == 1
        await monitor.refresh()
        pulls = {"stream": "INBOX_USA", "consumer": subjects.NODE_CONSUMER}
        assert value(await monitor_text(monitor), "cifta_hub_consumer_waiting_pulls", **pulls) > 0
        os.kill(proc.pid, signal.SIGKILL)  # the node stopped hard
        proc.wait()

    async def not_pulling() -> bool:
        await monitor.refresh()
        text = await monitor_text(monitor)
        return value(text, "cifta_hub_consumer_waiting_pulls", **pulls) == 0

    await eventually(not_pulling, 30.0, what="the hub no longer sees USA pulling")
    with pytest.raises(OSError):  # and nothing answers where its metrics were
        await http(url + "/livez")


async def monitor_text(monitor: HubMonitor) -> str:
    return generate_latest(monitor.registry).decode()

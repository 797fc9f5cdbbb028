"""What an operator sees of a node: one process per home, loud connection failures and clock,
log levels in any case, no false security alarm (issue: availability, observation 7 and 5)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from services.node.settings import NodeSettings
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node, send_routes_report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_node(home: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "node", "run", "--home", str(home)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
        )  # fmt: skip


async def wait_for_line(log: Path, text: str, timeout: float = 15.0) -> str:
    found: list[str] = []

    def present() -> bool:
        found[:] = [line for line in log.read_text().splitlines() if text in line]
        return bool(found)

    await eventually(present, timeout, what=f"{text!r} in the node's log")
    return found[0]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_a_node_pointed_at_a_wrong_hub_url_says_so_at_once(
    hub_home: Hub, tmp_path: Path
) -> None:
    wrong = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    settings = hub_home.node_settings("MEX", tmp_path, hub_url=wrong, log_json=True)
    settings.save()
    log = tmp_path / "node.log"
    # the level in lower case, as an operator types it (it used to crash with a traceback)
    proc = start_node(settings.home, log, CIFTA_NODE_LOG_LEVEL="debug")
    try:
        line = await wait_for_line(log, "hub_connection_failed", timeout=10)
        assert wrong in line and '"level": "warning"' in line
    finally:
        stop(proc)
    assert "Traceback" not in log.read_text()


async def test_a_second_node_on_the_same_home_refuses_to_run(hub: Hub, tmp_path: Path) -> None:
    settings = hub.node_settings("MEX", tmp_path)
    settings.save()
    first = start_node(settings.home, tmp_path / "first.log")
    try:
        await wait_for_line(tmp_path / "first.log", "node_started")
        second = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "node", "run", "--home",
             str(settings.home)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 2
        assert second.stderr.strip() == (
            f"error: a node is already running on {settings.home} (pid {first.pid})"
        )
    finally:
        stop(first)
    # the lock goes with the process: the home can be run again at once
    again = start_node(settings.home, tmp_path / "again.log")
    try:
        await wait_for_line(tmp_path / "again.log", "node_started")
    finally:
        stop(again)


def test_an_unknown_log_level_is_one_line_naming_what_was_typed(
    hub_home: Hub, tmp_path: Path
) -> None:
    settings = hub_home.node_settings("MEX", tmp_path)
    settings.save()
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "node", "run", "--home", str(settings.home)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "CIFTA_NODE_LOG_LEVEL": "verbose"},
    )  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "'verbose'" in line and "debug, info, warning, error, critical" in line


def test_log_levels_are_taken_in_any_case(tmp_path: Path) -> None:
    for typed in ("debug", "Info", "WARNING"):
        s = NodeSettings(party="MEX", home=tmp_path, log_level=typed)
        assert s.log_level == typed.upper()


async def test_an_idle_node_says_when_the_hub_goes_away_and_comes_back(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_node(hub, "MEX", tmp_path) as mex:
        capsys.readouterr()
        hub.kill()
        await eventually(lambda: not mex.connected.is_set(), what="the disconnection noticed")
        hub.restart_on_same_port()
        await eventually(lambda: mex.connected.is_set(), what="reconnected")
        err = capsys.readouterr().err
    # one JSON line per event, naming the hub (whatever an earlier test left configured: the
    # suite's configuration applies to every logger, however it was first used)
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    for name in ("hub_disconnected", "hub_reconnected"):
        assert any(e["event"] == name and e.get("hub") == hub.url for e in events), err


async def test_the_outbox_waits_for_the_connection_instead_of_failing_publishes(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_node(hub, "MEX", tmp_path) as mex:
        mex.outbox.stop()
        queued = [send_routes_report(mex, ["USA"]).msg_id for _ in range(20)]
    capsys.readouterr()
    async with running_node(hub, "MEX", tmp_path) as mex:  # starts with 20 queued
        await eventually(
            lambda: all(s.state != "pending" for m in queued
                        for s in mex.store.recipient_statuses(m)),
            what="the queued messages published",
        )  # fmt: skip
    assert "publish_failed" not in capsys.readouterr().err


async def test_a_failing_store_raises_no_false_alarm_of_a_hijacked_message_id(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Observation 5: while the store could not record PubAcks, the outbox published the same
    envelopes again and logged the alarm meant for a squatted message id, hundreds of times."""
    async with running_node(hub, "MEX", tmp_path) as mex:
        mark_sent = mex.store.mark_sent
        failures = []

        def failing_once(acks, now, *rest):  # type: ignore[no-untyped-def]
            if not failures:
                failures.append(1)
                raise sqlite3.OperationalError("disk I/O error")
            return mark_sent(acks, now, *rest)

        mex.store.mark_sent = failing_once  # type: ignore[method-assign]
        sent = send_routes_report(mex, ["USA"])
        await eventually(
            lambda: mex.store.recipient_statuses(sent.msg_id)[0].state == "sent",
            what="recorded as sent at last",
        )
        await asyncio.sleep(0)
    err = capsys.readouterr().err
    assert failures and "publish_deduplicated_on_first_attempt" not in err

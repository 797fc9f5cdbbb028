"""The secretariat's hub commands against a real nats-server: where the store is, what a failed
start says, what `hub status` shows of messages a node never acknowledged."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from services.cli.main import main
from services.core import subjects
from services.hub.home import HubHome
from tests.support.hub import Hub, eventually

PullSubscription = JetStreamContext.PullSubscription


def cifta(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def hub_cli(
    capsys: pytest.CaptureFixture[str], home: HubHome | Path, *argv: str
) -> tuple[int, str, str]:
    root = home.root if isinstance(home, HubHome) else home
    return cifta(capsys, "hub", "--home", str(root), *argv)


async def hub_cli_async(
    capsys: pytest.CaptureFixture[str], home: HubHome, *argv: str
) -> tuple[int, str, str]:
    """``hub_cli`` from a test's event loop: the command runs its own, as from a shell."""
    return await asyncio.to_thread(hub_cli, capsys, home, *argv)


def one_line_error(err: str) -> str:
    """The single line a refused command prints: never a traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


async def publish(hub: Hub, sender: str, recipient: str, count: int) -> None:
    nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(sender)))
    try:
        for i in range(count):
            msg_id = f"{sender}-{recipient}-{i}"
            subject = subjects.inbox_subject(recipient, sender, msg_id)
            await nc.jetstream().publish(subject, b"sealed", headers={"Nats-Msg-Id": msg_id})
    finally:
        await nc.close()


async def test_nats_server_started_from_another_directory_uses_the_configured_store(
    hub_home: Hub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = Path(hub_home.home.root.relative_to(tmp_path))  # `--home hub`, as typed
    code, _, err = hub_cli(capsys, relative, "render-config", "--port", "-1")
    assert code == 0, err
    elsewhere = tmp_path / "service-manager"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where a service manager starts nats-server
    hub_home.url = hub_home.home.start()
    await hub_home.provision()
    await publish(hub_home, "MEX", "USA", 2)
    hub_home.stop()
    assert not (elsewhere / "jetstream").exists()
    assert list(hub_home.home.store_dir.rglob("INBOX_USA"))  # the configured store holds it

    monkeypatch.chdir(tmp_path / "hub")  # and once more, from yet another directory
    hub_home.url = hub_home.home.start()
    assert (await hub_home.status("USA")).stored == 2


def test_hub_status_on_an_empty_store_says_what_to_do(
    hub_home: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = hub_cli(capsys, hub_home.home, "status")
    line = one_line_error(err)
    assert code == 2 and "the hub has not been started" in line
    hub_home.start()  # a server whose store holds nothing: never provisioned, or another store
    code, _, err = hub_cli(capsys, hub_home.home, "status")
    line = one_line_error(err)
    assert code == 2
    assert line == (
        f"error: MEX has no inbox, quarantine or undelivered record on the hub at {hub_home.url}: "
        "run `cifta hub provision`, or check that nats-server runs on this hub home's nats.conf "
        "(another store would be empty)"
    )
    hub_home.stop()
    code, _, err = hub_cli(capsys, hub_home.home, "status", "--url", hub_home.url)
    assert code == 2 and f"cannot reach the hub at {hub_home.url}" in one_line_error(err)


def test_hub_start_reports_nats_servers_own_fatal_line(
    hub_home: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = hub_cli(capsys, hub_home.home, "render-config", "--port", "-1")
    assert code == 0, err
    # What the configuration of observation 9 did: accounts reserving more memory than the server
    # has. Rendering refuses it now, so the file is changed by hand, as a person might.
    header, body = hub_home.home.config_path.read_text().split("\n{", 1)
    config = json.loads("{" + body)
    config["jetstream"]["max_memory_store"] = 256 * 1024**2
    for state in ("MEX", "USA", "COL"):
        config["accounts"][state]["jetstream"]["max_mem"] = 128 * 1024**2
    hub_home.home.config_path.write_text(header + "\n" + json.dumps(config))
    code, out, err = hub_cli(capsys, hub_home.home, "start")
    line = one_line_error(err)
    assert code == 2 and out == ""
    assert line.startswith("error: nats-server refused to start: Can't start JetStream: ")
    assert "insufficient memory resources available (10028)" in line
    assert hub_home.home.running_pid() is None


def test_render_config_refuses_plaintext_beyond_loopback_unless_told(
    hub_home: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = hub_cli(capsys, hub_home.home, "render-config", "--host", "0.0.0.0")
    assert code == 2 and "--host 0.0.0.0" in one_line_error(err) and "--insecure-plaintext" in err
    assert not hub_home.home.config_path.exists()
    code, _, err = hub_cli(
        capsys, hub_home.home, "render-config", "--host", "0.0.0.0", "--insecure-plaintext"
    )
    assert code == 0, err
    assert json.loads(hub_home.home.config_path.read_text().split("\n", 2)[2])["host"] == "0.0.0.0"


def test_render_config_refuses_overcommitted_limits_naming_the_numbers(
    hub_home: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["render-config", "--jetstream-disk", "2GiB", "--state-disk", "100MiB"]
    code, _, err = hub_cli(capsys, hub_home.home, *args)
    assert code == 2
    assert one_line_error(err) == (
        "error: 35 states x 100 MiB (--state-disk), and as much again for the audit stream's "
        "copy, and 64 MiB for the lookup filters, is 6.9 GiB: more than the 2 GiB given to "
        "JetStream (--jetstream-disk)"
    )
    assert not hub_home.home.config_path.exists()
    code, _, err = hub_cli(capsys, hub_home.home, "render-config", "--jetstream-disk", "lots")
    assert code == 2 and "'lots' is not a size" in one_line_error(err)
    code, out, err = hub_cli(capsys, hub_home.home, "render-config", "--jetstream-disk", "8GiB")
    assert code == 0, err
    assert "8 GiB of disk" in out and "each state 115.2 MiB (planned for 35 states)" in out
    # a later rendering keeps what was given
    code, out, err = hub_cli(capsys, hub_home.home, "render-config", "--planned-states", "40")
    assert code == 0 and "8 GiB of disk" in out and "planned for 40 states" in out


async def fail_every_delivery(
    sub: JetStreamContext.PullSubscription, held: int, acked: int
) -> None:
    """One pull of a failing node: naks what it gets, except that it acknowledges stream
    sequence ``acked`` and holds ``held`` once it has been delivered twice."""
    try:
        msgs = await sub.fetch(10, timeout=0.5)
    except TimeoutError:  # nothing offered in this pull
        return
    for msg in msgs:
        seq = msg.metadata.sequence.stream
        if seq == acked:
            await msg.ack()
        elif not (seq == held and msg.metadata.num_delivered >= 2):
            await msg.nak()


async def test_hub_status_shows_redeliveries_and_messages_past_their_last_attempt(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await hub_cli_async(
        capsys, hub.home, "provision", "--max-deliver", "3", "--url", hub.url
    )
    assert code == 0, err
    await publish(hub, "MEX", "USA", 6)
    node = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("USA")))
    try:
        sub = await node.jetstream().pull_subscribe_bind(subjects.NODE_CONSUMER, "INBOX_USA")

        async def given_up_on_four() -> bool:
            await fail_every_delivery(sub, held=2, acked=1)
            return (await hub.status("USA")).past_last_attempt == 4

        await eventually(given_up_on_four, timeout=20, what="four messages past max_deliver")
    finally:
        await node.close()
    status = await hub.status("USA")
    # sequence 1 acknowledged; 2 delivered twice and held; 3 to 6 given up on after 3 attempts
    assert (status.stored, status.pending, status.unacknowledged) == (6, 0, 1)
    assert status.lag == 1  # what the consumer alone would show: it has forgotten 3 to 6
    assert status.redelivered == 5  # 2 and, while the inbox holds them, 3 to 6
    assert status.last_given_up is not None

    code, out, err = await hub_cli_async(capsys, hub.home, "status", "--json")
    assert code == 0, err
    usa = next(s for s in json.loads(out) if s["state"] == "USA")
    assert (usa["past_last_attempt"], usa["redelivered"], usa["unacknowledged"]) == (4, 5, 1)
    mex = next(s for s in json.loads(out) if s["state"] == "MEX")
    assert (mex["past_last_attempt"], mex["redelivered"]) == (0, 0)
    code, out, err = await hub_cli_async(capsys, hub.home, "status")
    assert code == 0, err
    assert "past last attempt" in out
    assert (
        "USA: 4 messages past their last delivery attempt, still in its inbox: USA's node "
        "replays them with `cifta node recover`"
    ) in out

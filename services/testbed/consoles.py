"""A real network with officer consoles: a hub, a node per state (each its own ``cifta node run``
process), demo officers, and each node's console served on a loopback port.

Used by the browser tests, the screenshots script and ``make console``; nothing here is a mock:
the consoles seal and send through the nodes and the hub as in production.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import uvicorn
from fastapi import FastAPI

from services.console.officer.app import build_officer_console
from services.node.accounts import open_accounts
from services.testbed.hub import Hub, build_hub

#: Debian's Chromium and its flags, for the browser tests and the screenshots (the Playwright
#: wheel ships no browser, and none can be fetched here).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass(frozen=True)
class DemoOfficer:
    """A demo account, with its TOTP secret so a test (or a person's authenticator) can sign in."""

    login: str
    name: str
    position: str
    agency: str
    language: str
    role: str
    password: str
    secret: str = field(default_factory=pyotp.random_base32)

    def code(self, at: datetime | None = None) -> str:
        """The TOTP code at ``at`` (now)."""
        return pyotp.TOTP(self.secret).at(at or datetime.now(UTC))

    def as_json(self) -> dict[str, str]:
        return {"login": self.login, "password": self.password, "totp_secret": self.secret,
                "role": self.role, "language": self.language}  # fmt: skip


class ConsoleServer:
    """One console served by uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="off", server_header=False)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 15.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:  # set by uvicorn once its socket listens
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the console did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class ConsoleNetwork:
    hub: Hub
    homes: dict[str, Path]
    urls: dict[str, str]
    officers: dict[str, list[DemoOfficer]]
    secretariat_url: str = ""
    #: each node's and the hub monitor's Prometheus endpoint (with ``metrics``)
    metrics: dict[str, str] = field(default_factory=dict)

    def add_officer(self, state: str, officer: DemoOfficer) -> DemoOfficer:
        """Give ``state``'s console one more officer (second factor already enrolled)."""
        accounts, database = open_accounts(self.homes[state] / "store.sqlite")
        try:
            accounts.add(
                login=officer.login, name=officer.name, position=officer.position,
                agency=officer.agency, language=officer.language, role=officer.role,
                password=officer.password, now=datetime.now(UTC), totp_secret=officer.secret,
            )  # fmt: skip
        finally:
            database.close()
        self.officers.setdefault(state, []).append(officer)
        return officer

    def describe(self) -> dict[str, object]:
        """What ``var/console/urls.json`` holds: each console's URL and its demo officers."""
        described: dict[str, object] = {
            "consoles": self.urls,
            "officers": {s: [o.as_json() for o in os] for s, os in self.officers.items()},
        }
        if self.secretariat_url:  # the secretariat's console; its operators under "SEC"
            described["secretariat"] = self.secretariat_url
        if self.metrics:
            described["metrics"] = self.metrics
        return described


def _free_port() -> int:
    """A loopback port free now (the demo's metrics: a race with another program is harmless)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _process(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 (our own CLI, arguments we built)
            [sys.executable, "-m", "services.cli.main", *args],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _metrics_args(network: ConsoleNetwork, name: str, metrics: bool) -> list[str]:
    if not metrics:
        return []
    address = f"127.0.0.1:{_free_port()}"
    network.metrics[name] = f"http://{address}/metrics"
    return ["--metrics", address]


@contextmanager
def console_network(
    root: Path,
    states: tuple[str, ...] = ("MEX", "BRA"),
    *,
    secretariat: bool = False,
    metrics: bool = False,
) -> Iterator[ConsoleNetwork]:
    """Start the network and its consoles (and the secretariat's, with ``secretariat``, its
    demo supervisor under ``officers["SEC"]``; with ``metrics``, each node's and the hub
    monitor's Prometheus endpoint on loopback); stop everything on exit, whatever happened."""
    with ExitStack() as stack:
        hub = build_hub(root, states)
        hub.start()
        stack.callback(hub.stop)
        _in_own_loop(hub.provision)
        network = ConsoleNetwork(hub, {}, {}, {})
        for state in states:
            settings = hub.node_settings(state, root, log_json=True)
            settings.save()
            network.homes[state] = settings.home
            run = ["node", "run", "--home", str(settings.home)]
            node = _process(run + _metrics_args(network, state, metrics), root / f"{state}.log")
            stack.callback(_stop, node)
            server = ConsoleServer(build_officer_console(settings.home))
            network.urls[state] = server.start()
            stack.callback(server.stop)
        if secretariat:
            _serve_secretariat(network, stack)
        if metrics:  # the hub's own monitoring, read through the system account
            monitor = ["hub", "--home", str(hub.home.root), "monitor"]
            watcher = _process(
                monitor + _metrics_args(network, "hub", True), root / "hub-monitor.log"
            )
            stack.callback(_stop, watcher)
        yield network


def _serve_secretariat(network: ConsoleNetwork, stack: ExitStack) -> None:
    from services.console.secretariat.app import create_secretariat_app, secretariat_accounts

    operator = DemoOfficer(
        login="secretaria", name="Lucía Romero", position="Oficial de enlace CIFTA",
        agency="Secretaría Técnica (OEA)", language="es", role="supervisor",
        password="secretaria-demo-" + pyotp.random_base32()[:8].lower(),
    )  # fmt: skip
    secretariat_accounts(network.hub.home).add(
        login=operator.login, name=operator.name, position=operator.position,
        agency=operator.agency, language=operator.language, role=operator.role,
        password=operator.password, now=datetime.now(UTC), totp_secret=operator.secret,
    )  # fmt: skip
    network.officers["SEC"] = [operator]
    server = ConsoleServer(create_secretariat_app(network.hub.home))
    network.secretariat_url = server.start()
    stack.callback(server.stop)


def _in_own_loop(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``work`` to completion on an event loop of its own thread: a caller such as
    Playwright's synchronous API already runs a loop in this one."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_urls(network: ConsoleNetwork, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(network.describe(), indent=2, ensure_ascii=False) + "\n")
    path.chmod(0o600)  # demo passwords and TOTP secrets

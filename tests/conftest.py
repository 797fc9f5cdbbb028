"""Fixtures shared by the integration, security and fault tests: a real hub per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services import i18n
from services.cli import messages, usage
from services.core.logs import configure
from services.testbed import ports
from services.testbed.cluster import ClusterHub, build_cluster_hub
from tests.support.hub import Hub, build_hub


def worker_ports() -> None:
    """This worker's own range of ports for the servers the tests restart on their ports
    (services/testbed/ports.py); run alone, the first worker's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    span = ports.worker_range(int(worker.removeprefix("gw")))
    if span is None:  # the kernel picks: not a range inherited from the process that started this
        os.environ.pop(ports.ENV, None)
    else:
        os.environ[ports.ENV] = span


worker_ports()


def suite_logging() -> None:
    """The suite's logging: JSON lines, warnings and worse."""
    configure(json=True, level="WARNING")


suite_logging()


@pytest.fixture(autouse=True)
def process_defaults() -> Iterator[None]:
    """What a test that runs `cifta` in-process leaves set for the whole process, undone after
    each test: the command's language, its JSON-errors switch and logging for a terminal. The
    next test in the same worker would otherwise inherit them, and which test comes next depends
    on how the modules were shared among the workers."""
    yield
    messages.use(i18n.DEFAULT_LANGUAGE)
    usage.Parser.json_errors = False
    suite_logging()


@pytest.fixture(autouse=True)
def officer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every officer's action is recorded under a name: the tests' officer (CIFTA_OFFICER),
    unless a test names another with --officer or removes it."""
    monkeypatch.setenv("CIFTA_OFFICER", "Ana Ruiz|Liaison officer|National point of contact")


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands speak the locale's language: the tests read English whatever the machine's
    locale is (a test of another language sets LANG or --lang itself)."""
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)


@pytest.fixture
def hub_home(tmp_path: Path) -> Iterator[Hub]:
    """A hub home for MEX, USA and COL, configured but not started."""
    hub = build_hub(tmp_path)
    yield hub
    hub.stop()


@pytest.fixture
async def hub(hub_home: Hub) -> AsyncIterator[Hub]:
    """A running, provisioned hub for MEX, USA and COL on a free loopback port."""
    hub_home.start()
    await hub_home.provision()
    yield hub_home


@pytest.fixture
def cluster_home(tmp_path: Path) -> Iterator[ClusterHub]:
    """A hub home for MEX, USA and COL to run as a three-server cluster, not started."""
    hub = build_cluster_hub(tmp_path)
    yield hub
    hub.stop()


@pytest.fixture
async def cluster_hub(cluster_home: ClusterHub) -> AsyncIterator[ClusterHub]:
    """A running three-server hub cluster, every stream provisioned R3, on free loopback ports."""
    cluster_home.start()
    cluster_home.wait_healthy()
    await cluster_home.provision()
    yield cluster_home


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests on pytest-playwright's synchronous API run last: its session-wide
    Playwright keeps an event loop running in the main thread until the session ends, and every
    asyncio test after it would fail with "Cannot run the event loop while another loop is
    running". The order among the others is kept."""
    sync_browser = [i for i in items if "playwright" in getattr(i, "fixturenames", ())]
    others = [i for i in items if "playwright" not in getattr(i, "fixturenames", ())]
    items[:] = others + sync_browser

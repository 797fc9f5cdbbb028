"""Fixtures shared by the integration, security and fault tests: a real hub per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.core.logs import configure
from tests.support.hub import Hub, build_hub

configure(json=True, level="WARNING")


@pytest.fixture(autouse=True)
def officer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every officer's action is recorded under a name: the tests' officer (CIFTA_OFFICER),
    unless a test names another with --officer or removes it."""
    monkeypatch.setenv("CIFTA_OFFICER", "Ana Ruiz|Liaison officer|National point of contact")


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

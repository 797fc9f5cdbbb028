"""Browser tests: Debian's Chromium (the Playwright wheel ships no browser and cannot fetch one
here) driven by pytest-playwright against a real network with officer consoles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.testbed.consoles import ConsoleNetwork, console_network

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # `make test` installs chromium when it is missing: a missing browser fails, never skips
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True,
            "args": CHROMIUM_FLAGS}  # fmt: skip


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleNetwork]:
    """MEX and BRA on a real hub, each node its own process, each with its console."""
    with console_network(tmp_path_factory.mktemp("consoles"), ("MEX", "BRA")) as network:
        yield network

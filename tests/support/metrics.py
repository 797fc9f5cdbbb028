"""Serving and scraping the services' metrics over real HTTP, for the tests."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from services.core.metrics import HealthReport, MetricsServer
from services.hub.config import SYSTEM_ACCOUNT
from services.hub.monitor import HubMonitor
from tests.support.hub import Hub
from tests.support.promql import Scrapes


@asynccontextmanager
async def served(
    registry: CollectorRegistry, ready: Callable[[], HealthReport]
) -> AsyncIterator[MetricsServer]:
    """A metrics server on a free loopback port, stopped after."""
    server = MetricsServer(registry, ready=ready, port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _get(url: str, method: str) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def http(url: str, method: str = "GET") -> tuple[int, str]:
    """(status, body) of a request; in a thread, since the server runs in this loop."""
    return await asyncio.to_thread(_get, url, method)


async def scrape(*servers: MetricsServer) -> str:
    texts = []
    for server in servers:
        status, body = await http(server.url + "/metrics")
        assert status == 200, f"{server.url}/metrics answered {status}"
        texts.append(body)
    return "".join(texts)


async def take(scrapes: Scrapes, *servers: MetricsServer, at: float | None = None) -> Scrapes:
    """Scrape ``servers`` now and add it to ``scrapes`` (at ``at``, or the wall clock)."""
    scrapes.add(time.time() if at is None else at, await scrape(*servers))
    return scrapes


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value from exposition text (the sum if several match)."""
    total, found = 0.0, False
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total, found = total + s.value, True
    assert found, f"no sample {name}{labels}"
    return total


def declared_names(text: str) -> set[str]:
    """Every sample name the exposition declares (a family may hold no sample yet)."""
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",), "untyped": ("",),
                "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created", "")}  # fmt: skip
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
        names |= {s.name for s in family.samples}
    return names


def hub_monitor(hub: Hub, clock: Callable[[], float] = time.time) -> HubMonitor:
    return HubMonitor(hub.url, hub.home.user_seed(SYSTEM_ACCOUNT, "system"), clock=clock)

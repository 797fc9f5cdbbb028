"""A real hub for tests and benchmarks: nats-server from the wheel, on a free loopback port, in a
temporary directory.

Built with the same code as ``cifta hub init / enrol / render-config / start / provision``, so the
tests exercise the secretariat's tooling as well as the broker's permissions.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pycountry

from services.cli.audit_cmd import audit_public
from services.core.directory import cache_document, registration_request
from services.core.keys import NodeKeys
from services.directory.service import DirectoryService
from services.hub import provision
from services.hub.config import DIRECTORY_USER, SECRETARIAT_ACCOUNT, Listen
from services.hub.credentials import PROVISION_USER
from services.hub.home import HubHome
from services.hub.provision import StateStatus
from services.node.auditing import AuditKey
from services.node.settings import NodeSettings
from services.testbed import ports

STATES = ("MEX", "USA", "COL")
APPROVED_AGO = timedelta(hours=1)
NAMES = {"MEX": "Mexico", "USA": "United States of America", "COL": "Colombia", "BRA": "Brazil"}
OFFICIAL = {
    "MEX": ("Estados Unidos Mexicanos", "United Mexican States", "États-Unis du Mexique",
            "Estados Unidos Mexicanos"),
    "USA": ("Estados Unidos de América", "United States of America", "États-Unis d'Amérique",
            "Estados Unidos da América"),
    "COL": ("República de Colombia", "Republic of Colombia", "République de Colombie",
            "República da Colômbia"),
    "BRA": ("República Federativa del Brasil", "Federative Republic of Brazil",
            "République fédérative du Brésil", "República Federativa do Brasil"),
    "PAN": ("República de Panamá", "Republic of Panama", "République du Panama",
            "República do Panamá"),
    "GTM": ("República de Guatemala", "Republic of Guatemala", "République du Guatemala",
            "República da Guatemala"),
}  # fmt: skip


#: The 35 member states of the Organization of American States, by ISO 3166-1 alpha-3 code: the
#: membership the hub is planned for.
OAS_MEMBER_STATES = (
    "ATG", "ARG", "BHS", "BRB", "BLZ", "BOL", "BRA", "CAN", "CHL", "COL", "CRI", "CUB", "DMA",
    "DOM", "ECU", "SLV", "GRD", "GTM", "GUY", "HTI", "HND", "JAM", "MEX", "NIC", "PAN", "PRY",
    "PER", "KNA", "LCA", "VCT", "SUR", "TTO", "USA", "URY", "VEN",
)  # fmt: skip


def state_name(state: str) -> str:
    """The state's short name: the tests' own, else ISO 3166-1's."""
    country = pycountry.countries.get(alpha_3=state)
    return NAMES.get(state) or (country.name if country is not None else state)


def details(state: str) -> dict[str, object]:
    """What a state's registration says of it: names, point of contact, one liaison contact."""
    es, en, fr, pt = OFFICIAL.get(state) or (state_name(state),) * 4
    return {
        "names": {"es": es, "en": en, "fr": fr, "pt": pt},
        "point_of_contact": f"National point of contact of {en}",
        "contacts": [
            {
                "role": "liaison",
                "name": f"Liaison officer {state}",
                "position": "CIFTA liaison",
                "email": f"cifta@{state.lower()}.example.org",
                "languages": ["es", "en"],
            }
        ],
    }


@dataclass
class Hub:
    home: HubHome
    keys: dict[str, NodeKeys]
    directory: DirectoryService
    url: str = ""
    port: int = 0
    policy: provision.Policy = field(default_factory=provision.Policy)
    #: The leaf node listener (-1: a free port, kept across restarts); None: none.
    leaf_port: int | None = None
    #: The leaf listener's address when not loopback: a private veth to a network namespace
    #: (services/testbed/netns.py), plaintext as behind a TLS-terminating tunnel.
    leaf_host: str | None = None
    #: JetStream's fsync interval as rendered ("always" on one server: docs/operations.md 1.7)
    sync_interval: str = "always"

    @property
    def pid(self) -> int:
        return int(self.home.pid_file.read_text())

    def start(self, port: int = -1) -> str:
        """Render and start the hub on ``port`` (-1: a port of the test bed's range, else the
        server's choice), and the leaf listener on ``leaf_port`` likewise; return its URL."""
        if port == -1:
            port = ports.pick()
        if self.leaf_port == -1:
            self.leaf_port = ports.pick(self.leaf_host or "127.0.0.1")
        self.home.render_config(Listen(
            port=port, leaf_port=self.leaf_port, leaf_host=self.leaf_host,
            insecure_plaintext=self.leaf_host is not None, sync_interval=self.sync_interval,
        ))  # fmt: skip
        self.url = self.home.start()
        self.port = int(self.url.rsplit(":", 1)[1])
        if self.leaf_port is not None:  # the port it picked, for a restart on the same ports
            self.leaf_port = int(self.home.leaf_url().rsplit(":", 1)[1])
        return self.url

    def restart_on_same_port(self) -> str:
        return self.start(self.port)

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye."""
        pid = self.pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.home.running_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # waiting for the kernel to reap the process
        self.home.pid_file.unlink(missing_ok=True)

    def stop(self) -> None:
        self.home.stop()

    async def provision(self, *states: str) -> None:
        """Streams, consumer and directory bucket of ``states`` (all), and the directory in them."""
        await self.home.provision(self.url, states or tuple(self.keys), self.policy)
        await self.publish_directory()

    def audit_key(self) -> AuditKey:
        return audit_public(self.home)

    async def publish_directory(self) -> None:
        seed = self.home.user_seed(SECRETARIAT_ACCOUNT, DIRECTORY_USER)
        await self.directory.publish(self.url, seed, self.home.registry().codes())

    def register(self, state: str, keys: NodeKeys | None = None) -> None:
        """Register ``state`` in the directory (approved) and serve it on the hub."""
        self.keys[state] = keys or NodeKeys.generate(state)
        request = registration_request(self.keys[state], details(state), datetime.now(UTC))
        self.directory.register(request)
        self.home.add_state(state, state_name(state))

    async def status(self, state: str) -> StateStatus:
        return await provision.state_status(
            self.url, self.home.user_seed(state, PROVISION_USER), state
        )

    def node_settings(self, party: str, root: Path, **overrides: object) -> NodeSettings:
        """A node home for ``party``: its keys file, the directory, and its hub credentials."""
        home = root / party
        home.mkdir(parents=True, exist_ok=True)
        keys_path = home / "keys.json"
        if not keys_path.exists():
            self.keys[party].save(keys_path)
        self.directory.root.save(home / "root.json")
        self.audit_key().save(home / "audit.json")
        if not (home / "directory.json").exists():  # a test may have given it its own
            (home / "directory.json").write_text(
                cache_document(self.directory.all_signed(), self.directory.root)
            )
        values: dict[str, object] = {
            "party": party,
            "home": home,
            "hub_url": self.url,
            "credentials": self.home.node_seed(party),
            "retry_initial_s": 0.05,
            "retry_max_s": 0.5,
            "outbox_poll_s": 0.05,
            "fetch_timeout_s": 0.5,
            "publish_timeout_s": 2.0,
            "attachment_missing_grace_s": 0.5,
            "max_deliver": self.policy.max_deliver,
            "log_json": True,
        }
        values.update(overrides)
        return NodeSettings(**values)  # type: ignore[arg-type]


def build_hub(root: Path, states: tuple[str, ...] = STATES) -> Hub:
    """Init a hub home for ``states``, each with freshly generated keys, enrolled."""
    registry = root / "registry.json"
    registry.write_text(
        json.dumps(
            {
                "format": "cifta-registry-v1",
                "version": 1,
                "secretariat": "SEC",
                "states": [{"code": s, "name": state_name(s)} for s in states],
            }
        )
    )
    home = HubHome(root / "hub")
    home.init(registry)
    # The directory's clock runs an hour behind: every key was approved an hour ago, so a test
    # can date an envelope in the recent past.
    directory = DirectoryService.open(
        home.directory_home, home.root_key_file, clock=lambda: datetime.now(UTC) - APPROVED_AGO
    )
    hub = Hub(home, {}, directory)
    for state in states:
        hub.register(state)
    return hub


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float = 20.0, what: str = ""
) -> None:
    """Wait until ``condition()`` holds, polling it; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.02)  # poll interval of a condition with a deadline

"""The hub home: the secretariat's working directory for one hub, and the operations on it.

```
<home>/registry.json        the states served and their public keys (versioned)
<home>/keys/SEC.key.json    the secretariat's own party keys (0600)
<home>/nkeys/<ACCOUNT>/<user>.nk   NATS user seeds (0600)
<home>/directory.json       the public keys of every enrolled party, as nodes read them
<home>/nats.conf            rendered from the registry
<home>/jetstream/           the JetStream store (back it up: docs/operations.md)
<home>/run/                 pid, ports file, log
```
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.directory import Directory, DirectoryEntry
from services.core.keys import NodeKeys
from services.hub import config, credentials, server
from services.hub.credentials import NODE_USER, PROVISION_USER
from services.hub.registry import Registry, StateEntry


class HubError(Exception):
    """An operation on the hub home could not be done; the message says why."""


@dataclass(frozen=True)
class HubHome:
    root: Path

    @property
    def registry_path(self) -> Path:
        return self.root / "registry.json"

    @property
    def nkeys_dir(self) -> Path:
        return self.root / "nkeys"

    @property
    def secretariat_keys(self) -> Path:
        return self.root / "keys" / "SEC.key.json"

    @property
    def directory_path(self) -> Path:
        return self.root / "directory.json"

    @property
    def config_path(self) -> Path:
        return self.root / "nats.conf"

    @property
    def store_dir(self) -> Path:
        return self.root / "jetstream"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "nats-server.pid"

    @property
    def url_file(self) -> Path:
        return self.run_dir / "url"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "nats-server.log"

    # -- setup ----------------------------------------------------------------------------------

    def init(self, registry_source: Path) -> Registry:
        """Create the home: registry, secretariat keys, every account's NKey users. Idempotent."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.registry_path.exists():
            shutil.copyfile(registry_source, self.registry_path)
        registry = self.registry()
        if not self.secretariat_keys.exists():
            NodeKeys.generate(registry.secretariat).save(self.secretariat_keys)
        self._ensure_users(registry)
        self.write_directory()
        return registry

    def registry(self) -> Registry:
        if not self.registry_path.exists():
            raise HubError(f"no hub home at {self.root}: run `cifta hub init` first")
        return Registry.load(self.registry_path)

    def _ensure_users(self, registry: Registry) -> None:
        for state in registry.codes():
            credentials.ensure_user(self.nkeys_dir, state, NODE_USER)
            credentials.ensure_user(self.nkeys_dir, state, PROVISION_USER)
        for account, user in config.SECRETARIAT_USERS.items():
            credentials.ensure_user(self.nkeys_dir, account, user)

    def enrol(self, bundle: dict[str, Any], name: str | None = None) -> StateEntry:
        """Record a state's public keys (adding the state if new) and create its NATS users."""
        code = str(bundle.get("party", ""))
        registry = self.registry()
        existing = registry.state(code)
        if existing is None and not name:
            raise HubError(f"{code} is not in the registry; give its name to add it")
        DirectoryEntry.from_bundle(bundle)  # refuse keys whose ids do not match
        entry = StateEntry(code=code, name=name or existing.name, keys=bundle)  # type: ignore[union-attr]
        if entry == existing:  # enrolling the same keys again changes nothing
            self._ensure_users(registry)
            return entry
        registry = registry.with_state(entry)
        registry.save(self.registry_path)
        self._ensure_users(registry)
        self.write_directory()
        return entry

    def directory(self) -> Directory:
        """The public keys of the secretariat and of every enrolled state."""
        registry = self.registry()
        sec = NodeKeys.load(self.secretariat_keys).public_bundle()
        bundles = [sec] + [s.keys for s in registry.states if s.keys is not None]
        return Directory.from_bundles(bundles, version=registry.version)

    def write_directory(self) -> Path:
        self.directory().save(self.directory_path)
        return self.directory_path

    def node_seed(self, state: str) -> Path:
        return credentials.seed_path(self.nkeys_dir, state, NODE_USER)

    def user_seed(self, account: str, user: str) -> Path:
        return credentials.seed_path(self.nkeys_dir, account, user)

    # -- configuration and server ---------------------------------------------------------------

    def render_config(self, listen: config.Listen) -> Path:
        registry = self.registry()
        self._ensure_users(registry)
        users = {}
        for path in sorted(self.nkeys_dir.glob("*/*.nk")):
            key = credentials.load_user(self.nkeys_dir, path.parent.name, path.stem)
            users[(key.account, key.user)] = key.public_key
        text = config.render_config(registry, users, store_dir=self.store_dir, listen=listen)
        self.config_path.write_text(text)
        return self.config_path

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if server.is_running(pid) else None

    def start(self) -> str:
        """Start nats-server on the rendered config; return its client URL."""
        if not self.config_path.exists():
            raise HubError("no nats.conf: run `cifta hub render-config` first")
        if (pid := self.running_pid()) is not None:
            raise HubError(f"the hub is already running (pid {pid}) at {self.url()}")
        for stale in self.run_dir.glob("nats-server_*.ports"):
            stale.unlink()
        running = server.start(self.config_path, run_dir=self.run_dir, log_file=self.log_file)
        self.pid_file.write_text(f"{running.pid}\n")
        self.url_file.write_text(running.client_url + "\n")
        return running.client_url

    def url(self) -> str:
        try:
            return self.url_file.read_text().strip()
        except OSError:
            raise HubError("the hub has not been started") from None

    def reload(self) -> None:
        """Apply the rendered config to the running server: no restart, connections kept.

        Twice, each time waiting for the server to confirm: with nats-server 2.15.1 a reload
        that adds an account resolves the new account's service imports against the existing
        accounts' exports as they were *before* the reload, so the new state's publishes find
        no inbox until a second reload (tests/integration/test_onboarding.py shows it).
        """
        pid = self.running_pid()
        if pid is None:
            raise HubError("the hub is not running")
        for _ in range(2):
            done = self._reloads_logged()
            server.reload(pid)
            deadline = time.monotonic() + 10
            while self._reloads_logged() == done:
                if time.monotonic() > deadline:
                    raise HubError(f"the server did not confirm the reload; see {self.log_file}")
                time.sleep(0.02)  # waiting for the server's own confirmation in its log

    def _reloads_logged(self) -> int:
        try:
            return self.log_file.read_text(errors="replace").count("Reloaded server configuration")
        except OSError:
            return 0

    def stop(self) -> bool:
        pid = self.running_pid()
        if pid is None:
            return False
        server.stop(pid)
        self.pid_file.unlink(missing_ok=True)
        return True


def load_bundle(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise HubError(f"{path} is not a public key bundle")
    return data

"""The hub home: the secretariat's working directory for one hub, and the operations on it.

```
<home>/registry.json        the states the hub serves (versioned)
<home>/keys/SEC.key.json    the secretariat's own party keys (0600)
<home>/keys/root.key.json   the directory's root signing key (0600; keep it offline if you can)
<home>/keys/audit.key.json  the audit log's checkpoint key (0600)
<home>/directory/entries/   the signed directory entries, one file per party
<home>/nkeys/<ACCOUNT>/<user>.nk   NATS user seeds (0600)
<home>/leaves.json          the states that run their own leaf node (services/hub/leaf.py)
<home>/nats.conf            rendered from the registry
<home>/jetstream/           the JetStream store (back it up: docs/operations.md)
<home>/run/                 pid, ports file, log, the settings of the last rendering
<home>/cluster.json         a three-server hub's members (services/hub/members.py), if it is one
<home>/cluster/<server>/    each member's nats.conf, JetStream store and run directory
```

The three key files are sealed like a node's (scrypt + AES-256-GCM, ``services/core/keys.py``)
under the passphrase in ``CIFTA_HUB_KEY_PASSPHRASE`` when it is set at ``init``; every command
that signs with one of them needs the same variable.

Every path the home hands to nats-server is absolute (the home itself is made absolute when it is
opened): a service manager starts nats-server from another working directory.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from services.core.connection import connect
from services.core.keys import KeyFileError, NodeKeys
from services.directory.service import DirectoryService
from services.hub import cluster as cl
from services.hub import config, credentials, lookup, members, provision, relay, server
from services.hub.credentials import LEAF_USER, NODE_USER, PROVISION_USER
from services.hub.registry import Registry, StateEntry
from services.hub.resources import Plan, Resources, default_resources, plan

#: The environment variable holding the passphrase the secretariat's key files are sealed under.
PASSPHRASE_ENV = "CIFTA_HUB_KEY_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)


class HubError(Exception):
    """An operation on the hub home could not be done; the message says why."""


@dataclass(frozen=True)
class HubHome:
    root: Path

    def __post_init__(self) -> None:
        # `--home var/hub` means the same home whatever directory a later command runs in
        object.__setattr__(self, "root", self.root.absolute())

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
    def root_key_file(self) -> Path:
        return self.root / "keys" / "root.key.json"

    @property
    def audit_key_file(self) -> Path:
        return self.root / "keys" / "audit.key.json"

    @property
    def audit_log_path(self) -> Path:
        return self.root / "audit" / "audit.sqlite"

    @property
    def directory_home(self) -> Path:
        return self.root / "directory"

    @property
    def listen_file(self) -> Path:
        return self.run_dir / "listen.json"

    @property
    def resources_file(self) -> Path:
        return self.run_dir / "resources.json"

    @property
    def config_path(self) -> Path:
        return self.root / "nats.conf"

    @property
    def store_dir(self) -> Path:
        return self.root / "jetstream"

    @property
    def cluster_file(self) -> Path:
        return self.root / "cluster.json"

    def cluster(self) -> cl.Cluster | None:
        """The hub's three servers, if it was rendered as a cluster; None for a single server."""
        return members.load_cluster(self.cluster_file)

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
        passphrase = self.key_passphrase
        if not self.secretariat_keys.exists():
            NodeKeys.generate(registry.secretariat).save(self.secretariat_keys, passphrase)
        if not self.audit_key_file.exists():  # signs the audit log's checkpoints
            NodeKeys.generate(registry.secretariat).save(self.audit_key_file, passphrase)
        if not self.root_key_file.exists():  # the directory's root of trust, made once
            DirectoryService.create_root_key(self.root_key_file, passphrase=passphrase)
        self._ensure_users(registry)
        return registry

    # -- the secretariat's keys -----------------------------------------------------------------

    @property
    def key_passphrase(self) -> bytes | None:
        """The passphrase of the key files, from ``CIFTA_HUB_KEY_PASSPHRASE`` (None if unset)."""
        value = os.environ.get(PASSPHRASE_ENV)
        return value.encode() if value else None

    def load_key(self, path: Path) -> NodeKeys:
        """One of the secretariat's key files, opened with the passphrase if it is sealed."""
        try:
            return NodeKeys.load(path, self.key_passphrase)
        except FileNotFoundError:
            raise HubError(f"no key file {path}: run `cifta hub init` first") from None
        except KeyFileError as exc:
            if self.key_passphrase is None and "passphrase" in str(exc):
                raise HubError(
                    f"{path.name} is sealed with a passphrase: set {PASSPHRASE_ENV} to it"
                ) from None
            raise HubError(f"{path.name}: {exc} ({PASSPHRASE_ENV})") from None

    def directory_service(self, **kw: Any) -> DirectoryService:
        """The directory, signing with the root key (opened with the passphrase)."""
        self.registry()  # fails clearly when there is no hub home
        root = self.load_key(self.root_key_file).signing.ed25519
        return DirectoryService(self.directory_home, root, **kw)

    def registry(self) -> Registry:
        if not self.registry_path.exists():
            raise HubError(f"no hub home at {self.root}: run `cifta hub init` first")
        return Registry.load(self.registry_path)

    def _ensure_users(self, registry: Registry) -> None:
        for state in registry.codes():
            credentials.ensure_user(self.nkeys_dir, state, NODE_USER)
            credentials.ensure_user(self.nkeys_dir, state, PROVISION_USER)
        for account, user in config.SECRETARIAT_USERS:
            credentials.ensure_user(self.nkeys_dir, account, user)
        for state in self.leaves():
            credentials.ensure_user(self.nkeys_dir, state, LEAF_USER)

    # -- states on a leaf (services/hub/leaf.py) -------------------------------------------------

    @property
    def leaves_file(self) -> Path:
        return self.root / "leaves.json"

    def leaves(self) -> list[str]:
        """The states that run their own leaf node, as the secretariat allowed them."""
        try:
            return sorted(json.loads(self.leaves_file.read_text()))
        except FileNotFoundError:
            return []

    def allow_leaf(self, state: str) -> Path:
        """Let ``state`` run a leaf node: its leaf user's seed (for its operator, like the node's),
        its relay and its senders' sources at the next rendering and provisioning."""
        if state not in self.registry().codes():
            raise HubError(f"{state} is not served by this hub: `cifta hub add-state` first")
        leaves = sorted({*self.leaves(), state})
        self.leaves_file.write_text(json.dumps(leaves) + "\n")
        return credentials.ensure_user(self.nkeys_dir, state, LEAF_USER).seed_path

    def add_state(self, code: str, name: str) -> Registry:
        """Serve ``code`` (if not served yet) and create its NATS users. Idempotent."""
        registry = self.registry()
        if registry.state(code) is None:
            registry = registry.with_state(StateEntry(code=code, name=name))
            registry.save(self.registry_path)
        self._ensure_users(registry)
        return registry

    def replace_node_credentials(self, state: str) -> Path:
        """A new NKey for ``state``'s node user: the old seed stops working at the next reload."""
        path = credentials.seed_path(self.nkeys_dir, state, NODE_USER)
        path.unlink(missing_ok=True)
        credentials.ensure_user(self.nkeys_dir, state, NODE_USER)
        return path

    def node_seed(self, state: str) -> Path:
        return credentials.seed_path(self.nkeys_dir, state, NODE_USER)

    def user_seed(self, account: str, user: str) -> Path:
        return credentials.seed_path(self.nkeys_dir, account, user)

    async def provision(
        self,
        url: str,
        states: Iterable[str],
        policy: provision.Policy | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        """Streams and node consumer of each of ``states``, sized from the accounts' limits, then
        the AUDIT stream (sourcing every registered state's inbox) and its consumer, with each
        account's provisioning user. Without ``policy``: the default, with three replicas on a
        cluster."""
        if policy is None:
            replicas = 1 if self.cluster() is None else cl.SIZE
            policy = replace(provision.DEFAULT_POLICY, replicas=replicas)
        sizes = self.plan().stream_sizes(policy.replicas)
        leaves = self.leaves()
        states = list(states)
        # every relay first: an inbox whose source finds no relay yet backs off for minutes
        for state in (s for s in states if s in leaves):
            _, relay_bytes = relay.leaf_sizes(sizes)
            seed = self.user_seed(state, PROVISION_USER)
            await relay.provision_relay(url, seed, state, policy, relay_bytes, tls_ca)
        for state in states:
            seed = self.user_seed(state, PROVISION_USER)
            sources = relay.relay_sources(state, leaves)
            own = relay.leaf_sizes(sizes)[0] if state in leaves else sizes
            await provision.provision_state(url, seed, state, own, policy, tls_ca, sources)
            if state in leaves:
                await relay.provision_link_consumers(url, seed, state, tls_ca)
        audit_seed = self.user_seed("AUDIT", "audit")
        await provision.provision_audit(url, audit_seed, self.registry().codes(), policy, tls_ca)
        async with connect(url, self.user_seed("SEC", "operator"), tls_ca) as nc:
            await lookup.ensure_filter_bucket(nc, policy.replicas)

    # -- configuration and server ---------------------------------------------------------------

    def render_config(
        self,
        listen: config.Listen | None = None,
        resources: Resources | None = None,
        *,
        cluster: cl.Cluster | None = None,
        single: bool = False,
    ) -> Path:
        """Render nats.conf (or, for a cluster, each member's); what is not given is kept from
        the previous rendering, including whether the hub is a cluster (``cluster`` makes it
        one, ``single`` makes it one server again). Refused (HubConfigError, ResourceError)
        before anything is written when a listener would be exposed or the accounts' limits do
        not fit the resources."""
        listen = listen or self._previous_listen()
        resources = resources or self.resources()
        registry = self.registry()
        limits = plan(resources, len(registry.codes()), self.store_dir)
        users = self._user_keys(registry)
        cluster = None if single else cluster or self.cluster()
        if cluster is not None:
            cluster = cl.with_leaf_ports(cluster, listen.leaf_port)
            self._render_members(cluster, registry, users, limits, listen)
        else:
            text = config.render_config(
                registry, users, store_dir=self.store_dir, plan=limits, listen=listen,
                leaves=self.leaves(),
            )  # fmt: skip
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.listen_file.write_text(json.dumps(
            {k: None if v is None else str(v.absolute()) if isinstance(v, Path) else v
             for k, v in asdict(listen).items()}
        ))  # fmt: skip
        self.resources_file.write_text(json.dumps(asdict(resources)))
        if cluster is not None:
            members.save_cluster(self.cluster_file, cluster)
            return self.root / "cluster"
        self.cluster_file.unlink(missing_ok=True)
        self.config_path.write_text(text)
        return self.config_path

    def _user_keys(self, registry: Registry) -> dict[tuple[str, str], str]:
        self._ensure_users(registry)
        users = {}
        for path in sorted(self.nkeys_dir.glob("*/*.nk")):
            key = credentials.load_user(self.nkeys_dir, path.parent.name, path.stem)
            users[(key.account, key.user)] = key.public_key
        return users

    def _render_members(
        self,
        cluster: cl.Cluster,
        registry: Registry | None = None,
        users: dict[tuple[str, str], str] | None = None,
        limits: Plan | None = None,
        listen: config.Listen | None = None,
    ) -> None:
        registry = registry or self.registry()
        members.render_members(
            self.root, registry, users or self._user_keys(registry), cluster=cluster,
            plan=limits or self.plan(), listen=listen or self._previous_listen(),
            secret=members.route_secret(self.root / "keys"), leaves=self.leaves(),
        )  # fmt: skip
        members.save_cluster(self.cluster_file, cluster)

    def resources(self) -> Resources:
        """What the last rendering gave JetStream; before any, nats-server's own default disk."""
        try:
            return Resources(**json.loads(self.resources_file.read_text()))
        except (OSError, ValueError, TypeError):
            return default_resources(self.store_dir)

    def plan(self) -> Plan:
        """The accounts' limits the rendered configuration gives (checked again)."""
        registry = self.registry()
        return plan(self.resources(), len(registry.codes()), self.store_dir, check_machine=False)

    def listen(self) -> config.Listen:
        """The listener settings of the last rendering."""
        return self._previous_listen()

    def _previous_listen(self) -> config.Listen:
        try:
            data = json.loads(self.listen_file.read_text())
        except (OSError, ValueError):
            return config.Listen()
        for name in ("tls_cert", "tls_key"):
            if data.get(name):
                data[name] = Path(data[name])
        return config.Listen(**data)

    def running_pid(self) -> int | None:
        """The running server's pid; for a cluster, the first running member's (None: none)."""
        if (cluster := self.cluster()) is not None:
            pids = (members.running_pid(self.root, m.name) for m in cluster.members)
            return next((pid for pid in pids if pid is not None), None)
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if server.is_running(pid) else None

    def start(self, only: str | None = None) -> str:
        """Start nats-server on the rendered config (each member not running, for a cluster, and
        wait until they are healthy; or the member ``only``); return the client URL (the
        members' URLs, comma-separated)."""
        if (cluster := self.cluster()) is not None:
            cluster = members.start_all(self.root, cluster, self._render_members, only)
            if only is None:  # ready for provisioning: a quorum, and every peer placed
                members.wait_healthy(cluster.members)
            else:  # rejoined and caught up (its healthz), whether or not the others run
                members.wait_healthy((cluster.member(only),))
            urls = cluster.urls(self._previous_listen().tls)
            self.url_file.write_text(urls + "\n")
            return urls
        if only is not None:
            raise HubError(f"--server {only}: this hub is one server, not a cluster")
        if not self.config_path.exists():
            raise HubError("no nats.conf: run `cifta hub render-config` first")
        if (pid := self.running_pid()) is not None:
            raise HubError(f"the hub is already running (pid {pid}) at {self.url()}")
        for stale in self.run_dir.glob("nats-server_*.ports"):
            stale.unlink()
        running = server.start(self.config_path, run_dir=self.run_dir, log_file=self.log_file)
        self.pid_file.write_text(f"{running.pid}\n")
        listen = self._previous_listen()
        if listen.port == -1:  # keep the port the server picked for every later rendering
            port = int(running.client_url.rsplit(":", 1)[1])
            self.render_config(replace(listen, port=port))
        self._keep_leaf_port(running.pid)
        self.url_file.write_text(running.client_url + "\n")
        return running.client_url

    def _keep_leaf_port(self, pid: int) -> None:
        """Keep the leaf listener's port the server picked (``-1``) for every later rendering:
        the states' leaves are configured with it."""
        listen = self._previous_listen()
        if listen.leaf_port != -1:
            return
        url = server.leaf_url(self.log_file, pid)
        if url is None:
            raise HubError(f"the server did not report its leaf node port; see {self.log_file}")
        self.render_config(replace(listen, leaf_port=int(url.rsplit(":", 1)[1])))

    def leaf_url(self) -> str:
        """The URL states' leaves connect to (``nats-leaf://host:port``; on a cluster, every
        member's, comma-separated, so that a leaf follows the hub when one member stops)."""
        if (cluster := self.cluster()) is not None:
            ports = [(m.host, m.leaf_port) for m in cluster.members]
            if any(p is None or p == -1 for _, p in ports):
                raise HubError("the hub has no leaf node ports yet: render with --leaf-port, start")
            return ",".join(f"nats-leaf://{h}:{p}" for h, p in ports)
        listen = self._previous_listen()
        if listen.leaf_port is None or listen.leaf_port == -1:
            raise HubError("the hub has no leaf node port yet: render it with --leaf-port, start")
        return f"nats-leaf://{listen.leaf_host or listen.host}:{listen.leaf_port}"

    def restart(self, say: Callable[[str], None], drain_s: float | None = None) -> None:
        """Restart the hub for an upgrade: a cluster one member at a time (members.py), never
        losing its quorum; a single server stopped and started (its clients wait)."""
        if (cluster := self.cluster()) is not None:
            members.rolling_restart(self.root, cluster, say, drain_s)
            return
        self.stop()
        say(f"hub started again at {self.start()}")

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
        if (cluster := self.cluster()) is not None:
            for _ in range(2):
                members.reload_all(self.root, cluster)
            return
        pid = self.running_pid()
        if pid is None:
            raise HubError("the hub is not running")
        for _ in range(2):
            try:
                server.reload_confirmed(pid, self.log_file)
            except server.ServerError as exc:
                raise HubError(str(exc)) from None

    def stop(self, only: str | None = None) -> bool:
        """Stop the hub (every member of a cluster, or the member ``only``); whether anything
        was running."""
        if (cluster := self.cluster()) is not None:
            names = [cluster.member(only).name] if only else [m.name for m in cluster.members]
            return any([members.stop_member(self.root, name) for name in names])
        if only is not None:
            raise HubError(f"--server {only}: this hub is one server, not a cluster")
        pid = self.running_pid()
        if pid is None:
            return False
        server.stop(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

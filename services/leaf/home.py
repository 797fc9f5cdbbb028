"""A leaf home: the state's working directory for its own leaf node, and the operations on it.

```
<home>/leaf.json         the state, the hub's leaf URL, the local listener (settings)
<home>/hub-leaf.nk       the leaf user's seed from the secretariat (0600)
<home>/nkeys/node.nk     the local node user's seed (0600): the node's credentials on the leaf
<home>/nkeys/admin.nk    the local administrator's seed (0600): creates the local streams
<home>/leaf.conf         rendered (0600: it carries the hub seed, as nats-server reads it)
<home>/jetstream/        the leaf's JetStream store: the outbox and the mirrors
<home>/run/              pid, ports file, log
```
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from services.core import subjects
from services.core.files import write_secret
from services.hub import credentials, server
from services.hub.config import MAX_PAYLOAD
from services.hub.provision import DEFAULT_POLICY, Policy
from services.leaf import streams

NODE = "node"
ADMIN = "admin"

#: The JetStream API calls that would undo what the leaf holds: the streams' definitions and
#: contents, and the durable consumers the link and the node run on (deleted, redefined by a
#: create with their name, or reset to another sequence: a relay consumer reset past the end or
#: filtered to nothing would leave the outbox unsent while every PubAck said stored).
_DESTRUCTIVE = (
    "STREAM.CREATE.>", "STREAM.UPDATE.>", "STREAM.DELETE.>", "STREAM.PURGE.>",
    "STREAM.MSG.DELETE.>", "STREAM.RESTORE.>", "STREAM.SNAPSHOT.>", "ACCOUNT.PURGE.>",
    "CONSUMER.PAUSE.>", "CONSUMER.UNPIN.>",
    *(
        call.format(name=name)
        for name in ("{relay}", "{node}")
        for call in (
            "CONSUMER.DELETE.*.{name}", "CONSUMER.CREATE.*.{name}", "CONSUMER.CREATE.*.{name}.>",
            "CONSUMER.DURABLE.CREATE.*.{name}", "CONSUMER.RESET.*.{name}",
        )
    ),
)  # fmt: skip


def node_permissions(state: str) -> dict[str, object]:
    """The node's user on its leaf: everything a node does (its outbox, its inbox mirror, the
    directory, what crosses to the hub, which the hub's leaf permissions bound in turn), but
    none of the API calls that would delete, purge, redefine or reset what the leaf holds,
    under the local API prefix or the leaf's domain's; nor the link's own traffic (the flow
    control the hub answers for the outbox, the subjects the link delivers on), which would let
    it fake what the other side has stored. Those are the administrator's (``cifta leaf``).

    A deny list, so that it does not have to follow every read a node makes: a JetStream API
    call nats-server adds later is allowed until it is listed here."""
    names = {"relay": subjects.RELAY_CONSUMER, "node": subjects.NODE_CONSUMER}
    calls = [c.format(**names) for c in _DESTRUCTIVE]
    prefixes = ("$JS.API", f"$JS.{subjects.leaf_domain(state)}.API")
    link = [f"$JS.FC.{subjects.leaf_outbox_stream(state)}.>", f"{subjects.leaf_deliver(state)}.>"]
    return {"publish": {"deny": [f"{p}.{c}" for p in prefixes for c in calls] + link}}


GIB = 1024**3


class LeafError(Exception):
    """An operation on the leaf home could not be done; the message says why."""


@dataclass(frozen=True)
class LeafSettings:
    state: str
    #: nats-leaf://host:port (a cluster's members comma-separated), or the operator's proxy
    hub_leaf_url: str
    host: str = "127.0.0.1"
    port: int = -1  # the node's listener on the leaf (-1: a free port)
    outbox_max_bytes: int = GIB
    store_max_bytes: int = 8 * GIB
    #: Run the leaf in this network namespace (``ip netns exec``): the fault tests cut its link.
    netns: str | None = None


@dataclass(frozen=True)
class LeafHome:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", self.root.absolute())

    @property
    def settings_file(self) -> Path:
        return self.root / "leaf.json"

    @property
    def hub_seed(self) -> Path:
        return self.root / "hub-leaf.nk"

    @property
    def config_path(self) -> Path:
        return self.root / "leaf.conf"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "leaf.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "leaf.log"

    def seed(self, user: str) -> Path:
        domain = subjects.leaf_domain(self.settings().state)
        return credentials.seed_path(self.root / "nkeys", domain, user)

    def init(self, settings: LeafSettings, hub_seed: Path) -> None:
        """Create the home: settings, the hub seed copied in, the local users. Idempotent."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings_file.write_text(json.dumps(asdict(settings), indent=2) + "\n")
        if hub_seed.resolve() != self.hub_seed.resolve():
            write_secret(self.hub_seed, hub_seed.read_bytes())
        for user in (NODE, ADMIN):
            credentials.ensure_user(self.root / "nkeys", subjects.leaf_domain(settings.state), user)

    def settings(self) -> LeafSettings:
        try:
            return LeafSettings(**json.loads(self.settings_file.read_text()))
        except FileNotFoundError:
            raise LeafError(f"no leaf home at {self.root}: run `cifta leaf init` first") from None

    def render_config(self) -> Path:
        """Render leaf.conf from the settings (and the bootstrap config without the hub link)."""
        body = self._config_body()
        header = "# Generated by `cifta leaf render-config`. Holds the leaf's hub seed: 0600.\n"
        write_secret(self.config_path, (header + json.dumps(body, indent=2) + "\n").encode())
        del body["leafnodes"]
        header = "# Generated by `cifta leaf render-config`: the first start, unlinked.\n"
        write_secret(self.bootstrap_path, (header + json.dumps(body, indent=2) + "\n").encode())
        return self.config_path

    @property
    def bootstrap_path(self) -> Path:
        return self.root / "leaf-bootstrap.conf"

    def _config_body(self) -> dict[str, Any]:
        s = self.settings()
        domain = subjects.leaf_domain(s.state)
        key = {u: credentials.load_user(self.root / "nkeys", domain, u).public_key
               for u in (NODE, ADMIN)}  # fmt: skip
        users = [
            {"nkey": key[NODE], "permissions": node_permissions(s.state)},
            {"nkey": key[ADMIN]},
        ]
        return {
            "server_name": domain,
            "host": s.host,
            "port": s.port,
            "max_payload": MAX_PAYLOAD,
            # a silent link is noticed within seconds, not nats-server's default two minutes
            "ping_interval": "2s",
            "ping_max": 3,
            "jetstream": {
                "store_dir": str(self.store_dir),
                "domain": domain,
                "max_file_store": s.store_max_bytes,
                "max_memory_store": 0,
                # one server, no replicas: fsync before every PubAck (nats-server issue 7564)
                "sync_interval": "always",
            },
            "accounts": {s.state: {"jetstream": "enabled", "users": users}},
            "leafnodes": {
                "reconnect": "1s",
                "remotes": [
                    {
                        "urls": s.hub_leaf_url.split(","),
                        "account": s.state,
                        "nkey": self.hub_seed.read_text().strip(),
                    }
                ],
            },
        }

    @property
    def store_dir(self) -> Path:
        return self.root / "jetstream"

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if server.is_running(pid) else None

    async def start(self, policy: Policy = DEFAULT_POLICY) -> str:
        """Start the leaf's nats-server on the rendered config; return the node's URL.

        The first start creates the local streams before the leaf links to the hub: the hub's
        relay retries its source at once when a leaf connects, and only then, so the outbox must
        be there to be found (otherwise the relay waits out nats-server's retry backoff, up to
        two minutes, showing a lag of 0 all the while)."""
        if not self.config_path.exists():
            raise LeafError("no leaf.conf: run `cifta leaf render-config` first")
        if (pid := self.running_pid()) is not None:
            raise LeafError(f"the leaf is already running (pid {pid})")
        if not self.store_dir.exists():
            self._run(self.bootstrap_path)
            await self.provision(policy)
            self.stop()
        return self._run(self.config_path)

    def _run(self, config: Path) -> str:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob("nats-server_*.ports"):
            stale.unlink()
        netns = self.settings().netns
        wrapper = ("ip", "netns", "exec", netns) if netns else ()
        running = server.start(
            config, run_dir=self.run_dir, log_file=self.log_file, wrapper=wrapper
        )
        self.pid_file.write_text(f"{running.pid}\n")
        (self.run_dir / "url").write_text(running.client_url + "\n")
        settings = self.settings()
        if settings.port == -1:  # keep the port it picked: the node's settings name it
            port = int(running.client_url.rsplit(":", 1)[1])
            self.settings_file.write_text(json.dumps(asdict(replace(settings, port=port))) + "\n")
            self.render_config()
        return running.client_url

    def url(self) -> str:
        try:
            return (self.run_dir / "url").read_text().strip()
        except OSError:
            raise LeafError("the leaf has not been started") from None

    def stop(self) -> bool:
        pid = self.running_pid()
        if pid is None:
            return False
        server.stop(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    async def provision(self, policy: Policy = DEFAULT_POLICY) -> None:
        """The leaf's outbox, its mirrors of the hub's inbox and directory, the node's consumer."""
        s = self.settings()
        await streams.provision_leaf(
            self.url(), self.seed(ADMIN), s.state, policy, s.outbox_max_bytes
        )

    def node_overrides(self) -> dict[str, object]:
        """What a node's settings need to run on this leaf rather than on the hub."""
        s = self.settings()
        return {
            "hub_url": self.url(),
            "credentials": self.seed(NODE),
            "outbox_stream": subjects.leaf_outbox_stream(s.state),
        }

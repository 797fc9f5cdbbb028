"""Render the nats-server configuration from the registry (design section 5). Never hand-written.

Per state ``B``: an account ``B`` with JetStream; for every other state ``A`` a service export
``inbox.B.A.>`` granted to account ``A`` alone, which ``A`` imports. ``A`` can then publish into
``B``'s inbox under its own name and nowhere else in ``B``, and cannot read it. The node's user may
publish to the inboxes it was granted, read its own durable consumer and acknowledge, read its own
inbox by stream sequence (direct get, to replay it), and file into its own quarantine stream; it
cannot create, delete or purge streams or consumers, except purging its own attachment stream
(services/hub/attachments.py: each state stores what it sends in its own account and exports to
each recipient alone the reads of what is addressed to it). The provisioning user of each account
(held by the secretariat) creates them. Every account's JetStream limits come from the plan of
services/hub/resources.py.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.core import subjects
from services.core.envelope import MAX_ENVELOPE_BYTES
from services.hub import attachments, leaf, lookup
from services.hub.credentials import LEAF_USER, NODE_USER, PROVISION_USER
from services.hub.registry import Registry
from services.hub.resources import Plan

SYSTEM_ACCOUNT = "SYS"
AUDIT_ACCOUNT = "AUDIT"
SECRETARIAT_ACCOUNT = "SEC"
DIRECTORY_USER = "directory"
#: (account, user) of the secretariat's own users: its operator, the directory service (which
#: alone may write the states' directory buckets), the audit service, the system account.
SECRETARIAT_USERS = (
    (SECRETARIAT_ACCOUNT, "operator"),
    (SECRETARIAT_ACCOUNT, DIRECTORY_USER),
    (AUDIT_ACCOUNT, "audit"),
    (SYSTEM_ACCOUNT, "system"),
)

#: Which kind of connection a user may open. The leaf listener otherwise takes any user's key
#: (a state never allowed a leaf, with its node key; the secretariat's keys), and a leaf user's
#: key would serve as an ordinary client: each user is held to its one kind.
CLIENT_ONLY = {"allowed_connection_types": ["STANDARD"]}
LEAF_ONLY = {"allowed_connection_types": ["LEAFNODE"]}

#: Room for the NATS headers around the largest envelope the network accepts.
MAX_PAYLOAD = MAX_ENVELOPE_BYTES + 64 * 1024


class HubConfigError(ValueError):
    """The configuration asked for cannot be rendered; the message says what to change."""


@dataclass(frozen=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 4222  # -1: let the server pick a free port and write it to the ports file
    #: JetStream's fsync interval: "always" (fsync before every PubAck) for a single server, whose
    #: default two-minute interval would lose acknowledged messages to a power cut (nats-server
    #: issue 7564); a three-server cluster with R3 streams may relax it, e.g. "2m".
    sync_interval: str = "always"
    #: Server certificate and key (PEM). With them, clients must use TLS (``tls://``).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Listen beyond this machine without TLS (behind a TLS-terminating tunnel): never by default.
    insecure_plaintext: bool = False
    #: The leaf node listener for states running their own leaf (-1: a free port); None: none.
    leaf_port: int | None = None
    #: Where the leaf listener listens, if not on ``host`` (the states' link, not the clients').
    leaf_host: str | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_listen(listen: Listen) -> None:
    """Refuse what would expose the hub: a plaintext listener beyond loopback (issue: every
    envelope's routing header and every node's credential challenge would cross the network in
    the clear), or half a TLS pair."""
    if (listen.tls_cert is None) != (listen.tls_key is None):
        raise HubConfigError("TLS needs both --tls-cert and --tls-key")
    leaf_host = listen.leaf_host or listen.host
    if listen.leaf_port is not None and not listen.tls and not listen.insecure_plaintext \
            and not is_loopback(leaf_host):  # fmt: skip
        raise HubConfigError(
            f"the leaf listener on {leaf_host} listens beyond this machine without TLS: give "
            "--tls-cert and --tls-key, or --insecure-plaintext behind a TLS-terminating tunnel"
        )
    if not listen.tls and not listen.insecure_plaintext and not is_loopback(listen.host):
        raise HubConfigError(
            f"--host {listen.host} listens beyond this machine without TLS: give --tls-cert and "
            "--tls-key, or --insecure-plaintext if a TLS-terminating tunnel is in front of it"
        )


def node_permissions(state: str) -> dict[str, object]:
    """The least privilege a state's node needs, and nothing more."""
    stream, consumer = subjects.inbox_stream(state), subjects.NODE_CONSUMER
    kv = subjects.DIRECTORY_STREAM
    return {
        "publish": {
            "allow": [
                f"inbox.*.{state}.>",  # to every inbox this state was granted, as itself
                subjects.quarantine_filter(state),
                f"$JS.API.CONSUMER.INFO.{stream}.{consumer}",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}",
                f"$JS.ACK.{stream}.{consumer}.>",
                # replay what its inbox still holds, by stream sequence (``cifta node recover``)
                f"$JS.API.STREAM.INFO.{stream}",
                f"$JS.API.DIRECT.GET.{stream}",
                f"$JS.API.DIRECT.GET.{stream}.>",
                # read (watch and get) the directory bucket; writing it is the directory's alone
                f"$JS.API.STREAM.INFO.{kv}",
                f"$JS.API.STREAM.MSG.GET.{kv}",
                f"$JS.API.DIRECT.GET.{kv}.>",
                f"$JS.API.CONSUMER.CREATE.{kv}",
                f"$JS.API.CONSUMER.CREATE.{kv}.>",
                f"$JS.API.CONSUMER.INFO.{kv}.>",
                f"$JS.API.CONSUMER.DELETE.{kv}.>",
                f"$JS.FC.{kv}.>",
                # its signed events and its questions to the audit service
                subjects.audit_events_export(state),
                subjects.audit_query_subject(state),
                *lookup.node_publish(state),
                *attachments.node_publish(state),
            ]
        },
        "subscribe": {
            "allow": ["_INBOX.>", subjects.AUDIT_CHECKPOINTS, *lookup.node_subscribe(state)]
        },
        # answer the evaluation requests it receives (one reply each), and nothing else
        "allow_responses": {"max": 1},
    }


def account_block(
    registry: Registry, state: str, users: Mapping[tuple[str, str], str], plan: Plan
) -> dict[str, object]:
    others = [s for s in registry.codes() if s != state]
    return {
        # no state, by sending or by not reading, can fill the disk the others depend on
        "jetstream": plan.state_limits(),
        "users": [
            {
                "nkey": users[(state, NODE_USER)],
                "permissions": node_permissions(state),
                **CLIENT_ONLY,
            },
            {"nkey": users[(state, PROVISION_USER)], **CLIENT_ONLY},
        ],
        "exports": [
            {"service": subjects.inbox_export(state, sender), "accounts": [sender]}
            for sender in others
        ]
        + [{"service": f"$KV.{subjects.DIRECTORY_BUCKET}.>", "accounts": [SECRETARIAT_ACCOUNT]}]
        + _audit_source_exports(state)
        + lookup.state_exports(state, others)
        + attachments.state_exports(state, others),
        "imports": [
            {"service": {"account": recipient, "subject": subjects.inbox_export(recipient, state)}}
            for recipient in others
        ]
        + [
            {"service": {"account": AUDIT_ACCOUNT, "subject": subjects.audit_events_export(state)}},
            {"service": {"account": AUDIT_ACCOUNT, "subject": subjects.audit_query_subject(state)}},
            {"stream": {"account": AUDIT_ACCOUNT, "subject": subjects.AUDIT_CHECKPOINTS}},
        ]
        + lookup.state_imports(state, others, SECRETARIAT_ACCOUNT)
        + attachments.state_imports(state, others),
    }


def _add_leaf_parts(
    accounts: dict[str, object],
    registry: Registry,
    users: Mapping[tuple[str, str], str],
    leaves: Sequence[str],
) -> None:
    """For each state on a leaf: its leaf user, and its relay exported to each recipient; for
    each state, the relays of the others imported (services/hub/leaf.py)."""
    for state in registry.codes():
        block = accounts[state]
        assert isinstance(block, dict)
        others = [s for s in registry.codes() if s != state]
        if state in leaves:
            permissions = leaf.leaf_permissions(state)
            block["users"] += [
                {"nkey": users[(state, LEAF_USER)], "permissions": permissions, **LEAF_ONLY}
            ]
            block["exports"] += leaf.relay_exports(state, others)
        block["imports"] += leaf.relay_imports(state, [s for s in leaves if s != state])


def _audit_source_exports(state: str) -> list[dict[str, object]]:
    """What the AUDIT account needs to source ``state``'s inbox stream (design section 5: a
    cross-account source, not a service import re-exported as a stream, nats-server 8338)."""
    stream = subjects.inbox_stream(state)
    only_audit = {"accounts": [AUDIT_ACCOUNT]}
    return [
        {"service": f"$JS.API.CONSUMER.CREATE.{stream}", **only_audit},
        {"service": f"$JS.API.CONSUMER.CREATE.{stream}.>", **only_audit},
        {"service": f"$JS.FC.{stream}.>", **only_audit},
        {"stream": f"{subjects.audit_source_deliver(state)}.>", **only_audit},
    ]


def _audit_imports(states: list[str]) -> list[dict[str, object]]:
    imports: list[dict[str, object]] = []
    for state in states:
        stream, api = subjects.inbox_stream(state), subjects.audit_source_api(state)
        imports += [
            {"service": {"account": state, "subject": f"$JS.API.CONSUMER.CREATE.{stream}"},
             "to": f"{api}.CONSUMER.CREATE.{stream}"},
            {"service": {"account": state, "subject": f"$JS.API.CONSUMER.CREATE.{stream}.>"},
             "to": f"{api}.CONSUMER.CREATE.{stream}.>"},
            {"service": {"account": state, "subject": f"$JS.FC.{stream}.>"}},
            {"stream": {"account": state, "subject": f"{subjects.audit_source_deliver(state)}.>"}},
        ]  # fmt: skip
    return imports


def _audit_exports(states: list[str]) -> list[dict[str, object]]:
    exports: list[dict[str, object]] = [{"stream": subjects.AUDIT_CHECKPOINTS, "accounts": states}]
    for state in states:
        exports += [
            {"service": subjects.audit_events_export(state), "accounts": [state]},
            {"service": subjects.audit_query_subject(state), "accounts": [state]},
        ]
    return exports


def _secretariat_permissions(user: str) -> dict[str, object]:
    if user != DIRECTORY_USER:
        return {}
    return {
        "permissions": {
            "publish": {"allow": ["directory.*.*"]},  # one entry, into one state's bucket
            "subscribe": {"allow": ["_INBOX.>"]},
        }
    }


def _secretariat_accounts(
    registry: Registry, users: Mapping[tuple[str, str], str], plan: Plan
) -> dict[str, dict[str, object]]:
    accounts: dict[str, dict[str, object]] = {}
    for account in dict.fromkeys(a for a, _ in SECRETARIAT_USERS):
        block: dict[str, object] = {
            "users": [
                {"nkey": users[(a, u)], **_secretariat_permissions(u), **CLIENT_ONLY}
                for a, u in SECRETARIAT_USERS
                if a == account
            ]
        }
        if account == AUDIT_ACCOUNT:
            block["jetstream"] = plan.audit_limits()
            block["imports"] = _audit_imports(registry.codes())
            block["exports"] = _audit_exports(registry.codes())
        if account == SECRETARIAT_ACCOUNT:
            block["jetstream"] = plan.secretariat_limits()
            block["imports"] = [
                {
                    "service": {"account": state, "subject": f"$KV.{subjects.DIRECTORY_BUCKET}.>"},
                    "to": subjects.directory_import_prefix(state),
                }
                for state in registry.codes()
            ]
            block["exports"] = lookup.secretariat_exports(registry.codes())
        accounts[account] = block
    return accounts


def _add_leaf_listener(body: dict[str, object], listen: Listen) -> None:
    """The states' leaf nodes: their own listener, and a JetStream domain for the hub so that a
    leaf reaches the hub's streams under ``$JS.hub.API`` and its own under its own domain."""
    leafnodes: dict[str, object] = {
        "host": listen.leaf_host or listen.host,
        "port": listen.leaf_port,
        # Never tell a leaf (or, through it, a client) of other URLs: a leaf must come back
        # through the one path its operator chose and can cut (nats-server issue 8367).
        "no_advertise": True,
    }
    if "tls" in body:
        leafnodes["tls"] = body["tls"]
    body["leafnodes"] = leafnodes
    jetstream = body["jetstream"]
    assert isinstance(jetstream, dict)
    jetstream["domain"] = subjects.HUB_DOMAIN


def server_body(
    registry: Registry,
    users: Mapping[tuple[str, str], str],
    *,
    store_dir: Path,
    plan: Plan,
    listen: Listen = Listen(),
    server_name: str = "cifta-hub",
    leaves: Sequence[str] = (),
) -> dict[str, object]:
    """The configuration of one hub server as a dictionary, for a caller to extend (a cluster
    adds its block) before :func:`render_text` writes it. ``leaves``: the states allowed a leaf
    node (services/hub/leaf.py); with ``listen.leaf_port``, the leaf node listener."""
    check_listen(listen)
    accounts: dict[str, object] = {
        state: account_block(registry, state, users, plan) for state in registry.codes()
    }
    _add_leaf_parts(accounts, registry, users, leaves)
    accounts.update(_secretariat_accounts(registry, users, plan))
    body: dict[str, object] = {
        "server_name": server_name,
        "host": listen.host,
        "port": listen.port,
        "max_payload": MAX_PAYLOAD,
        "jetstream": {
            "store_dir": str(store_dir.resolve()),
            # what the accounts' limits were planned against (services/hub/resources.py)
            "max_file_store": plan.resources.jetstream_disk,
            "max_memory_store": plan.resources.jetstream_memory,
            "sync_interval": listen.sync_interval,
        },
        "system_account": SYSTEM_ACCOUNT,
        "accounts": accounts,
    }
    if listen.tls_cert is not None and listen.tls_key is not None:
        body["tls"] = {
            "cert_file": str(listen.tls_cert.resolve()),
            "key_file": str(listen.tls_key.resolve()),
            "min_version": "1.3",
            "timeout": 5,
        }
    if listen.leaf_port is not None:
        _add_leaf_listener(body, listen)
    return body


def render_text(registry: Registry, body: Mapping[str, object]) -> str:
    """The configuration file's text: a header saying where it comes from, then ``body``."""
    header = (
        f"# Generated by `cifta hub render-config` from registry version {registry.version}.\n"
        "# Do not edit: change the registry and render again.\n"
    )
    # nats-server's configuration format accepts JSON syntax; rendering it with json.dumps means
    # no value is ever interpolated into the file unquoted.
    return header + json.dumps(body, indent=2) + "\n"


def render_config(
    registry: Registry,
    users: Mapping[tuple[str, str], str],
    *,
    store_dir: Path,
    plan: Plan,
    listen: Listen = Listen(),
    leaves: Sequence[str] = (),
) -> str:
    """The whole nats-server configuration of a single-server hub, as text. ``users`` maps
    (account, user) to NKey.

    Every path in it is absolute: a service manager starts nats-server from another working
    directory, where a relative store would silently be a new, empty one.
    """
    body = server_body(
        registry, users, store_dir=store_dir, plan=plan, listen=listen, leaves=leaves
    )
    return render_text(registry, body)

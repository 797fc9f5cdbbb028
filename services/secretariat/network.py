"""The network as the secretariat watches it: each state's connection, backlog and storage, the
hub's servers and JetStream. Metadata only: counts and times, never an envelope.

The hub's monitoring comes from the system account's ``$SYS.REQ.SERVER.PING.<VARZ|JSZ|CONNZ>``
requests, the same documents nats-server serves on ``/varz``, ``/jsz`` and ``/connz``, so the hub
needs no HTTP monitoring port. Every server of a cluster answers a PING; all answers are kept.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from pydantic import BaseModel, ConfigDict

from services.core import subjects
from services.core.connection import HubUnreachable, connect
from services.core.files import write_atomic
from services.hub import credentials
from services.hub.config import SYSTEM_ACCOUNT
from services.hub.credentials import NODE_USER
from services.hub.home import HubError, HubHome
from services.secretariat.errors import ErrorCode, SecretariatError

SYSTEM_USER = "system"
REQUEST_TIMEOUT_S = 3.0


class StateHealth(BaseModel):
    """One state's place on the network, as the hub sees it."""

    model_config = ConfigDict(frozen=True)

    state: str
    name: str
    provisioned: bool
    connected: bool  # its node is connected to the hub now
    stored: int = 0  # envelopes held in its inbox
    backlog: int = 0  # waiting for its node: not yet delivered, or delivered and not acknowledged
    redelivered: int = 0
    past_last_attempt: int = 0
    quarantined: int = 0
    last_activity: datetime | None = None  # its node's last traffic or last delivery
    storage_used: int = 0  # bytes, its account's JetStream file storage
    storage_limit: int = 0  # bytes, its account's limit

    @property
    def storage_ratio(self) -> float:
        return self.storage_used / self.storage_limit if self.storage_limit else 0.0


class ServerHealth(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    connections: int
    uptime: str
    memory: int
    storage_used: int
    storage_max: int
    streams: int
    consumers: int
    messages: int


class NetworkView(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    servers: list[ServerHealth]
    states: list[StateHealth]


def _cluster_size(varz: dict[str, Any]) -> int:
    """How many servers will answer a PING: this one and each route of its cluster."""
    return 1 + len((varz.get("cluster") or {}).get("urls") or [])


async def _gather(
    nc: Client, subject: str, body: dict[str, Any], expect: int | None = None
) -> list[dict[str, Any]]:
    """Every server's answer to a ``$SYS`` PING: ``expect`` answers (by default as many as the
    first answer's cluster has servers), or what came within the timeout once one has."""
    answers: list[dict[str, Any]] = []
    enough = asyncio.Event()
    wanted: list[int | None] = [expect]

    async def take(msg: Msg) -> None:
        answer = json.loads(msg.data)
        data = answer.get("data", {})
        data["_server_name"] = (answer.get("server") or {}).get("name", "")  # who answered
        answers.append(data)
        if wanted[0] is None:
            wanted[0] = _cluster_size(data)
        if len(answers) >= (wanted[0] or 1):
            enough.set()

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=take)
    try:
        await nc.publish(subject, json.dumps(body).encode(), reply=inbox)
        try:
            await asyncio.wait_for(enough.wait(), REQUEST_TIMEOUT_S)
        except TimeoutError:
            if not answers:  # not one server answered: the hub is not there
                raise
    finally:
        await sub.unsubscribe()
    return answers


async def monitoring(url: str, seed: Path, tls_ca: Path | None = None) -> dict[str, Any]:
    """The hub's ``varz``, ``jsz`` (with accounts, streams, consumers) and ``connz`` (with each
    connection's account and user), per server."""
    async with connect(url, seed, tls_ca, name="cifta-secretariat") as nc:
        varz = await _gather(nc, "$SYS.REQ.SERVER.PING.VARZ", {})
        servers = len(varz)  # a server down in a cluster answers none: wait for no more
        jsz_options = {"accounts": True, "streams": True, "consumer": True, "config": True}
        return {
            "varz": varz,
            "jsz": await _gather(nc, "$SYS.REQ.SERVER.PING.JSZ", jsz_options, servers),
            "connz": await _gather(
                nc, "$SYS.REQ.SERVER.PING.CONNZ", {"auth": True, "limit": 4096}, servers
            ),
        }


def _servers(mon: dict[str, Any]) -> list[ServerHealth]:
    jsz = {j.get("server_id"): j for j in mon["jsz"]}
    out = []
    for v in mon["varz"]:
        j = jsz.get(v.get("server_id"), {})
        js_config = (v.get("jetstream") or {}).get("config") or {}
        out.append(
            ServerHealth(
                name=v.get("server_name", ""),
                version=v.get("version", ""),
                connections=v.get("connections", 0),
                uptime=v.get("uptime", ""),
                memory=v.get("mem", 0),
                storage_used=j.get("storage", 0),
                storage_max=js_config.get("max_storage", 0),
                streams=j.get("streams", 0),
                consumers=j.get("consumers", 0),
                messages=j.get("messages", 0),
            )
        )
    return out


def _parse_time(text: str | None) -> datetime | None:
    """A time as nats-server writes it (nanoseconds, ``Z``); None when absent or unreadable."""
    if not text:
        return None
    try:  # Python reads microseconds at most
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _node_connections(mon: dict[str, Any], hub: HubHome) -> dict[str, list[dict[str, Any]]]:
    """Each state's node connections (by the node user's public key, not by account: the
    secretariat's own provisioning user connects in the state's account too)."""
    node_keys: dict[str, str] = {}
    for code in hub.registry().codes():
        if hub.node_seed(code).exists():
            node_keys[credentials.load_user(hub.nkeys_dir, code, NODE_USER).public_key] = code
    out: dict[str, list[dict[str, Any]]] = {}
    for server in mon["connz"]:
        for c in server.get("connections") or []:
            state = node_keys.get(c.get("authorized_user", ""))
            if state is not None and c.get("account") == state:
                out.setdefault(state, []).append(c)
    return out


def _account_storage(mon: dict[str, Any]) -> dict[str, int]:
    used: dict[str, int] = {}
    for server in mon["jsz"]:
        for a in server.get("account_details") or []:
            used[a["name"]] = used.get(a["name"], 0) + int(a.get("storage", 0))
    return used


def _remembered(hub: HubHome, seen_now: dict[str, datetime]) -> dict[str, datetime]:
    """Each state's last activity as seen by any view so far, updated with ``seen_now``: once a
    node disconnects, the server forgets its connection, and its last activity with it."""
    path = hub.root / "secretariat" / "last_seen.json"
    try:
        held = {k: datetime.fromisoformat(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        held = {}
    for state, at in seen_now.items():
        held[state] = max(at, held.get(state, at))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, json.dumps({k: v.isoformat() for k, v in held.items()}).encode())
    return held


def _streams(mon: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every stream's detail (state and consumers) by name, as its leader reports it (in a
    cluster each server reports its own replica, which may lag)."""
    out: dict[str, dict[str, Any]] = {}
    for server in mon["jsz"]:
        name = server["_server_name"]
        for account in server.get("account_details") or []:
            for stream in account.get("stream_detail") or []:
                leader = (stream.get("cluster") or {}).get("leader")
                if leader in (None, name) or stream["name"] not in out:
                    out[stream["name"]] = stream
    return out


def _state_health(base: StateHealth, streams: dict[str, dict[str, Any]]) -> StateHealth:
    """``base`` with its inbox's figures, as ``cifta hub status`` counts them (the node
    consumer's pending and unacknowledged, its redeliveries, the undelivered record)."""
    inbox = streams.get(subjects.inbox_stream(base.state))
    consumers = {c["name"]: c for c in (inbox or {}).get("consumer_detail") or []}
    node = consumers.get(subjects.NODE_CONSUMER)
    if inbox is None or node is None:
        return base
    quarantine = streams.get(subjects.quarantine_stream(base.state), {})
    undelivered = streams.get(subjects.undelivered_stream(base.state), {})
    delivered = _parse_time((node.get("delivered") or {}).get("last_active"))
    seen = [t for t in (base.last_activity, delivered) if t is not None]
    return base.model_copy(
        update={
            "provisioned": True,
            "stored": inbox["state"]["messages"],
            "backlog": node.get("num_pending", 0) + node.get("num_ack_pending", 0),
            "redelivered": node.get("num_redelivered", 0),
            "past_last_attempt": (undelivered.get("state") or {}).get("messages", 0),
            "quarantined": (quarantine.get("state") or {}).get("messages", 0),
            "last_activity": max(seen) if seen else None,
        }
    )


async def network_view(hub: HubHome, now: datetime, tls_ca: Path | None = None) -> NetworkView:
    """Every state's health and the hub's servers, from one round of ``$SYS`` requests (not a
    connection per state); HUB_UNREACHABLE when the hub is down."""
    try:
        url = hub.url()
        mon = await monitoring(url, hub.user_seed(SYSTEM_ACCOUNT, SYSTEM_USER), tls_ca)
    except (HubError, HubUnreachable, NatsError, TimeoutError):
        raise SecretariatError(ErrorCode.HUB_UNREACHABLE) from None
    connections = _node_connections(mon, hub)
    last_seen = _remembered(hub, {
        state: max(times)
        for state, conns in connections.items()
        if (times := [t for t in (_parse_time(c.get("last_activity")) for c in conns) if t])
    })  # fmt: skip
    storage = _account_storage(mon)
    streams = _streams(mon)
    limit = hub.plan().state_disk
    states = [
        _state_health(
            StateHealth(
                state=entry.code,
                name=entry.name,
                provisioned=False,
                connected=bool(connections.get(entry.code)),
                storage_used=storage.get(entry.code, 0),
                storage_limit=limit,
                last_activity=last_seen.get(entry.code),
            ),
            streams,
        )
        for entry in hub.registry().states
    ]
    return NetworkView(at=now, servers=_servers(mon), states=states)

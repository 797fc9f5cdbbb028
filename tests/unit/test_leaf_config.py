"""The hub's configuration for states on a leaf, and a leaf's own (services/hub/leaf.py,
services/leaf/home.py): what each renders, and that nats-server accepts it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from services.hub.config import HubConfigError, Listen
from services.hub.credentials import LEAF_USER
from services.hub.server import nats_server_binary
from services.leaf.home import LeafHome, LeafSettings
from tests.support.hub import build_hub


def rendered(tmp_path: Path, listen: Listen) -> tuple[Path, dict]:  # type: ignore[type-arg]
    hub = build_hub(tmp_path)
    hub.home.allow_leaf("MEX")
    path = hub.home.render_config(listen)
    return path, dict(json.loads(path.read_text().split("\n", 2)[2]))


def accepted(path: Path) -> None:
    check = subprocess.run(
        [str(nats_server_binary()), "-c", str(path), "-t"], capture_output=True, check=False
    )
    assert check.returncode == 0, check.stderr.decode()


def test_the_leaf_listener_advertises_nothing_and_the_hub_has_a_domain(tmp_path: Path) -> None:
    path, body = rendered(tmp_path, Listen(port=-1, leaf_port=-1))
    accepted(path)
    assert body["leafnodes"] == {"host": "127.0.0.1", "port": -1, "no_advertise": True}
    assert body["jetstream"]["domain"] == "hub"


def test_no_leaf_listener_unless_asked(tmp_path: Path) -> None:
    _, body = rendered(tmp_path, Listen(port=-1))
    assert "leafnodes" not in body
    assert "domain" not in body["jetstream"]


def test_only_a_state_allowed_a_leaf_has_a_leaf_user_and_it_may_not_publish_an_inbox(
    tmp_path: Path,
) -> None:
    _, body = rendered(tmp_path, Listen(port=-1, leaf_port=-1))
    accounts = body["accounts"]
    assert len(accounts["MEX"]["users"]) == 3 and len(accounts["USA"]["users"]) == 2
    leaf_user = accounts["MEX"]["users"][2]
    published = leaf_user["permissions"]["publish"]["allow"]
    assert not [s for s in published if s.startswith("inbox.")]
    assert "$JS.hub.API.CONSUMER.RESET.INBOX_MEX.leaf" in published
    # of the streams at the hub, only its own attachment stream's size and purge (its node's
    # uploads, services/hub/attachments.py); no deletion, no other stream
    assert [s for s in published if ".STREAM." in s or "DELETE" in s or "PURGE" in s] == [
        "$JS.hub.API.STREAM.INFO.ATTACH_MEX",
        "$JS.hub.API.STREAM.PURGE.ATTACH_MEX",
    ]
    assert "attach.*.MEX.>" in published


def test_a_recipient_may_source_a_relay_only_for_what_is_addressed_to_it(tmp_path: Path) -> None:
    _, body = rendered(tmp_path, Listen(port=-1, leaf_port=-1))
    exports = body["accounts"]["MEX"]["exports"]
    create = [e for e in exports if "CONSUMER.CREATE.RELAY_MEX" in str(e.get("service", ""))]
    assert {(e["service"], tuple(e["accounts"])) for e in create} == {
        ("$JS.API.CONSUMER.CREATE.RELAY_MEX.*.inbox.USA.MEX.>", ("USA",)),
        ("$JS.API.CONSUMER.CREATE.RELAY_MEX.*.inbox.COL.MEX.>", ("COL",)),
    }
    imports = body["accounts"]["USA"]["imports"]
    assert {"service": {"account": "MEX", "subject": "$JS.FC.RELAY_MEX.>"}} in imports


def test_a_leaf_listener_beyond_loopback_needs_tls(tmp_path: Path) -> None:
    hub = build_hub(tmp_path)
    with pytest.raises(HubConfigError, match=r"leaf listener on 10\.0\.0\.9"):
        hub.home.render_config(Listen(port=-1, leaf_port=7422, leaf_host="10.0.0.9"))


def test_a_leaf_config_is_accepted_and_keeps_its_hub_seed_private(tmp_path: Path) -> None:
    hub = build_hub(tmp_path)
    seed = hub.home.allow_leaf("MEX")
    leaf = LeafHome(tmp_path / "leaf")
    leaf.init(LeafSettings("MEX", "nats-leaf://127.0.0.1:7422,nats-leaf://127.0.0.1:7423"), seed)
    path = leaf.render_config()
    accepted(path)
    assert path.stat().st_mode & 0o077 == 0
    body = json.loads(path.read_text().split("\n", 1)[1])
    assert body["jetstream"]["domain"] == "leaf-MEX"
    assert body["leafnodes"]["remotes"][0]["urls"] == [
        "nats-leaf://127.0.0.1:7422",
        "nats-leaf://127.0.0.1:7423",
    ]
    assert hub.home.user_seed("MEX", LEAF_USER) == seed

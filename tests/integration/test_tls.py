"""A node against a hub that requires TLS, as a state runs one for real."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest

from services.hub import provision
from services.hub.config import Listen
from services.hub.credentials import PROVISION_USER
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, running_node, send_routes_report
from tests.support.tls import make_pki


async def test_nodes_exchange_over_tls_and_plaintext_clients_are_refused(
    hub_home: Hub, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    hub_home.home.render_config(Listen(port=-1, tls_cert=pki.cert, tls_key=pki.key))
    url = hub_home.home.start()
    port = url.rsplit(":", 1)[1]
    hub_home.url = f"tls://127.0.0.1:{port}"
    for state in ("MEX", "USA"):
        await provision.provision_state(
            hub_home.url, hub_home.home.user_seed(state, PROVISION_USER), state, tls_ca=pki.ca
        )

    async with (
        running_node(hub_home, "MEX", tmp_path, tls_ca=pki.ca) as mex,
        running_node(hub_home, "USA", tmp_path, tls_ca=pki.ca) as usa,
    ):
        sent = send_routes_report(mex, ["USA"])
        await eventually(lambda: delivered_to(mex, sent.msg_id) == {"USA"}, what="over TLS")
        assert usa.store.has_message(sent.msg_id)

    with pytest.raises((nats.errors.NoServersError, OSError, nats.errors.Error)):
        await nats.connect(
            f"nats://127.0.0.1:{port}",
            nkeys_seed=str(hub_home.home.node_seed("MEX")),
            allow_reconnect=False,
            connect_timeout=2,
        )

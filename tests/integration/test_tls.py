"""A node against a hub that requires TLS, as a state runs one for real."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

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
            hub_home.url, hub_home.home.user_seed(state, PROVISION_USER), state,
            hub_home.home.plan().stream_sizes(), tls_ca=pki.ca,
        )  # fmt: skip

    async with (
        running_node(hub_home, "MEX", tmp_path, tls_ca=pki.ca) as mex,
        running_node(hub_home, "USA", tmp_path, tls_ca=pki.ca) as usa,
    ):
        sent = send_routes_report(mex, ["USA"])
        await eventually(lambda: delivered_to(mex, sent.msg_id) == {"USA"}, what="over TLS")
        assert usa.store.has_message(sent.msg_id)

    # A client that speaks plaintext: the server announces TLS as required and refuses it.
    reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
    info = json.loads((await asyncio.wait_for(reader.readline(), 5)).split(b" ", 1)[1])
    assert info["tls_required"] is True
    writer.write(b'CONNECT {"verbose":false}\r\nPING\r\n')
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(1024), 5)
    assert b"PONG" not in answer  # the plaintext session never got going
    assert answer == b"" or answer.startswith(b"-ERR")
    writer.close()

"""Attachments in the officer console: listed on the message page (never their keys), downloaded
decrypted and verified, refused when the node's copy was altered, shown pending before it is
fetched. Brokerless: the node is a core of tests.support.casework; the hub's part is covered by
tests/integration/test_attachments.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from schemas import HandlingCode
from schemas.registry import example_body
from services.console.officer.app import build_officer_console
from services.core.keys import NodeKeys
from services.node.application import Application, OfficerIdentity, messaging
from services.node.application.models import SendMessage
from services.node.attachments import AttachmentStore, Prepared
from services.node.settings import NodeSettings
from tests.support.casework import Network
from tests.support.console import Clock, add_officers, csrf_of, node_home, officer, sign_in

OFFICER = OfficerIdentity(name="Ana Ruiz", position="Analyst", agency="FGR")
KIND = "tracing.request"


class Setup:
    """MEX sends USA a message with a 200 kB photograph; USA's console over USA's core."""

    def __init__(self, tmp_path: Path, states: tuple[str, ...] = ("MEX", "USA")) -> None:
        self.net = Network.of(tmp_path / "net", list(states))
        self.photo = os.urandom(200_000)  # four chunks of 64 KiB
        source = tmp_path / "marcas serie Ñ.png"
        source.write_bytes(self.photo)
        self.prepared: Prepared = AttachmentStore(tmp_path / "mex-att").prepare(source)
        body = example_body("info.trafficking_routes").model_dump(mode="json")
        cmd = SendMessage(officer=OFFICER, kind="info.trafficking_routes", body=body, to=["USA"],
                          handling=HandlingCode.H1)  # fmt: skip
        self.msg_id = messaging.send(self.net["MEX"], cmd, [self.prepared.manifest]).msg_id
        self.net.deliver()
        clock = Clock()
        self.home = node_home(tmp_path, "USA")
        NodeKeys.generate("USA").save(self.home / "keys.json", None)
        who = officer("ana", language="es")
        self.accounts = add_officers(self.home, [who], clock.now)
        app = build_officer_console(self.home, clock=clock)
        app.state.node = Application(self.net["USA"], NodeSettings.load(self.home))
        self.client = TestClient(app)
        assert sign_in(self.client, who, clock).status_code == 303

    def fetched(self) -> Path:
        """USA's copy, as the node's fetcher leaves it once verified."""
        held = self.home / "attachments" / self.prepared.manifest.ciphertext_sha256
        held.parent.mkdir(exist_ok=True)
        shutil.copyfile(self.prepared.path, held)
        return held

    @property
    def url(self) -> str:
        return f"/messages/{self.msg_id}/attachments/marcas%20serie%20%C3%91.png"


def test_a_held_attachment_is_listed_without_its_key_and_downloads_as_sent(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.fetched()
    page = s.client.get(f"/messages/{s.msg_id}")
    assert page.status_code == 200
    assert '<h2 id="attachments-title">Adjuntos</h2>' in page.text
    assert f'href="{s.url}"' in page.text and "200 kB" in page.text
    assert s.prepared.manifest.key not in page.text  # the key stays inside the sealed body
    got = s.client.get(s.url)
    assert got.status_code == 200 and got.content == s.photo
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"marcas serie _.png\"; filename*=UTF-8''marcas%20serie%20%C3%91.png"
    )
    actions = [a["action"] for a in s.accounts.actions("ana", limit=10)]
    assert "attachment_downloaded" in actions


def test_a_copy_altered_at_rest_is_refused_and_no_byte_is_sent(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    held = s.fetched()
    data = bytearray(held.read_bytes())
    data[70_000] ^= 1  # one bit of the second chunk
    held.write_bytes(bytes(data))
    got = s.client.get(s.url)
    assert got.status_code == 400
    assert "digest_mismatch" in got.text and s.photo[:64] not in got.content


def test_an_attachment_not_yet_fetched_is_shown_pending_without_a_link(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    page = s.client.get(f"/messages/{s.msg_id}")
    assert "aún en descarga" in page.text and f'href="{s.url}"' not in page.text
    got = s.client.get(s.url)
    assert got.status_code == 400 and "marcas serie Ñ.png" in got.text


def test_a_forward_of_files_this_node_does_not_hold_is_refused_in_the_officers_language(
    tmp_path: Path,
) -> None:
    # Art. XII forwarding passes on this node's own verified copy of each file: while it is not
    # fetched, nothing is stored at the hub and no copy is queued
    s = Setup(tmp_path, ("MEX", "USA", "COL"))
    token = csrf_of(s.client.get("/account").text)
    got = s.client.post(f"/messages/{s.msg_id}/forward",
                        data={"csrf_token": token, "forward_to": "COL"},
                        follow_redirects=False)  # fmt: skip
    assert got.status_code == 400
    assert f"Este nodo no tiene 1 de los 1 adjuntos del mensaje {s.msg_id}" in got.text
    assert s.net["USA"].store.messages(direction="out") == []

"""Files attached in the compose form: kept between the preview and the sending (the browser sends
a file input once), each checked against the node's cap as it arrives, and a request announcing
more than its files may weigh refused before it is read."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient
from httpx2 import Response

from services.console.officer import uploads
from services.console.officer.app import build_officer_console
from services.core.accounts import ABSOLUTE_LIFETIME
from services.core.keys import NodeKeys
from services.node.application import Application
from services.node.settings import NodeSettings
from tests.support.casework import Network
from tests.support.console import Clock, add_officers, csrf_of, node_home, officer, sign_in

STAGED = re.compile(r'name="staged" value="([0-9a-f]{32})"')
FORM = {
    "to": "USA", "handling": "H1", "title": "Corredor del Pacífico", "evaluation.source": "B",
    "evaluation.information": "2", "routes.0.legs.0.origin": "MEX",
    "routes.0.legs.0.destination": "USA", "routes.0.legs.0.mode": "road",
    "routes.0.commodities": "rifles", "action": "preview",
}  # fmt: skip
URL = "/compose/info.trafficking_routes"


def _console(tmp_path: Path, cap: int = 100 * 1024 * 1024) -> tuple[TestClient, Path]:
    net = Network.of(tmp_path / "net", ["MEX", "USA"])
    home = node_home(tmp_path, "MEX")
    (home / "node.json").write_text(json.dumps({"party": "MEX", "attachment_max_bytes": cap}))
    NodeKeys.generate("MEX").save(home / "keys.json", None)
    clock = Clock()
    who = officer("ana", language="es")
    add_officers(home, [who], clock.now)
    app = build_officer_console(home, clock=clock)
    app.state.node = Application(net["MEX"], NodeSettings.load(home))
    client = TestClient(app)
    assert sign_in(client, who, clock).status_code == 303
    return client, home


def _post(client: TestClient, files: list[tuple[str, bytes]], **extra: str) -> Response:
    token = csrf_of(client.get(URL).text)
    parts = [("files", (name, data, "image/png")) for name, data in files]
    answer: Response = client.post(
        URL, data={**FORM, **extra, "csrf_token": token}, files=parts or None
    )
    return answer


def test_files_previewed_stay_attached_for_the_sending(tmp_path: Path) -> None:
    client, home = _console(tmp_path)
    page = client.get(URL)
    assert 'enctype="multipart/form-data"' in page.text and 'name="files"' in page.text
    first = _post(client, [("marcas.png", b"\x89PNG" + bytes(5000))])
    assert first.status_code == 200, first.text
    text = first.text
    assert 'id="preview"' in text and "marcas.png" in text and "5 kB" in text
    token = STAGED.search(text)
    assert token is not None
    [staged] = (home / "console-uploads").glob(f"*-{token.group(1)}/marcas.png")
    assert staged.read_bytes() == b"\x89PNG" + bytes(5000)
    again = _post(client, [("licencia.pdf", b"%PDF")], staged=token.group(1))
    assert "marcas.png" in again.text and "licencia.pdf" in again.text


def test_a_file_over_the_nodes_cap_is_refused_naming_it(tmp_path: Path) -> None:
    client, home = _console(tmp_path, cap=4000)
    answer = _post(client, [("radiografía.png", bytes(4001))])
    assert answer.status_code == 422
    expected = "radiografía.png supera los 4 kB permitidos para un adjunto."
    assert expected in answer.text
    assert not list((home / "console-uploads").glob("*/radiografía.png"))


def test_a_request_announcing_more_than_its_files_may_weigh_is_refused_unread(
    tmp_path: Path,
) -> None:
    client, _ = _console(tmp_path, cap=1000)
    token = csrf_of(client.get(URL).text)
    limit = 1000 * 16 + 2**20
    answer = client.post(URL, content=b"x" * (limit + 1), headers={
        "content-type": "multipart/form-data; boundary=b", "x-csrf-token": token})  # fmt: skip
    assert answer.status_code == 413
    assert "Los archivos enviados juntos superan" in answer.text


def test_a_chunked_upload_over_the_limit_is_refused_as_it_streams(tmp_path: Path) -> None:
    """No Content-Length: the bytes are counted as they come, and the answer is the same 413."""
    client, home = _console(tmp_path, cap=1000)
    token = csrf_of(client.get(URL).text)
    limit = 1000 * 16 + 2**20

    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n'
        for _ in range(limit // 65536 + 2):
            yield bytes(65536)

    answer = client.post(URL, content=body(), headers={
        "content-type": "multipart/form-data; boundary=b", "x-csrf-token": token})  # fmt: skip
    assert answer.status_code == 413
    assert "Los archivos enviados juntos superan" in answer.text
    assert not list((home / "console-uploads").glob("*/a.png"))


def test_files_of_abandoned_drafts_are_removed_at_start_and_when_a_draft_stages(
    tmp_path: Path,
) -> None:
    """A draft previewed and never sent leaves files staged: once older than a session may live,
    they go when the console starts, and when another draft stages files."""
    client, home = _console(tmp_path)
    staging = home / "console-uploads"
    old = time.time() - ABSOLUTE_LIFETIME.total_seconds() - 60

    def abandoned(name: str) -> Path:
        folder = staging / name
        folder.mkdir(parents=True)
        (folder / "a.png").write_bytes(b"\x89PNG")
        for path in (folder / "a.png", folder):
            os.utime(path, (old, old))
        return folder

    first, recent = abandoned("0-" + "a" * 32), staging / ("0-" + "b" * 32)
    recent.mkdir()
    (recent / "b.png").write_bytes(b"\x89PNG")
    build_officer_console(home, clock=Clock())
    assert not first.exists() and recent.exists()

    second = abandoned("0-" + "c" * 32)
    answer = _post(client, [("marcas.png", b"\x89PNG" + bytes(50))])
    assert answer.status_code == 200
    assert not second.exists() and recent.exists()
    assert list(staging.glob("*/marcas.png"))


def test_only_the_forms_that_take_files_accept_a_large_body(tmp_path: Path) -> None:
    """An attachment of a few megabytes goes through the compose form; the same weight sent to
    the sign-in form (or any other) is refused with 413, announced or not."""
    client, home = _console(tmp_path)
    large = bytes(3 * 2**20)
    answer = _post(client, [("plano.png", b"\x89PNG" + large)])
    assert answer.status_code == 200 and list(home.glob("console-uploads/*/plano.png"))
    assert client.post("/login", content=large).status_code == 413
    form = {"content-type": "application/x-www-form-urlencoded"}
    chunked = client.post("/logout", content=iter([b"csrf_token=x&a=", large]), headers=form)
    assert chunked.status_code == 413 and "superan 1 MB" in chunked.text  # signed in: Spanish


def test_a_stranger_gets_no_upload_bound_even_on_the_compose_form(tmp_path: Path) -> None:
    """The uploads' bound is a signed-in officer's: without a session, a multipart body to the
    compose form is refused at the console's small bound, before anything parses it."""
    client, _ = _console(tmp_path)
    stranger = TestClient(client.app)
    large = bytes(3 * 2**20)
    files = [("files", ("x.png", b"\x89PNG" + large, "image/png"))]
    assert stranger.post(URL, data=FORM, files=files).status_code == 413
    form = {"content-type": "multipart/form-data; boundary=x"}
    chunked = stranger.post(URL, content=iter([b"--x\r\n", large]), headers=form)
    assert chunked.status_code == 413
    # the officer signed in sends the same weight
    assert _post(client, [("plano.png", b"\x89PNG" + large)]).status_code == 200


def test_a_stray_file_among_the_drafts_is_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "console-uploads" / "old-draft").mkdir(parents=True)
    (home / "console-uploads" / ".DS_Store").write_bytes(b"x")
    later = time.time() + 13 * 3600
    assert uploads.sweep(home, now=later) == ["old-draft"]
    assert (home / "console-uploads" / ".DS_Store").exists()

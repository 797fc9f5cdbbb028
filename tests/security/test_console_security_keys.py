"""Security keys in the console over HTTP: the password alone opens no page, an officer without a
key is refused as for a wrong code, another officer's key does not sign in and its failures lock
the account, and every key request carries the session's CSRF token."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from services.core.accounts import MAX_FAILURES
from services.core.security_keys import SecurityKeys
from services.node.accounts import open_accounts
from tests.security.test_console_web import Console, opens_account
from tests.support.authenticator import SoftAuthenticator
from tests.support.console import PASSWORD, DemoOfficer, csrf_of

ORIGIN = "http://testserver"
META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def _token(client: TestClient, path: str) -> str:
    found = META.search(client.get(path).text)
    assert found, path
    return found.group(1)


def _enrol(console: Console, who: DemoOfficer) -> SoftAuthenticator:
    client = console.signed_in(who)
    headers = {"X-CSRF-Token": _token(client, "/account")}
    options = client.post("/account/keys/options", headers=headers, content="{}")
    assert options.status_code == 200, options.text
    device = SoftAuthenticator(origin=ORIGIN)
    done = client.post("/account/keys", headers=headers, content=device.create(options.text))
    assert done.json() == {"next": "/account?key=enrolled"}
    client.post("/logout", data={"csrf_token": headers["X-CSRF-Token"]})
    return device


def _password_only(console: Console, who: DemoOfficer, password: str = PASSWORD) -> str:
    client = console.client
    page = client.get("/login")
    answer = client.post("/login", data={"csrf_token": csrf_of(page.text), "login": who.login,
                                         "password": password, "code": ""},
                         follow_redirects=False)  # fmt: skip
    return answer.headers.get("location", str(answer.status_code))


def test_password_and_key_sign_in_and_the_password_alone_opens_no_page(tmp_path: Path) -> None:
    console = Console(tmp_path)
    device = _enrol(console, console.ana)
    assert _password_only(console, console.ana) == "/login/key"
    client = console.client
    assert client.get("/account", follow_redirects=False).headers["location"] == "/login"
    headers = {"X-CSRF-Token": _token(client, "/login/key")}
    enrol = client.post("/account/keys/options", headers=headers, content="{}",
                        follow_redirects=False)  # fmt: skip
    assert enrol.status_code == 303  # enrolling another key needs a complete session
    assert client.post("/login/key/options", content="{}").status_code == 403  # no CSRF token
    options = client.post("/login/key/options", headers=headers, content="{}").text
    half_open = client.cookies[console.app.state.config.session_cookie]
    signed = client.post("/login/key", headers=headers, content=device.get(options))
    assert signed.json() == {"next": "/inbox"}
    assert client.get("/account", follow_redirects=False).status_code == 200
    # session fixation: the key's answer completes the session under a new token
    complete = client.cookies[console.app.state.config.session_cookie]
    assert complete != half_open
    assert opens_account(console, complete) == 200
    assert opens_account(console, half_open) == 303  # the half-open token opens nothing any more


def test_an_officer_without_a_key_is_refused_as_for_a_wrong_code(tmp_path: Path) -> None:
    console = Console(tmp_path)
    assert _password_only(console, console.bia) == "401"
    assert _password_only(console, console.bia, "a wrong password here") == "401"


def test_another_officers_key_is_refused_and_its_failures_lock_the_account(
    tmp_path: Path,
) -> None:
    console = Console(tmp_path)
    _enrol(console, console.ana)
    bias_key = _enrol(console, console.bia)
    assert _password_only(console, console.ana) == "/login/key"
    client = console.client
    headers = {"X-CSRF-Token": _token(client, "/login/key")}
    for _ in range(MAX_FAILURES):
        options = client.post("/login/key/options", headers=headers, content="{}").text
        refused = client.post("/login/key", headers=headers, content=bias_key.get(options))
        assert refused.status_code == 400
        assert refused.json()["error"].startswith("La respuesta de la llave de seguridad")
    locked = client.post("/login/key", headers=headers, content="{}")
    assert locked.status_code == 429 and "bloqueada" in locked.json()["error"]
    keys = SecurityKeys(open_accounts(console.home / "store.sqlite")[1])
    assert keys.of("bia")[0].sign_count == 0  # bia's key was never counted as used for ana


def _wrong_code(console: Console, who: DemoOfficer) -> str:
    client = console.client
    page = client.get("/login")
    answer = client.post("/login", data={"csrf_token": csrf_of(page.text), "login": who.login,
                                         "password": PASSWORD, "code": "000000"},
                         follow_redirects=False)  # fmt: skip
    return answer.headers.get("location", str(answer.status_code))


def test_the_password_alone_does_not_forget_the_failed_codes_before_it(tmp_path: Path) -> None:
    """Someone holding a key holder's password must not guess codes forever by signing in with
    the password alone between rounds of guesses: only the key's answer clears the count."""
    console = Console(tmp_path)
    _enrol(console, console.ana)
    accounts = open_accounts(console.home / "store.sqlite")[0]
    for _ in range(MAX_FAILURES - 1):
        assert _wrong_code(console, console.ana) == "401"
    assert _password_only(console, console.ana) == "/login/key"
    assert accounts.get("ana").locked_until is None
    assert _wrong_code(console, console.ana) == "401"  # the fifth failure in a row
    assert accounts.get("ana").locked_until is not None


def test_a_console_opened_by_its_ip_address_says_to_open_it_by_name(tmp_path: Path) -> None:
    console = Console(tmp_path, base="http://127.0.0.1:8080", configured_origin=False)
    client = console.signed_in(console.ana)
    headers = {"X-CSRF-Token": _token(client, "/account")}
    refused = client.post("/account/keys/options", headers=headers, content="{}")
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        "Las llaves de seguridad necesitan el nombre de la consola, no la dirección 127.0.0.1: "
        "ábrala como localhost en esta máquina o con el nombre de su certificado."
    )


def test_a_request_under_another_host_neither_enrols_nor_uses_a_key_for_it(
    tmp_path: Path,
) -> None:
    """The relying party is the name the console is served under: a request naming another Host
    (a phishing proxy in front of the console) gets options for the console's own RP ID, and an
    answer made for the other name is refused."""
    console = Console(tmp_path)  # served under http://testserver
    device = _enrol(console, console.ana)
    client = console.signed_in(console.bia)
    headers = {"X-CSRF-Token": _token(client, "/account"), "Host": "evil.example"}
    options = client.post("/account/keys/options", headers=headers, content="{}")
    assert options.status_code == 200, options.text
    assert json.loads(options.text)["rp"]["id"] == "testserver"
    evil = SoftAuthenticator(origin="http://evil.example")
    for_evil = {**json.loads(options.text), "rp": {"id": "evil.example", "name": "x"}}
    enrolled = client.post("/account/keys", headers=headers, content=evil.create(for_evil))
    assert enrolled.status_code == 400
    client.post("/account/keys/options", headers=headers, content="{}")
    enrolled = client.post("/account/keys", headers=headers, content=evil.create(options.text))
    assert enrolled.status_code == 400  # the right RP ID, reported from the wrong origin
    assert SecurityKeys(open_accounts(console.home / "store.sqlite")[1]).of("bia") == []

    client.post("/logout", data={"csrf_token": headers["X-CSRF-Token"]})
    assert _password_only(console, console.ana) == "/login/key"
    headers = {"X-CSRF-Token": _token(client, "/login/key"), "Host": "evil.example"}
    options = client.post("/login/key/options", headers=headers, content="{}")
    assert json.loads(options.text)["rpId"] == "testserver"
    relayed = SoftAuthenticator(origin="http://evil.example", key=device.key,
                                credential_id=device.credential_id)  # fmt: skip
    refused = client.post("/login/key", headers=headers,
                          content=relayed.get(options.text, rp_id="evil.example"))  # fmt: skip
    assert refused.status_code == 400
    assert client.get("/account", follow_redirects=False).headers["location"] == "/login"


def test_without_a_public_origin_keys_work_only_under_a_loopback_name(tmp_path: Path) -> None:
    """No name configured: development on this machine (localhost) works as before; any other
    Host is refused rather than taken as the relying party."""
    console = Console(tmp_path, configured_origin=False)  # reached as testserver
    client = console.signed_in(console.ana)
    headers = {"X-CSRF-Token": _token(client, "/account")}
    refused = client.post("/account/keys/options", headers=headers, content="{}")
    assert refused.status_code == 400
    assert "--public-origin" in refused.json()["error"]
    local = Console(tmp_path / "local", base="http://localhost:8080", configured_origin=False)
    client = local.signed_in(local.ana)
    headers = {"X-CSRF-Token": _token(client, "/account")}
    options = client.post("/account/keys/options", headers=headers, content="{}")
    assert options.status_code == 200
    assert json.loads(options.text)["rp"]["id"] == "localhost"
    device = SoftAuthenticator(origin="http://localhost:8080")
    done = client.post("/account/keys", headers=headers, content=device.create(options.text))
    assert done.json() == {"next": "/account?key=enrolled"}

"""The console's web foundation refuses what it must: no session, a wrong CSRF token, too many
sign-in attempts, a disabled officer; and sends its security headers on every response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.console.officer.app import build_officer_console
from services.console.web.security import CONTENT_SECURITY_POLICY
from services.core.accounts import MAX_FAILURES, Accounts
from services.core.keys import NodeKeys
from tests.support.console import (
    Clock,
    DemoOfficer,
    add_officers,
    csrf_of,
    node_home,
    officer,
    sign_in,
)


class Console:
    def __init__(self, tmp_path: Path, *, secure: bool = False) -> None:
        self.clock = Clock()
        self.home = node_home(tmp_path, "MEX")
        # the node's own keys, as `cifta node init` leaves them: signed-in pages open the store
        NodeKeys.generate("MEX").save(self.home / "keys.json", None)
        self.ana = officer("ana", language="es")
        self.bia = officer("bia", language="pt", role="supervisor")
        self.accounts: Accounts = add_officers(self.home, [self.ana, self.bia], self.clock.now)
        self.app = build_officer_console(self.home, secure=secure, clock=self.clock)
        base = "https://testserver" if secure else "http://testserver"
        self.client = TestClient(self.app, base_url=base)

    def signed_in(self, who: DemoOfficer) -> TestClient:
        answer = sign_in(self.client, who, self.clock)
        assert answer.status_code == 303, answer.text
        return self.client


@pytest.fixture
def console(tmp_path: Path) -> Console:
    return Console(tmp_path)


def _page_paths(app: Any) -> list[str]:
    """Every GET page without a path parameter, read from the app's own route table (the
    OpenAPI document: FastAPI wraps an included router's routes, so ``app.routes`` shows none of
    them). Checked against pages known to exist, so that the tests below never run on nothing."""
    paths = sorted(
        path for path, methods in app.openapi()["paths"].items()
        if "get" in methods and "{" not in path
    )  # fmt: skip
    assert {"/inbox", "/account", "/compose", "/tracing", "/deadlines", "/search"} <= set(paths)
    return paths


def test_pages_without_a_session_send_the_browser_to_sign_in(console: Console) -> None:
    for path in _page_paths(console.app):
        if path in ("/login", "/healthz"):
            continue
        answer = console.client.get(path, follow_redirects=False)
        assert answer.status_code in (303, 401), path
        assert answer.headers["location" if answer.status_code == 303 else "hx-redirect"] in (
            "/login",
            "/inbox",
        ), path
    htmx = console.client.get("/account", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/login"


def test_state_changing_request_with_a_wrong_or_missing_csrf_token_is_refused(
    console: Console,
) -> None:
    client = console.signed_in(console.ana)
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", headers={"X-CSRF-Token": "forged"}).status_code == 403
    # still signed in: the refused requests changed nothing
    page = client.get("/account")
    assert page.status_code == 200 and "Ana Pérez" in page.text
    out = client.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_sign_in_form_posted_from_elsewhere_is_refused(console: Console) -> None:
    # login CSRF: no pre-session cookie from our own form
    answer = console.client.post(
        "/login", data={"login": "ana", "password": "x", "csrf_token": "guess"}
    )
    assert answer.status_code == 403
    page = console.client.get("/login")
    cross = console.client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "login": "ana", "password": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403


def test_security_headers_and_csp_on_every_page(console: Console) -> None:
    def check(answer: Any, what: str) -> None:
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, what
        assert answer.headers["x-content-type-options"] == "nosniff", what
        assert answer.headers["x-frame-options"] == "DENY", what
        assert answer.headers["referrer-policy"] == "no-referrer", what
        assert "server" not in answer.headers, what

    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    for path in _page_paths(console.app):
        check(console.client.get(path, follow_redirects=False), f"anonymous {path}")
    client = console.signed_in(console.ana)
    for path in _page_paths(console.app):
        answer = client.get(path, follow_redirects=False)
        check(answer, f"signed in {path}")
        if answer.headers.get("content-type", "").startswith("text/html"):
            assert "<script>" not in answer.text and " on" + "click=" not in answer.text, path
            assert answer.headers["cache-control"] == "no-store", path
    check(client.get("/no/such/page"), "404")
    check(client.get("/static/console.js"), "static")


def test_session_cookie_is_httponly_samesite_strict(console: Console) -> None:
    answer = sign_in(console.client, console.ana, console.clock)
    cookie = answer.headers["set-cookie"]
    assert "cifta_session=" in cookie and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()


def test_under_tls_the_cookie_is_secure_and_host_only_and_hsts_is_sent(tmp_path: Path) -> None:
    console = Console(tmp_path, secure=True)
    answer = sign_in(console.client, console.ana, console.clock)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-cifta_session=") and "Secure" in cookie
    assert answer.headers["strict-transport-security"].startswith("max-age=")


def test_lockout_after_repeated_failures_refuses_even_the_right_password(
    console: Console,
) -> None:
    for _ in range(MAX_FAILURES):
        refused = sign_in(console.client, console.ana, console.clock, password="wrong password")
        assert refused.status_code == 401
        assert "Inicio de sesión rechazado" in refused.text or "Sign-in refused" in refused.text
    locked = sign_in(console.client, console.ana, console.clock)
    assert locked.status_code == 429
    assert "cifta_session" not in locked.headers.get("set-cookie", "")
    console.clock.advance(16 * 60)
    assert sign_in(console.client, console.ana, console.clock).status_code == 303


def test_sign_in_attempts_from_one_address_are_rate_limited(tmp_path: Path) -> None:
    console = Console(tmp_path)
    console.app.state.login_limit.count = 3
    answers = [
        sign_in(console.client, console.bia, console.clock, password="nope nope nope").status_code
        for _ in range(4)
    ]
    assert answers == [401, 401, 401, 429]


def test_disabled_officers_session_ends_at_the_next_request(console: Console) -> None:
    client = console.signed_in(console.bia)
    assert client.get("/account").status_code == 200
    console.accounts.disable("bia", console.clock.now)
    assert client.get("/account", follow_redirects=False).headers["location"] == "/login"
    assert sign_in(client, console.bia, console.clock).status_code == 401


def test_sign_in_page_speaks_the_browsers_language_and_then_the_officers(
    console: Console,
) -> None:
    page = console.client.get("/login", headers={"Accept-Language": "fr-CA,fr;q=0.9"})
    assert '<html lang="fr">' in page.text and "Se connecter" in page.text
    client = console.signed_in(console.bia)  # profile: Portuguese
    account = client.get("/account", headers={"Accept-Language": "fr"})
    assert '<html lang="pt">' in account.text and "Minha conta" in account.text


def test_an_unattended_page_polling_by_itself_signs_out_after_the_idle_timeout(
    console: Console,
) -> None:
    """The inbox refreshes itself every few seconds; that is no one at the keyboard. Polls are let
    in while the session lives (this node has no hub, so the rows themselves may not come), and
    do not keep it alive; a page the officer asks for does."""
    from services.console.web.auth import POLL_HEADER
    from services.core.accounts import IDLE_TIMEOUT

    client = console.signed_in(console.ana)
    poll = {POLL_HEADER: "1", "HX-Request": "true"}
    step = IDLE_TIMEOUT.total_seconds() / 4
    for _ in range(3):  # three quarters of the idle timeout, polled all along
        console.clock.advance(step)
        assert client.get("/inbox/rows", headers=poll).status_code not in (401, 303)
    assert client.get("/account", follow_redirects=False).status_code == 200  # a person: touched
    for _ in range(3):
        console.clock.advance(step)
        assert client.get("/inbox/rows", headers=poll).status_code not in (401, 303)
    console.clock.advance(step + 1)  # idle timeout since the last page the officer asked for
    assert client.get("/inbox/rows", headers=poll, follow_redirects=False).status_code == 401
    assert client.get("/account", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(("handling", "officer_may"), [("H1", True), ("H2", False), ("H3", False)])
def test_an_officer_forwards_h1_but_only_a_supervisor_releases_h2_or_h3(
    tmp_path: Path, handling: str, officer_may: bool
) -> None:
    """Issue 14's roles: a supervisor approves H2/H3 releases. An officer posting the forward
    form directly for an H2 or H3 message is refused for its role; a supervisor passes that check
    (the release itself then follows the Convention's rules in the application layer)."""
    import hashlib
    from datetime import UTC, datetime

    from schemas import HandlingCode
    from services.core.envelope import peek_header
    from services.node.store import Store
    from services.testbed.hub import build_hub
    from tests.builders import sealed

    hub = build_hub(tmp_path, ("MEX", "USA", "COL"))  # a node home that opens; no server needed
    home = hub.node_settings("MEX", tmp_path).home
    hub.node_settings("MEX", tmp_path).save()
    clock = Clock()
    ana, bia = officer("ana", language="es"), officer("bia", language="pt", role="supervisor")
    add_officers(home, [ana, bia], clock.now)
    envelope = sealed(
        sender=hub.keys["USA"], to=[hub.keys["MEX"]], handling=HandlingCode(handling),
        now=datetime.now(UTC), **({"handling_note": "no further use"} if handling == "H3" else {}),
    )  # fmt: skip
    header = peek_header(envelope)
    store = Store(home / "store.sqlite")
    store.add_incoming(
        header, envelope, hashlib.sha256(envelope).hexdigest(), stored_at=datetime.now(UTC),
        stream_seq=1, answer=None, now=datetime.now(UTC),
    )  # fmt: skip
    store.close()
    client = TestClient(build_officer_console(home, clock=clock), base_url="http://testserver")

    def forward_as(who: DemoOfficer) -> int:
        assert sign_in(client, who, clock).status_code == 303
        token = csrf_of(client.get("/account").text)
        answer = client.post(
            f"/messages/{header.msg_id}/forward",
            data={"csrf_token": token, "forward_to": "COL"}, follow_redirects=False,
        )  # fmt: skip
        client.post("/logout", data={"csrf_token": token})
        return int(answer.status_code)

    assert (forward_as(ana) == 403) is not officer_may
    assert forward_as(bia) != 403  # the supervisor is not refused for a role

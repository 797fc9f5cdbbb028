"""The console's web foundation refuses what it must: no session, a wrong CSRF token, too many
sign-in attempts, a disabled officer; and sends its security headers on every response."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi.testclient import TestClient

from services.console.officer.app import build_officer_console
from services.console.web.auth import PasswordVerifier
from services.console.web.security import CONTENT_SECURITY_POLICY, RateLimit, client_key
from services.core.accounts import MAX_FAILURES, Accounts
from services.core.keys import NodeKeys
from tests.support.console import (
    PASSWORD,
    Clock,
    DemoOfficer,
    add_officers,
    csrf_of,
    node_home,
    officer,
    sign_in,
)

ROOT = Path(__file__).resolve().parents[2]


class Console:
    def __init__(
        self, tmp_path: Path, *, secure: bool = False, base: str | None = None,
        configured_origin: bool = True, **config: object,
    ) -> None:  # fmt: skip
        self.clock = Clock()
        self.home = node_home(tmp_path, "MEX")
        # the node's own keys, as `cifta node init` leaves them: signed-in pages open the store
        NodeKeys.generate("MEX").save(self.home / "keys.json", None)
        self.ana = officer("ana", language="es")
        self.bia = officer("bia", language="pt", role="supervisor")
        self.accounts: Accounts = add_officers(self.home, [self.ana, self.bia], self.clock.now)
        base = base or ("https://testserver" if secure else "http://testserver")
        origin = base if configured_origin else None  # served under the name it is reached by
        self.app = build_officer_console(
            self.home, secure=secure, clock=self.clock, public_origin=origin, **config
        )
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
    # a Host rewritten to match the foreign Origin: the console knows the name it is served under
    spoofed = console.client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "login": "ana", "password": "x"},
        headers={"Origin": "https://evil.example", "Host": "evil.example"},
    )
    assert spoofed.status_code == 403
    ours = console.client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "login": "ana", "password": "x"},
        headers={"Origin": "http://testserver"},
    )
    assert ours.status_code == 401  # past the CSRF check, refused for the password


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


def test_the_pre_session_cookie_is_what_the_operations_guide_says(tmp_path: Path) -> None:
    """docs/operations.md, "The pre-session cookie": its name and attributes, its HMAC-SHA256
    under a key derived (HKDF) from the console's key file, what the signature refuses, and what
    it does not: a pair the console issued to someone else."""
    console = Console(tmp_path, secure=True)
    name = console.app.state.config.presession_cookie
    page = console.client.get("/login")
    header = page.headers["set-cookie"]
    assert header.startswith(f"{name}=") and name == "__Host-cifta_presession"
    attributes = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
    assert {"httponly", "secure", "path", "samesite"} <= attributes and "domain" not in attributes
    assert "samesite=strict" in header.lower() and "path=/" in header.lower()
    token, _, mac = console.client.cookies[name].rpartition(".")
    assert token == csrf_of(page.text)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cifta console presession")
    key = hkdf.derive((console.home / "console-totp.key").read_bytes())
    digest = hmac.new(key, b"presession:" + token.encode(), hashlib.sha256).digest()
    assert mac == base64.urlsafe_b64encode(digest).decode().rstrip("=")

    # a pair the console issued to someone else passes the signature in another browser
    other = TestClient(console.app, base_url="https://testserver")
    other.cookies.set(name, console.client.cookies[name])
    form = {"csrf_token": token, "login": "ana", "password": "a wrong password"}
    assert other.post("/login", data=form).status_code == 401  # past CSRF, refused for the password
    # posted from another site, it is refused
    foreign = other.post("/login", data=form, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    # signed in: the pre-session cookie is removed
    answer = sign_in(console.client, console.ana, console.clock)
    removed = [h for h in answer.headers.get_list("set-cookie") if h.startswith(f'{name}=""')]
    assert len(removed) == 1 and "max-age=0" in removed[0].lower()

    guide = (ROOT / "docs" / "operations.md").read_text()
    section = guide[guide.index("**The pre-session cookie.**") :].split("\n\n", 1)[0]
    for fact in ("`cifta_presession`", f"`{name}`", "HMAC-SHA256", "HKDF-SHA256", "HttpOnly",
                 "SameSite=Strict", "It does not bind the cookie to one browser"):  # fmt: skip
        assert fact in " ".join(section.split()), fact


def _alert(html: str) -> str:
    found = re.search(r'<div class="alert" role="alert">(.*?)</div>', html, re.S)
    assert found, "no alert on the page"
    return found.group(1)


def test_lockout_after_repeated_failures_refuses_even_the_right_password(
    console: Console,
) -> None:
    for _ in range(MAX_FAILURES):
        refused = sign_in(console.client, console.ana, console.clock, password="wrong password")
        assert refused.status_code == 401
        assert "Inicio de sesión rechazado" in refused.text or "Sign-in refused" in refused.text
    locked = sign_in(console.client, console.ana, console.clock)
    assert locked.status_code == 401
    assert "cifta_session" not in locked.headers.get("set-cookie", "")
    console.clock.advance(16 * 60)
    assert sign_in(console.client, console.ana, console.clock).status_code == 303


def test_unknown_login_wrong_password_and_locked_account_get_the_same_answer(
    console: Console,
) -> None:
    """A stranger cannot tell which logins exist: same status, same words; the generic words say
    that repeated failures lock an account, which is how its officer learns it. The record keeps
    the real reason, never the password."""
    stranger = officer("nadie", language="en")
    unknown = sign_in(console.client, stranger, console.clock, password="wrong password")
    wrong = sign_in(console.client, console.ana, console.clock, password="wrong password")
    for _ in range(MAX_FAILURES - 1):
        sign_in(console.client, console.ana, console.clock, password="wrong password")
    locked = sign_in(console.client, console.ana, console.clock)  # the right password, locked
    answers = {(a.status_code, _alert(a.text)) for a in (unknown, wrong, locked)}
    assert len(answers) == 1
    status, text = answers.pop()
    assert status == 401 and f"{MAX_FAILURES} failed attempts" in text and "15 minutes" in text
    assert "nadie" not in str(console.accounts.actions())  # maybe a password in the wrong field
    reasons = [a["detail"]["reason"] for a in console.accounts.actions()]
    assert reasons[0] == "locked" and "wrong_password" in reasons and "unknown_login" in reasons
    assert not any(PASSWORD in str(a) or "wrong password" in str(a)
                   for a in console.accounts.actions())  # fmt: skip


def test_sign_in_verifies_the_password_off_the_event_loop(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one sign-in's Argon2 verification runs, another page answers: the page is answered
    before the verification is let finish (ordering, not timing)."""
    import services.core.accounts as account_store

    real = account_store.verify_password
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow(password_hash: str, password: str) -> bool:
        started.set()
        release.wait(5)  # on the event loop, this would hold every other request until then
        order.append("verified")
        return real(password_hash, password)

    monkeypatch.setattr(account_store, "verify_password", slow)
    with TestClient(console.app, base_url="http://testserver") as client:  # one event loop
        page = client.get("/login")
        form = {"csrf_token": csrf_of(page.text), "login": "ana", "password": "nope nope nope"}
        signing_in = threading.Thread(target=client.post, args=("/login",), kwargs={"data": form})
        signing_in.start()
        assert started.wait(5)

        def other_page() -> None:
            assert client.get("/healthz").status_code == 200
            order.append("page")
            release.set()

        other = threading.Thread(target=other_page)
        other.start()
        other.join(10)
        signing_in.join(10)
    assert order == ["page", "verified"]


def test_sign_in_attempts_beyond_the_verification_slots_get_the_rate_limit_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.core.accounts as account_store

    console = Console(tmp_path)
    console.app.state.password_verifier = PasswordVerifier(1)
    started, release = threading.Event(), threading.Event()

    def slow(password_hash: str, password: str) -> bool:
        started.set()
        release.wait(5)
        return False

    monkeypatch.setattr(account_store, "verify_password", slow)
    with TestClient(console.app, base_url="http://testserver") as client:
        page = client.get("/login")
        form = {"csrf_token": csrf_of(page.text), "login": "ana", "password": "nope nope nope"}
        first: list[int] = []
        signing_in = threading.Thread(
            target=lambda: first.append(client.post("/login", data=form).status_code)
        )
        signing_in.start()
        assert started.wait(5)
        second = client.post("/login", data=form)
        release.set()
        signing_in.join(10)
    assert second.status_code == 429 and first == [401]
    assert "Too many sign-in attempts" in _alert(second.text)


def test_ipv6_clients_are_counted_by_their_64_and_ipv4_by_address() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff:1:2:3")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("192.0.2.7") != client_key("192.0.2.8")


def test_sign_in_attempts_from_one_ipv6_64_are_limited_together(tmp_path: Path) -> None:
    """A host of a /64 takes a new address for each attempt: the limit still holds; a mapped
    IPv4 address counts as the IPv4 one."""
    console = Console(tmp_path)
    console.app.state.login_limit.count = 2

    def attempt(host: str) -> int:
        client = TestClient(console.app, base_url="http://testserver", client=(host, 50000))
        return int(sign_in(client, console.bia, console.clock, "nope nope nope").status_code)

    assert [attempt(f"2001:db8:7:7::{n}") for n in (1, 2, 3)] == [401, 401, 429]
    assert attempt("2001:db8:7:8::1") == 401  # the next /64 is someone else
    assert [attempt("192.0.2.9"), attempt("::ffff:192.0.2.9"), attempt("192.0.2.9")] == [
        401,
        401,
        429,
    ]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_sign_in_limit(
    tmp_path: Path,
) -> None:
    """Behind a reverse proxy every client arrives from the proxy's address: the address it
    forwards counts, but only when the request comes from the proxy configured as trusted."""
    console = Console(tmp_path, trusted_proxies=("10.0.0.2",))
    console.app.state.login_limit.count = 2

    def attempt(peer: str, forwarded: str) -> int:
        client = TestClient(console.app, base_url="http://testserver", client=(peer, 50000),
                            headers={"X-Forwarded-For": forwarded})  # fmt: skip
        return int(sign_in(client, console.bia, console.clock, "nope nope nope").status_code)

    proxy = "10.0.0.2"
    assert [attempt(proxy, "203.0.113.1") for _ in range(3)] == [401, 401, 429]
    assert attempt(proxy, "203.0.113.2") == 401  # another client behind the same proxy
    # the proxy appends the address it saw: what the client itself wrote before it is not taken
    assert attempt(proxy, "203.0.113.9, 203.0.113.1") == 429
    # anyone else's X-Forwarded-For is ignored: counted under their own address
    stranger = "198.51.100.7"
    assert [attempt(stranger, f"192.0.2.{n}") for n in (1, 2, 3)] == [401, 401, 429]


def test_no_trusted_proxy_means_no_forwarded_address_is_believed(tmp_path: Path) -> None:
    console = Console(tmp_path)
    console.app.state.login_limit.count = 2
    answers = []
    for n in (1, 2, 3):
        client = TestClient(console.app, base_url="http://testserver", client=("10.0.0.2", 1),
                            headers={"X-Forwarded-For": f"203.0.113.{n}"})  # fmt: skip
        answers.append(sign_in(client, console.bia, console.clock, "nope nope nope").status_code)
    assert answers == [401, 401, 429]
    with pytest.raises(ValueError, match="expected an IP address or network"):
        Console(tmp_path / "star", trusted_proxies=("*",))


def test_a_forged_pre_session_cookie_and_token_pair_is_refused(console: Console) -> None:
    """Someone who can plant a cookie (a sibling host, plain HTTP on the way) sets the pair
    themselves: the cookie is not signed by this console, so the sign-in form is refused."""
    cookie = console.app.state.config.presession_cookie
    for planted, token in (("forged-token", "forged-token"), ("forged.bad-mac", "forged")):
        client = TestClient(console.app, base_url="http://testserver")
        client.cookies.set(cookie, planted)
        answer = client.post(
            "/login",
            data={"csrf_token": token, "login": "ana", "password": PASSWORD},
        )
        assert answer.status_code == 403, planted
    page = console.client.get("/login")  # the console's own pair is accepted
    assert console.client.cookies[cookie] != csrf_of(page.text)
    ok = sign_in(console.client, console.ana, console.clock)
    assert ok.status_code == 303


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(tmp_path: Path) -> None:
    """No Content-Length to refuse it by: the bytes are counted as they arrive."""
    console = Console(tmp_path)
    small = build_officer_console(console.home, clock=console.clock, max_body_bytes=4096)
    client = TestClient(small, base_url="http://testserver")
    page = client.get("/login")
    sent: list[int] = []

    def body() -> Iterator[bytes]:
        yield f"csrf_token={csrf_of(page.text)}&login=ana&password=".encode()
        for _ in range(64):
            sent.append(1)
            yield b"x" * 1024

    answer = client.post(
        "/login", content=body(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 413, answer.text
    assert "exceed 4 kB" in answer.text
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    announced = client.post("/login", content=b"x" * 5000)
    assert announced.status_code == 413
    assert client.post("/login", data={"login": "ana"}).status_code == 403  # under it: CSRF


def test_a_translation_holding_markup_is_shown_as_text(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services import i18n

    real = i18n.gettext_for

    def hostile(language: str, message: str) -> str:
        text = real(language, message)
        return "<b>Sign in</b> & <script>" if message == "Sign in" else text

    monkeypatch.setattr(i18n, "gettext_for", hostile)
    page = console.client.get("/login", headers={"Accept-Language": "en"})
    assert "<b>Sign in</b>" not in page.text and "<script>" not in page.text
    assert "&lt;b&gt;Sign in&lt;/b&gt; &amp; &lt;script&gt;" in page.text


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


def test_the_rate_limiter_forgets_keys_whose_window_has_passed() -> None:
    """A scan from many addresses must not grow the limiter without bound: past MAX_KEYS, keys
    whose last attempt left the window are dropped (those still inside it are kept)."""
    now = [0.0]
    limit = RateLimit(count=3, window_s=60, clock=lambda: now[0])
    for i in range(RateLimit.MAX_KEYS):
        limit.allow(f"10.0.{i // 256}.{i % 256}")
    now[0] = 120.0
    limit.allow("192.0.2.1")
    limit.allow("192.0.2.2")
    assert set(limit._events) == {"192.0.2.1", "192.0.2.2"}


def opens_account(console: Console, token: str) -> int:
    """The status /account answers to a browser holding the session cookie ``token``."""
    client = TestClient(console.app, base_url="http://testserver")
    client.cookies.set(console.app.state.config.session_cookie, token)
    return client.get("/account", follow_redirects=False).status_code


def test_enrolling_the_second_factor_gives_the_session_a_new_token(console: Console) -> None:
    """Session fixation: a token planted before sign-in (or seen while half-open) must not be
    the token of the complete session."""
    console.accounts.add(login="caio", name="Caio Lima", position="Agente", agency="PF",
                         language="pt", role="officer", password=PASSWORD,
                         now=console.clock.now)  # fmt: skip
    client, cookie = console.client, console.app.state.config.session_cookie
    page = client.get("/login")
    answer = client.post("/login", data={"csrf_token": csrf_of(page.text), "login": "caio",
                                         "password": PASSWORD}, follow_redirects=False)  # fmt: skip
    assert answer.headers["location"] == "/enrol"
    half_open = client.cookies[cookie]
    session = console.accounts.session(half_open, console.clock.now)
    assert session is not None and session.pending_totp is not None
    code = pyotp.TOTP(session.pending_totp).at(console.clock.now)
    form = client.get("/enrol").text
    done = client.post("/enrol", data={"csrf_token": csrf_of(form), "code": code},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/inbox"
    complete = client.cookies[cookie]
    assert complete != half_open
    assert opens_account(console, complete) == 200
    assert opens_account(console, half_open) == 303  # sent to sign in: the old token opens nothing

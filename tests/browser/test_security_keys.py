"""A security key as the second factor, in Chromium with its virtual authenticator (DevTools
protocol, WebAuthn domain): an officer signed in with password and TOTP enrols a key from their
account page, signs out, and signs in with password and key; the key's answer replayed is
refused. The console is reached as ``localhost``: WebAuthn allows no IP address as RP ID, and
http://localhost is a secure context."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from services.node.accounts import open_accounts
from services.testbed.consoles import ConsoleNetwork, DemoOfficer
from tests.support.browser import WAIT_MS, sign_in

PASSWORD = "a demo password for officers"


def _localhost(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


def _with_virtual_key(page: Page) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "usb", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
    }})  # fmt: skip


def _password_only(page: Page, base: str, who: DemoOfficer) -> None:
    page.goto(f"{base}/login")
    page.locator("#f-login").fill(who.login)
    page.locator("#f-password").fill(who.password)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/login/key$"), timeout=WAIT_MS)


def test_officer_enrols_a_key_and_signs_in_with_password_and_key_a_replay_is_refused(
    browser: Browser, network: ConsoleNetwork
) -> None:
    base = _localhost(network.urls["MEX"])
    rosa = network.add_officer("MEX", DemoOfficer(
        "rosa.vidal", "Rosa Vidal", "Analista", "Guardia Nacional", "es", "officer", PASSWORD
    ))  # fmt: skip
    page = browser.new_context(locale="es-MX").new_page()
    violations: list[str] = []  # the script runs under the console's strict CSP
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    _with_virtual_key(page)
    sign_in(page, base, rosa)
    page.goto(f"{base}/account")
    page.get_by_role("button", name="Registrar una llave de seguridad").click()
    expect(page.locator("#security-keys .notice")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#keys tbody tr")).to_have_count(1)
    # the action log names what was done in Spanish, the code kept as the cell's title
    expect(page.locator("td[title=security_key_enrolled]")).to_have_text(
        "llave de seguridad registrada"
    )
    expect(page.locator("td[title=signed_in]").first).to_have_text("inicio de sesión")
    page.locator("form[action='/logout'] button").click()

    _password_only(page, base, rosa)
    with page.expect_request(lambda r: r.url.endswith("/login/key") and r.method == "POST") as sent:
        page.get_by_role("button", name="Usar mi llave de seguridad").click()
    expect(page).to_have_url(re.compile(r"/inbox"), timeout=WAIT_MS)
    answer = sent.value.post_data or ""
    assert violations == []
    page.locator("form[action='/logout'] button").click()

    _password_only(page, base, rosa)  # the same answer again, on a fresh challenge
    token = page.locator("meta[name=csrf-token]").get_attribute("content") or ""
    headers = {"X-CSRF-Token": token, "Content-Type": "application/json", "Origin": base}
    assert page.request.post(f"{base}/login/key/options", headers=headers, data="{}").ok
    replayed = page.request.post(f"{base}/login/key", headers=headers, data=answer)
    assert replayed.status == 400
    assert "no fue aceptada" in replayed.json()["error"]
    page.goto(f"{base}/inbox")
    expect(page).to_have_url(re.compile(r"/login$"))  # the session is still not complete

    accounts, database = open_accounts(network.homes["MEX"] / "store.sqlite")
    try:
        done = [(a["action"], a["detail"]) for a in accounts.actions("rosa.vidal")]
    finally:
        database.close()
    assert ("signed_in", {"second_factor": "security_key"}) in [
        (action, {"second_factor": detail.get("second_factor")}) for action, detail in done
    ]
    assert "security_key_enrolled" in [action for action, _ in done]
    assert ("sign_in_refused", "key.refused") in [(a, d.get("reason")) for a, d in done]

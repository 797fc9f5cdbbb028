"""The console in a real browser: a hostile body stays text, the CSP is on every page and the
browser reports no violation of it, a disabled officer's session ends, lockout holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Response, expect

from services.console.web.security import CONTENT_SECURITY_POLICY
from services.node.accounts import open_accounts
from services.testbed.consoles import ConsoleNetwork, DemoOfficer
from tests.support.browser import WAIT_MS, sign_in

PASSWORD = "a demo password for officers"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(2)><b>bold</b>'


class Watch:
    """What the browser saw: dialogs opened, CSP violations reported, pages without the CSP."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.violations: list[str] = []
        self.pages_without_csp: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("response", self._response)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(message.text)

    def _response(self, response: Response) -> None:
        document = response.request.resource_type == "document"
        if document and response.headers.get("content-security-policy") != CONTENT_SECURITY_POLICY:
            self.pages_without_csp.append(response.url)


def _officer(network: ConsoleNetwork, state: str, login: str, language: str) -> DemoOfficer:
    return network.add_officer(
        state, DemoOfficer(login, login.title(), "Analista", "Agencia", language, "officer",
                           PASSWORD),
    )  # fmt: skip


def test_hostile_body_is_inert_and_every_page_carries_the_csp(
    browser: Browser, network: ConsoleNetwork
) -> None:
    sender = _officer(network, "MEX", "mallory", "es")
    reader = _officer(network, "BRA", "carla", "pt")
    mex = browser.new_page()
    watch_mex = Watch(mex)
    sign_in(mex, network.urls["MEX"], sender)
    mex.goto(f"{network.urls['MEX']}/compose/info.concealment_methods")
    mex.locator("input[name=to][value=BRA]").check()
    mex.get_by_label("Título").fill(HOSTILE)
    mex.locator("#f-evaluation\\.source").select_option("C")
    mex.locator("#f-evaluation\\.information").select_option("3")
    mex.locator("#f-methods\\.0\\.conveyance").select_option("road_vehicle")
    mex.locator("#f-methods\\.0\\.description").fill(HOSTILE)
    mex.locator("#f-methods\\.0\\.detection").fill("Rayos X")
    mex.get_by_role("button", name="Vista previa").click()
    expect(mex.locator("#preview")).to_contain_text('<script>alert("x")</script>')
    mex.get_by_role("button", name="Sellar y enviar").click()
    expect(mex.locator(".notice")).to_be_visible(timeout=WAIT_MS)

    bra = browser.new_page()
    watch = Watch(bra)
    sign_in(bra, network.urls["BRA"], reader)
    row = bra.locator("#inbox-rows tr", has_text="Métodos de ocultação")
    expect(row).to_be_visible(timeout=WAIT_MS)
    row.get_by_role("link").click()
    fields = bra.locator("#message-fields")
    expect(fields).to_contain_text('<script>alert("x")</script><img src=x onerror=alert(2)>')
    assert fields.locator("script, img, b").count() == 0
    for path in ("/inbox", "/compose", "/tracing", "/deliveries", "/deadlines", "/search",
                 "/account", "/compose/tracing.request", "/no-such-page"):  # fmt: skip
        bra.goto(f"{network.urls['BRA']}{path}")
    assert watch.dialogs == [] and watch_mex.dialogs == []
    assert watch.violations == [] and watch_mex.violations == []
    assert watch.pages_without_csp == [] and watch_mex.pages_without_csp == []


def test_disabled_officers_session_ends_in_the_browser(
    browser: Browser, network: ConsoleNetwork
) -> None:
    who = _officer(network, "MEX", "dario", "es")
    page = browser.new_page()
    sign_in(page, network.urls["MEX"], who)
    accounts, database = open_accounts(network.homes["MEX"] / "store.sqlite")
    try:
        accounts.disable("dario", datetime.now(UTC))
    finally:
        database.close()
    page.get_by_role("link", name="Plazos").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    # the inbox's own polling is sent to sign in too (htmx follows HX-Redirect)
    page.goto(f"{network.urls['MEX']}/inbox")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_lockout_after_five_failures_in_the_browser(
    browser: Browser, network: ConsoleNetwork
) -> None:
    who = _officer(network, "BRA", "edson", "pt")
    page = browser.new_page(locale="pt-BR")
    for _ in range(5):
        page.goto(f"{network.urls['BRA']}/login")
        page.locator("#f-login").fill(who.login)
        page.locator("#f-password").fill("not the password")
        page.locator("#f-code").fill(who.code())
        page.get_by_role("button", name="Entrar").click()
        expect(page.locator(".alert")).to_contain_text("Acesso recusado")
    page.locator("#f-login").fill(who.login)
    page.locator("#f-password").fill(who.password)
    page.locator("#f-code").fill(who.code())
    with page.expect_navigation():  # the answers look alike: wait for this one's page
        page.get_by_role("button", name="Entrar").click()
    # locked: told as a stranger typing an unknown login is told, the lockout named in general
    locked = page.locator(".alert").inner_text()
    assert "bloqueiam por 15 minutos" in locked
    page.locator("#f-login").fill("ninguem")
    page.locator("#f-password").fill("not the password")
    with page.expect_navigation():
        page.get_by_role("button", name="Entrar").click()
    expect(page.locator(".alert")).to_have_text(locked)

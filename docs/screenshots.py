"""Take the README's screenshots of the officer console (``make screenshots``): inbox, a message,
a compose form and the deadlines dashboard, in Spanish (MEX) and Portuguese (BRA), on a demo
network with demo data, in Debian's Chromium."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from schemas.registry import example_body
from services.node.application import OfficerIdentity, open_node
from services.node.application.models import SendMessage
from services.node.application.procedure_models import FileTracingRequest
from services.testbed.console_demo import add_demo_officers
from services.testbed.consoles import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    ConsoleNetwork,
    DemoOfficer,
    console_network,
)

OUT = Path(__file__).resolve().parent / "screenshots"


def seed(network: ConsoleNetwork) -> None:
    """MEX sends an Art. XIII report and files a tracing request to BRA; BRA files one to MEX."""
    for sender, to in (("MEX", "BRA"), ("BRA", "MEX")):
        app = open_node(network.homes[sender])
        who = network.officers[sender][0]
        me = OfficerIdentity(name=who.name, position=who.position, agency=who.agency)
        routes = example_body("info.trafficking_routes").model_dump(mode="json")
        report = SendMessage(
            kind="info.trafficking_routes", body=routes, to=[to], officer=me, handling="H2",
            confidential=True, case_id=f"{sender}-2026-0412",
        )  # fmt: skip
        app.send(report)
        trace = example_body("tracing.request").model_dump(mode="json")
        app.file_trace(FileTracingRequest(body=trace, to=[to], officer=me))
        app.close()


def sign_in(page: Page, url: str, who: DemoOfficer) -> None:
    page.goto(f"{url}/login")
    page.locator("#f-login").fill(who.login)
    page.locator("#f-password").fill(who.password)
    page.locator("#f-code").fill(who.code())
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page.locator("#inbox-rows")).to_be_visible()


def shoot(page: Page, url: str, language: str) -> None:
    page.goto(f"{url}/inbox?direction=all")
    expect(page.locator("#inbox-rows tr")).to_have_count(4, timeout=30_000)
    page.screenshot(path=OUT / f"inbox-{language}.png", full_page=True)
    page.locator("#inbox-rows a").first.click()
    page.screenshot(path=OUT / f"message-{language}.png", full_page=True)
    page.goto(f"{url}/compose/info.trafficking_routes")
    page.screenshot(path=OUT / f"compose-{language}.png", full_page=True)
    page.goto(f"{url}/deadlines")
    page.screenshot(path=OUT / f"deadlines-{language}.png", full_page=True)


def main() -> int:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as root, console_network(Path(root)) as network:
        add_demo_officers(network)
        seed(network)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            for state, language in (("MEX", "es"), ("BRA", "pt")):
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                sign_in(page, network.urls[state], network.officers[state][0])
                shoot(page, network.urls[state], language)
            browser.close()
    print(f"screenshots in {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

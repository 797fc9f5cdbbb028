"""What an officer does in the browser, as steps the browser tests share."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from services.testbed.consoles import DemoOfficer

#: A condition in the browser is awaited this long (then the test fails, naming it).
WAIT_MS = 20_000


def sign_in(page: Page, base: str, officer: DemoOfficer) -> None:
    """Sign in with password and the current TOTP code, as the officer would type them."""
    page.goto(f"{base}/login")
    page.locator("#f-login").fill(officer.login)
    page.locator("#f-password").fill(officer.password)
    page.locator("#f-code").fill(officer.code())
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/inbox"), timeout=WAIT_MS)


def in_days(days: int) -> str:
    """A time ``days`` from now as a datetime-local input takes it (UTC)."""
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def reload_until(page: Page, text: str, selector: str, timeout_ms: int = WAIT_MS) -> None:
    """Reload ``page`` until ``selector`` contains ``text`` (pages without live updates), or
    fail after ``timeout_ms``."""
    deadline = datetime.now(UTC) + timedelta(milliseconds=timeout_ms)
    while text not in page.locator(selector).inner_text():
        assert datetime.now(UTC) < deadline, f"{text!r} never appeared in {selector}"
        page.wait_for_timeout(250)
        page.reload()

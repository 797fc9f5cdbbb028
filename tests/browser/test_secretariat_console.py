"""The secretariat's console in a real Chromium against a real hub, nodes and audit service: a
registration approved by typing the key id read out by telephone (a wrong one refused without
revealing the right one), a state going offline while its backlog grows, a witness falling
behind, the statistics exported as CSV; in Spanish and in French."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from schemas.audit import EventType
from services.secretariat.audit_desk import audit_view
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.support.audit import running_audit
from tests.support.console import PASSWORD, DemoOfficer
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node, send_routes_report
from tests.support.secretariat import console_app, file_registration, operators, serving

WITNESS = {"witness_interval_s": 0.2}


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        # pytest-playwright's fixtures are synchronous; these tests run nodes in their own loop
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in(browser: Browser, base: str, who: DemoOfficer) -> Page:
    """A page of ``who``, signed in with password and the current TOTP code."""
    context = await browser.new_context(base_url=base, accept_downloads=True)
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("#f-login", who.login)
    await page.fill("#f-password", PASSWORD)
    await page.fill("#f-code", who.code(datetime.now(UTC)))
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/network")
    return page


async def test_a_registration_is_approved_by_typing_the_key_id_read_out(
    hub: Hub, chromium: Browser
) -> None:
    lucia, _ = operators()
    request_id, kid = file_registration(hub, "BRA")
    with serving(console_app(hub, (lucia,))) as base:
        page = await signed_in(chromium, base, lucia)
        await page.click("nav >> text=Directorio")
        await page.click(f"a[href='/directory/requests/{request_id}']")
        await expect(page.locator("h1")).to_have_text("Revisar la solicitud de BRA")
        assert kid not in await page.content()  # never shown before it is typed

        await page.fill("#f-key_id", "ffff 0000 ffff 0000 ffff 0000 ffff 0000")
        await page.click("#approve button[type=submit]")
        await expect(page.locator("#e-key_id")).to_contain_text("no es el de la solicitud de BRA")
        assert kid not in await page.content() and hub.directory.entry("BRA") is None

        await page.fill("#f-key_id", " ".join(kid[i : i + 4] for i in range(0, 32, 4)).upper())
        await page.click("#approve button[type=submit]")
        await expect(page.locator(".notice")).to_contain_text("BRA aprobado")
        assert hub.directory.entry("BRA") is not None
        await page.click("text=Ver la entrada de BRA")
        await expect(page.locator("#keys")).to_contain_text(kid)


async def test_a_state_goes_offline_and_its_backlog_grows_without_a_reload(
    hub: Hub, chromium: Browser, tmp_path: Path
) -> None:
    lucia, _ = operators()
    with serving(console_app(hub, (lucia,))) as base:
        async with running_node(hub, "MEX", tmp_path) as mex:
            page = await signed_in(chromium, base, lucia)
            col = page.locator("#state-COL")
            async with running_node(hub, "COL", tmp_path):
                await expect(col).to_have_attribute("data-connected", "yes", timeout=15_000)
                await expect(col.locator(".connected")).to_have_text("Conectado")
            await expect(col).to_have_attribute("data-connected", "no", timeout=15_000)
            await expect(col.locator(".connected")).to_have_text("Desconectado")
            for _ in range(3):
                send_routes_report(mex, ["COL"])
            # the page asks again every half second: no reload
            await expect(col.locator(".backlog")).to_have_text("3", timeout=15_000)
            await expect(page.locator("#state-MEX")).to_have_attribute("data-connected", "yes")


async def test_a_witness_falls_behind_and_the_statistics_export_as_csv(
    hub: Hub, chromium: Browser, tmp_path: Path
) -> None:
    _, claire = operators()
    for party in ("MEX", "USA"):
        hub.node_settings(party, tmp_path, **WITNESS).save()
    with serving(console_app(hub, (claire,))) as base:
        async with (
            running_audit(hub, checkpoint_every_s=0.1) as audit,
            running_node(hub, "MEX", tmp_path, **WITNESS) as mex,
        ):
            async with running_node(hub, "USA", tmp_path, **WITNESS):
                to_usa = send_routes_report(mex, ["USA"])
                await eventually(
                    lambda: (
                        {"witness/MEX", "witness/USA"}
                        <= {w for _, w, _ in audit.log.cosignatures()}
                    ),
                    what="both witnessing",
                )
            to_col = send_routes_report(mex, ["COL"])

            def both_stored() -> bool:  # what the statistics count: each report's stored leaf
                return all(
                    any(e.event is EventType.STORED for _, e in audit.log.leaves_of(m.msg_id))
                    for m in (to_usa, to_col)
                )

            # the log grows with more than these two (receipts, the nodes' events): USA falling
            # behind does not say that both reports are in it yet
            await eventually(both_stored, what="both reports' stored leaves in the log")

            def usa_behind() -> bool:  # the log grows; MEX cosigns; USA is stopped
                w = {v.state: v for v in audit_view(hub.home).witnesses}
                return w["USA"].entries_behind > 0 and w["MEX"].entries_behind == 0

            await eventually(usa_behind, what="USA behind while MEX is current")
            page = await signed_in(chromium, base, claire)
            await page.click("nav >> text=Journal d'audit")
            usa = page.locator("#witness-USA")
            await expect(usa.locator(".behind")).to_contain_text("entrées de retard")
            await expect(page.locator("#witness-COL")).to_contain_text("Jamais")

            await page.click("text=Vérifier maintenant")
            await expect(page.locator("#verdict")).to_contain_text(
                "Le journal est intact", timeout=20_000
            )

            await page.click("nav >> text=Statistiques")
            await expect(page.locator("#by-family")).to_contain_text(
                "Échange d'informations (art. XIII)"
            )
            month = datetime.now(UTC).strftime("%Y-%m")
            # the chart draws the same figures: this month's information exchanges, two
            await expect(page.locator("#chart-by-family rect.series-info title")).to_have_text(
                f"{month} · Échange d'informations (art. XIII): 2"
            )
            # coloured by its family's class from the stylesheet (no inline style under the CSP)
            fill = "e => getComputedStyle(e).fill"
            bar = page.locator("#chart-by-family rect.series-info")
            assert await bar.evaluate(fill) == "rgb(11, 79, 138)"
            async with page.expect_download() as download_info:
                await page.click("#messages-csv")
            download = await download_info.value
            text = Path(await download.path()).read_text()
            rows = list(csv.DictReader(io.StringIO(text)))
            info = [r for r in rows if r["family"] == "info" and r["month"] == month]
            assert info and int(info[0]["messages"]) == 2

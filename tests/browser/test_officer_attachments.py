"""Titles, dates and attachments in the consoles, in Chromium, over a real network: a photograph
attached in the Spanish console goes up with its progress shown, stays attached from the preview
to the sending, arrives in the Portuguese console under its title, is found by date, and
downloads as it was sent once the node has fetched and verified it."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from services.testbed.consoles import ConsoleNetwork, DemoOfficer
from tests.support.browser import WAIT_MS, reload_until, sign_in

PASSWORD = "a demo password for officers"


def _page(browser: Browser, network: ConsoleNetwork, state: str, who: DemoOfficer) -> Page:
    network.add_officer(state, who)
    page = browser.new_context(
        locale={"es": "es-MX", "pt": "pt-BR"}[who.language], accept_downloads=True
    ).new_page()
    sign_in(page, network.urls[state], who)
    return page


def test_a_photograph_attached_in_spanish_downloads_in_portuguese_as_sent(
    browser: Browser, network: ConsoleNetwork, tmp_path: Path
) -> None:
    photo = tmp_path / "marcas-serie.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300_000))  # five chunks
    eva = DemoOfficer("eva.rios", "Eva Ríos", "Analista", "Fiscalía General de la República",
                      "es", "officer", PASSWORD)  # fmt: skip
    caio = DemoOfficer("caio.melo", "Caio Melo", "Oficial de enlace", "Polícia Federal", "pt",
                       "officer", PASSWORD)  # fmt: skip
    mex = _page(browser, network, "MEX", eva)
    mex.goto(f"{network.urls['MEX']}/compose/info.concealment_methods")
    mex.locator("input[name=to][value=BRA]").check()
    mex.get_by_label("Título").fill("Cañones en electrodomésticos")
    mex.locator("#f-evaluation\\.source").select_option("B")
    mex.locator("#f-evaluation\\.information").select_option("2")
    mex.locator("#f-methods\\.0\\.conveyance").select_option(index=1)
    mex.locator("#f-methods\\.0\\.description").fill("Cañones dentro de lavadoras.")
    mex.locator("#f-methods\\.0\\.detection").fill("Radiografía de la carga.")
    mex.locator("#f-files").set_input_files(str(photo))
    mex.get_by_role("button", name="Vista previa").click()
    expect(mex.locator("#preview")).to_be_visible(timeout=WAIT_MS)
    expect(mex.locator("#staged")).to_contain_text("marcas-serie.png")  # kept for the sending
    mex.get_by_role("button", name="Sellar y enviar").click()
    expect(mex.locator(".notice")).to_contain_text("BRA", timeout=WAIT_MS)

    bra = _page(browser, network, "BRA", caio)
    row = bra.locator("#inbox-rows tr", has_text="Métodos de ocultação")
    expect(row).to_be_visible(timeout=WAIT_MS)
    today = datetime.now(UTC).date()
    bra.goto(f"{network.urls['BRA']}/inbox?until={today - timedelta(days=1)}")
    expect(bra.locator("#inbox-rows tr", has_text="Métodos de ocultação")).to_have_count(0)
    bra.goto(f"{network.urls['BRA']}/inbox?since={today}")
    row = bra.locator("#inbox-rows tr", has_text="Métodos de ocultação")
    row.get_by_role("link").click()
    expect(bra.locator("#attachments")).to_contain_text("marcas-serie.png")
    reload_until(bra, "marcas-serie.png", "#attachments a")  # fetched and verified by the node
    with bra.expect_download() as download:
        bra.locator("#attachments a", has_text="marcas-serie.png").click()
    assert download.value.suggested_filename == "marcas-serie.png"
    assert Path(download.value.path()).read_bytes() == photo.read_bytes()
    assert not re.search(r'"key"', bra.content())

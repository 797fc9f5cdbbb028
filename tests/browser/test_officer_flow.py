"""Officers of two states at work in their consoles, in Chromium, over a real network: an Art.
XIII report written in Spanish arrives in the Portuguese console without a reload, is opened
(audited under the officer's name) and answered; a tracing request is filed, answered and counted
in the statistics; a controlled delivery gets a supervisor's consent."""

from __future__ import annotations

import re
from datetime import date, timedelta

from playwright.sync_api import Browser, Page, expect

from schemas.registry import example_body
from services.node.application import OfficerIdentity, open_node
from services.node.application.models import SendMessage
from services.node.store import Store
from services.testbed.consoles import ConsoleNetwork, DemoOfficer
from tests.support.browser import WAIT_MS, in_days, reload_until, sign_in

PASSWORD = "a demo password for officers"


def _officer(network: ConsoleNetwork, state: str, login: str, name: str, language: str,
             role: str = "officer") -> DemoOfficer:  # fmt: skip
    agency = {"MEX": "Fiscalía General de la República", "BRA": "Polícia Federal"}[state]
    return network.add_officer(
        state, DemoOfficer(login, name, "Oficial de enlace", agency, language, role, PASSWORD)
    )


def _page(browser: Browser, network: ConsoleNetwork, state: str, who: DemoOfficer) -> Page:
    page = browser.new_context(locale={"es": "es-MX", "pt": "pt-BR"}[who.language]).new_page()
    sign_in(page, network.urls[state], who)
    return page


def _preview_and_send(page: Page) -> None:
    page.get_by_role("button", name=re.compile("Vista previa|Pré-visualizar")).click()
    expect(page.locator("#preview")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("button", name=re.compile("Sellar y enviar|Selar e enviar")).click()
    expect(page.locator(".notice")).to_be_visible(timeout=WAIT_MS)


def test_report_written_in_spanish_arrives_in_portuguese_without_reload_and_is_answered(
    browser: Browser, network: ConsoleNetwork
) -> None:
    ana = _officer(network, "MEX", "ana.torres", "Ana Torres Medina", "es")
    joao = _officer(network, "BRA", "joao.lima", "João Lima", "pt")
    bra = _page(browser, network, "BRA", joao)
    expect(bra.locator("h1")).to_have_text("Caixa de entrada")
    bra.evaluate("window.notReloaded = true")  # gone if the page reloads

    mex = _page(browser, network, "MEX", ana)
    mex.goto(f"{network.urls['MEX']}/compose")
    mex.get_by_role("link", name="Rutas de tráfico").click()
    mex.locator("input[name=to][value=BRA]").check()
    mex.locator("#f-case_id").fill("FGR-2026-0412")
    mex.get_by_label("Título").fill("Corredor del Pacífico: <script>alert(1)</script> rifles")
    mex.locator("#f-evaluation\\.source").select_option("B")
    mex.locator("#f-evaluation\\.information").select_option("2")
    mex.locator("#f-routes\\.0\\.legs\\.0\\.origin").select_option("USA")
    mex.locator("#f-routes\\.0\\.legs\\.0\\.destination").select_option("BRA")
    mex.locator("#f-routes\\.0\\.legs\\.0\\.mode").select_option("sea")
    mex.locator("#f-routes\\.0\\.commodities").fill("munición 5.56 mm")
    _preview_and_send(mex)
    expect(mex.locator(".notice")).to_contain_text("BRA")

    row = bra.locator("#inbox-rows tr", has_text="Rotas de tráfico")
    expect(row).to_be_visible(timeout=WAIT_MS)  # arrived through hub and node, page not reloaded
    assert bra.evaluate("window.notReloaded") is True
    expect(row).to_have_class(re.compile("unread"))
    row.get_by_role("link").click()
    expect(bra.locator("#message-fields")).to_contain_text("Rotas 1")
    expect(bra.locator("#message-fields")).to_contain_text("marítimo")
    title = bra.locator("#message-fields dd").first
    expect(title).to_have_text("Corredor del Pacífico: <script>alert(1)</script> rifles")
    msg_id = bra.url.rsplit("/", 1)[-1]
    store = Store(network.homes["BRA"] / "store.sqlite")
    try:
        assert [officer for officer, _ in store.opens(msg_id)] == [
            "João Lima (Oficial de enlace, Polícia Federal)"
        ]
    finally:
        store.close()

    bra.get_by_role("link", name="Rotas de tráfico").last.click()
    bra.get_by_label("Título").fill("Resposta: rota confirmada em Santos")
    bra.locator("#f-evaluation\\.source").select_option("A")
    bra.locator("#f-evaluation\\.information").select_option("1")
    bra.locator("#f-routes\\.0\\.legs\\.0\\.origin").select_option("MEX")
    bra.locator("#f-routes\\.0\\.legs\\.0\\.destination").select_option("BRA")
    bra.locator("#f-routes\\.0\\.legs\\.0\\.mode").select_option("sea")
    bra.locator("#f-routes\\.0\\.commodities").fill("munição 5.56 mm")
    _preview_and_send(bra)

    mex.goto(f"{network.urls['MEX']}/inbox")
    expect(mex.locator("#inbox-rows tr", has_text="Rutas de tráfico")).to_be_visible(
        timeout=WAIT_MS
    )
    expect(mex.locator("#inbox-rows")).to_contain_text("FGR-2026-0412")


def test_tracing_request_is_filed_answered_and_counted(
    browser: Browser, network: ConsoleNetwork
) -> None:
    luis = _officer(network, "MEX", "luis.ortega", "Luis Ortega", "es")
    rita = _officer(network, "BRA", "rita.alves", "Rita Alves", "pt")
    mex = _page(browser, network, "MEX", luis)
    mex.goto(f"{network.urls['MEX']}/tracing")
    mex.get_by_role("link", name="Nueva solicitud de rastreo").click()
    mex.locator("input[name=to][value=BRA]").check()
    mex.locator("#f-firearm\\.type").select_option("pistol")
    mex.locator("#f-firearm\\.model").fill("PT 840")
    mex.locator("#f-firearm\\.calibre").fill(".40 S&W")
    mex.locator("#f-firearm\\.markings\\.manufacturer").fill("Taurus Armas")
    mex.locator("#f-firearm\\.markings\\.country_of_manufacture").select_option("BRA")
    mex.locator("#f-firearm\\.markings\\.serial_number").fill("SFT12345")
    mex.locator("#f-seizure\\.kind").select_option("seized")
    mex.locator("#f-seizure\\.place").fill("Culiacán, Sinaloa")
    mex.locator("#f-seizure\\.country").select_option("MEX")
    mex.locator("#f-seizure\\.date").fill("2026-11-20")
    mex.locator("#f-seizure\\.circumstances").fill("Control vehicular.")
    mex.locator("#f-case_reference").fill("FGR/SIN/2026/1187")
    mex.locator("#f-priority").select_option("routine")
    _preview_and_send(mex)

    bra = _page(browser, network, "BRA", rita)
    row = bra.locator("#inbox-rows tr", has_text="Solicitação de rastreamento")
    expect(row).to_be_visible(timeout=WAIT_MS)
    row.get_by_role("link").click()
    bra.locator("#f-outcome").select_option("not_found")
    bra.locator("#f-narrative").fill("Sem registro de exportação deste número de série.")
    bra.get_by_role("button", name="Enviar a resposta").click()
    expect(bra.locator("#traces")).to_contain_text("respondida")

    mex.goto(f"{network.urls['MEX']}/tracing")
    stats = mex.locator("#trace-stats tr", has_text="Brasil")
    expect(stats).to_be_visible(timeout=WAIT_MS)
    reload_until(mex, "no encontrado", "#traces")  # the answer travels back through the hub
    expect(stats.locator("td").nth(2)).to_have_text("1")


def test_controlled_delivery_gets_consent_from_a_supervisor_only(
    browser: Browser, network: ConsoleNetwork
) -> None:
    sergio = _officer(network, "MEX", "sergio.ibarra", "Sergio Ibarra", "es")
    paulo = _officer(network, "BRA", "paulo.reis", "Paulo Reis", "pt")
    bia = _officer(network, "BRA", "bia.souza", "Beatriz Souza", "pt", role="supervisor")
    mex = _page(browser, network, "MEX", sergio)
    mex.goto(f"{network.urls['MEX']}/deliveries")
    mex.get_by_role("link", name="Proponer una entrega vigilada").click()
    mex.locator("#f-operation_id").fill("CD-MEX-2026-031")
    mex.locator("#f-participants").fill("MEX, BRA")
    mex.locator("#f-route\\.0\\.from_state").select_option("MEX")
    mex.locator("#f-route\\.0\\.to_state").select_option("BRA")
    mex.locator("#f-route\\.0\\.border_crossing").fill("Puerto de Santos")
    mex.locator("#f-route\\.0\\.mode").select_option("sea")
    mex.locator("#f-consignment\\.description").fill("Contenedor declarado como cerámica.")
    mex.locator("#f-consignment\\.items\\.0\\.line").fill("1")
    mex.locator("#f-consignment\\.items\\.0\\.category").select_option("firearm")
    mex.locator("#f-consignment\\.items\\.0\\.description").fill("Fusil AR-15")
    mex.locator("#f-consignment\\.items\\.0\\.quantity").fill("40")
    mex.locator("#f-window\\.start").fill(in_days(1))
    mex.locator("#f-window\\.end").fill(in_days(8))
    mex.locator("#f-objective").fill("Identificar la red receptora.")
    _preview_and_send(mex)

    agent = _page(browser, network, "BRA", paulo)
    row = agent.locator("#inbox-rows tr", has_text="Proposta de entrega vigiada")
    expect(row).to_be_visible(timeout=WAIT_MS)
    row.get_by_role("link").click()
    expect(agent.locator("#consent-title + p.banner")).to_contain_text("Somente um supervisor")
    token = agent.locator("meta[name=csrf-token]").get_attribute("content") or ""
    forbidden = agent.request.post(
        f"{network.urls['BRA']}/deliveries/CD-MEX-2026-031/consent",
        form={"proposer": "MEX"}, headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert forbidden.status == 403

    supervisor = _page(browser, network, "BRA", bia)
    supervisor.locator("#inbox-rows tr", has_text="Proposta de entrega vigiada").get_by_role(
        "link"
    ).click()
    supervisor.locator("#f-conditions").fill("Vigilância entregue à PF no porto de Santos")
    supervisor.get_by_role("button", name="Consentir").click()
    expect(supervisor.locator("main")).to_contain_text("CD-MEX-2026-031")
    expect(supervisor.locator("main")).to_contain_text("em andamento")
    mex.goto(f"{network.urls['MEX']}/deliveries")
    reload_until(mex, "en curso", "main")


def test_consent_to_share_an_h2_report_is_asked_and_granted_by_a_supervisor(
    browser: Browser, network: ConsoleNetwork
) -> None:
    sender = _officer(network, "MEX", "irma.sol", "Irma Sol", "es")
    chief = _officer(network, "MEX", "raul.vega", "Raúl Vega", "es", role="supervisor")
    reader = _officer(network, "BRA", "tiago.melo", "Tiago Melo", "pt")
    mex_node = open_node(network.homes["MEX"])
    try:
        body = example_body("info.money_laundering").model_dump(mode="json")
        me = OfficerIdentity(name=sender.name, position=sender.position, agency=sender.agency)
        mex_node.send(SendMessage(kind="info.money_laundering", body=body, to=["BRA"],
                                  officer=me, handling="H2"))  # fmt: skip
    finally:
        mex_node.close()

    bra = _page(browser, network, "BRA", reader)
    row = bra.locator("#inbox-rows tr", has_text="Técnicas de lavagem de dinheiro")
    expect(row).to_be_visible(timeout=WAIT_MS)
    row.get_by_role("link").click()
    expect(bra.locator("p.banner").first).to_contain_text("H2: não deve ser difundida")
    # Art. XII refuses the export of an H2 report: the rule and what lifts it in Portuguese
    bra.once("dialog", lambda dialog: dialog.accept())
    bra.locator("#export-form button[type=submit]").click()
    expect(bra.locator("main")).to_contain_text(
        "O artigo XII não permite isso por enquanto (art. XII, código de tratamento H2: não deve "
        "ser difundida sem a permissão de quem a forneceu): peça consentimento a MEX "
        "(divulgação fora do órgão).",
        timeout=WAIT_MS,
    )
    bra.go_back()
    bra.locator("#f-use").select_option("onward_sharing")
    bra.locator("#f-consent_to").fill("COL")
    bra.locator("#f-purpose").fill("Investigação conjunta com a Colômbia")
    bra.get_by_role("button", name="Pedir consentimento a quem a forneceu").click()
    expect(bra.locator(".notice")).to_contain_text("MEX", timeout=WAIT_MS)

    mex = _page(browser, network, "MEX", chief)
    asked = mex.locator("#inbox-rows tr", has_text="Solicitud de consentimiento para compartir")
    expect(asked).to_be_visible(timeout=WAIT_MS)
    asked.get_by_role("link").click()
    mex.locator("#f-decision").select_option("granted")
    mex.get_by_role("button", name="Enviar la respuesta").click()
    expect(mex.locator(".notice")).to_contain_text("BRA", timeout=WAIT_MS)

    bra.goto(f"{network.urls['BRA']}/inbox")
    answer = bra.locator("#inbox-rows tr", has_text="Resposta a um pedido de consentimento")
    expect(answer).to_be_visible(timeout=WAIT_MS)


def _day(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


def test_transfer_notice_filed_in_the_console_awaits_the_importers_confirmation(
    browser: Browser, network: ConsoleNetwork
) -> None:
    elena = _officer(network, "MEX", "elena.ruiz", "Elena Ruiz", "es")
    marta = _officer(network, "BRA", "marta.dias", "Marta Dias", "pt")
    mex = _page(browser, network, "MEX", elena)
    mex.goto(f"{network.urls['MEX']}/transfers")
    mex.get_by_role("link", name="Notificar una nueva transferencia").click()
    expect(mex.locator("input[name=to]")).to_have_count(0)  # the body names the recipients
    expect(mex.locator("#f-exporter\\.country")).to_have_value("MEX")
    mex.locator("#f-transfer_id").fill("SEDENA-DCAM-2026-0093")
    mex.locator("#f-exporter\\.name").fill("Fábrica de Armas SEDENA")
    mex.locator("#f-importer\\.name").fill("Indústria de Material Bélico do Brasil")
    mex.locator("#f-importer\\.country").select_option("BRA")
    for licence, number in (("export_licence", "DCAM-EXP-93"), ("import_licence", "PF-IMP-118")):
        mex.locator(f"#f-{licence}\\.number").fill(number)
        mex.locator(f"#f-{licence}\\.issued_by").fill("Autoridad de control")
        mex.locator(f"#f-{licence}\\.issued_on").fill(_day(-20))
        mex.locator(f"#f-{licence}\\.valid_until").fill(_day(300))
    mex.locator("#f-items\\.0\\.category").select_option("firearm")
    mex.locator("#f-items\\.0\\.description").fill("Fusil FX-05")
    mex.locator("#f-items\\.0\\.quantity").fill("120")
    mex.locator("#f-items\\.1\\.line").fill("2")
    mex.locator("#f-items\\.1\\.category").select_option("ammunition")
    mex.locator("#f-items\\.1\\.description").fill("Cartuchos 5.56x45 mm")
    mex.locator("#f-items\\.1\\.quantity").fill("24000")
    mex.locator("#f-expected_dispatch").fill(_day(10))
    mex.locator("#f-expected_arrival").fill(_day(25))
    mex.get_by_role("button", name="Vista previa").click()
    expect(mex.locator("#preview")).to_contain_text("Brasil (BRA)", timeout=WAIT_MS)
    expect(mex.locator("#preview")).to_contain_text("Cartuchos 5.56x45 mm")
    mex.get_by_role("button", name="Sellar y enviar").click()
    expect(mex.locator(".notice")).to_contain_text("BRA", timeout=WAIT_MS)

    bra = _page(browser, network, "BRA", marta)
    bra.goto(f"{network.urls['BRA']}/transfers")
    reload_until(bra, "SEDENA-DCAM-2026-0093", "main")
    card = bra.locator("#transfer-SEDENA-DCAM-2026-0093")
    expect(card).to_contain_text("Aguardando a confirmação de")
    expect(card.locator("form.step-confirm")).to_be_visible()

"""How the officer's commands choose their language, and their lines in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.cli import messages, usage


@pytest.fixture(autouse=True)
def english_after() -> Iterator[None]:
    yield
    messages.use("en")


def test_lang_option_anywhere_on_the_line_wins_over_the_locale() -> None:
    env = {"LANG": "es_MX.UTF-8"}
    assert messages.choose(["show", "01ab", "--lang", "fr"], env) == "fr"
    assert messages.choose(["--lang=pt", "inbox"], env) == "pt"
    assert messages.choose(["inbox"], env) == "es"
    assert messages.choose(["inbox"], {"LANG": "pt_BR", "LC_ALL": "fr_CA.UTF-8"}) == "fr"
    assert messages.choose(["inbox"], {"LANG": "pt_BR", "LC_MESSAGES": "es"}) == "es"


def test_an_unknown_locale_or_lang_value_reads_english() -> None:
    assert messages.choose(["inbox"], {"LANG": "de_DE.UTF-8"}) == "en"
    assert messages.choose(["inbox"], {"LANG": "C"}) == "en"
    assert messages.choose(["inbox"], {"LANG": "POSIX"}) == "en"
    assert messages.choose(["inbox", "--lang", "de"], {}) == "en"  # argparse then refuses it
    assert messages.choose(["send", "--", "--lang", "fr"], {}) == "en"  # after --, not an option


def test_an_error_line_keeps_what_was_typed_in_each_language() -> None:
    params = {"field": "lines", "value": "1:40", "expected": "line_quantity"}
    lines = {}
    for language in ("es", "en", "fr", "pt"):
        messages.use(language)
        lines[language] = messages.error("value.invalid", params)
    assert lines["en"] == "--line '1:40': expected LINE=QUANTITY, e.g. 1=40"
    assert lines["es"] == "--line '1:40': se esperaba LÍNEA=CANTIDAD, p. ej. 1=40"
    assert lines["fr"] == "--line '1:40' : attendu LIGNE=QUANTITÉ, p. ex. 1=40"
    assert lines["pt"] == "--line '1:40': esperado LINHA=QUANTIDADE, p. ex. 1=40"


def test_a_workflow_refusal_and_a_kind_title_are_the_consoles_translations() -> None:
    messages.use("pt")
    assert messages.title("tracing.request") == "Solicitação de rastreamento"
    refused = {"kind": "transfer.dispatch", "reason": "transfer.not_dispatched"}
    line = messages.error("procedure.step_refused", refused)
    assert line.startswith("transfer.dispatch: ") and "not dispatched" not in line


def test_a_usage_mistake_is_one_line_in_the_commands_language() -> None:
    messages.use("es")
    params = {"problem": "not_a_choice", "option": "--priority", "value": "soon",
              "choices": ["routine", "urgent"]}  # fmt: skip
    assert usage.render("cifta trace new", params) == (
        "cifta trace new: --priority 'soon' no se acepta: se esperaba uno de routine, urgent"
    )


def test_numbers_are_written_as_the_reader_writes_them() -> None:
    messages.use("es")
    assert (messages.number(12.5), messages.number(1234.25)) == ("12,5", "1.234,25")
    messages.use("en")
    assert (messages.number(12.5), messages.percent(0.834)) == ("12.5", "83%")


def test_a_clock_off_is_a_code_with_numbers_worded_in_the_readers_language() -> None:
    """The node's clock problem reaches the officer as a code and numbers, not English."""
    from datetime import UTC, datetime

    from services.node.application.errors import ApplicationError
    from services.node.application.plumbing import refusals
    from services.node.outbound import ClockError, ClockProblem

    measured = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    with pytest.raises(ApplicationError) as behind, refusals():
        raise ClockError(ClockProblem(-86_412.4, measured, 60.0))
    assert behind.value.code == "node.clock_off"
    assert behind.value.params == {
        "offset_s": -86_412, "measured_at": "2026-12-01T15:00:00.000Z", "tolerance_s": 60,
    }  # fmt: skip
    lines = {}
    for language in ("es", "en", "fr", "pt"):
        messages.use(language)
        lines[language] = messages.error("node.clock_off", behind.value.params)
    assert lines["en"].startswith("this node's clock is 86412 s behind the hub's")
    assert lines["es"].startswith("el reloj de este nodo va 86412 s atrasado")
    assert lines["fr"].startswith("l'horloge de ce nœud retarde de 86412 s")
    assert lines["pt"].startswith("o relógio deste nó está 86412 s atrasado")
    ahead = {**behind.value.params, "offset_s": 90}
    messages.use("pt")
    assert messages.error("node.clock_off", ahead).startswith("o relógio deste nó está 90 s adiant")

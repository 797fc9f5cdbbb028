"""An Art. XII refusal reaches the officer's command line worded in the officer's language: the
workflow gives the rule and the remedy as codes, the CLI words them through the catalogs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.cli import messages


@pytest.fixture(autouse=True)
def english_after() -> Iterator[None]:
    yield
    messages.use("en")


@pytest.mark.parametrize(
    ("language", "rule", "remedy"),
    [
        ("es", "art. XII, código de tratamiento H2", "pida a MEX su consentimiento para "
         "compartirlo con COL, BRA"),
        ("fr", "art. XII, code de traitement H2", "demandez à MEX son consentement pour le "
         "communiquer à COL, BRA"),
        ("pt", "art. XII, código de tratamento H2", "peça a MEX consentimento para "
         "compartilhá-la com COL, BRA"),
    ],
)  # fmt: skip
def test_an_article_12_refusal_is_worded_in_the_officers_language(
    language: str, rule: str, remedy: str
) -> None:
    messages.use(language)
    params = {"rule": "h2_onward", "remedy": "ask_sharing", "originator": "MEX",
              "states": ["COL", "BRA"]}  # fmt: skip
    line = messages.error("article12.refused", params)
    assert line.startswith(rule) and line.endswith(remedy), line
    assert "h2_onward" not in line and "ask_sharing" not in line


def test_an_article_12_refusal_names_the_use_asked_for() -> None:
    messages.use("es")
    params = {"rule": "h2_onward", "remedy": "ask_use", "originator": "MEX",
              "use": "external_disclosure"}  # fmt: skip
    assert messages.error("article12.refused", params).endswith(
        "pida a MEX su consentimiento (divulgación fuera del organismo)"
    )

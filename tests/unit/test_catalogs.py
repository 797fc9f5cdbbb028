"""The four catalogs (es, en, fr, pt) are current with the code and complete.

Fails when a string a person reads was added or changed without `make catalogs-update`, when a
message lacks its translation in one of the languages, or when a translation's placeholders differ
from the English ones (a missing ``%(login)s`` would hide what the officer typed).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from services import i18n
from services.i18n.codes import MESSAGES

ROOT = Path(__file__).resolve().parents[2]
#: A placeholder as a whole (no group: ``findall`` returns each one with its name).
PLACEHOLDER = re.compile(r"%\(\w+\)[sdfr]|%[sdfr]|\{\w*(?:![rsa])?\}")


def _extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords={"_": None, "gettext": None, "N_": None,
                                                        "ngettext": (1, 2)},
    ):  # fmt: skip
        found.update([message] if isinstance(message, str) else message)
    return found


def _catalog(language: str) -> dict[str, tuple[str, bool]]:
    path = i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        catalog = read_po(f, locale=language)
    return {m.id: (m.string, m.fuzzy) for m in catalog if m.id and isinstance(m.id, str)}


def test_template_catalog_holds_exactly_the_messages_in_the_code() -> None:
    with (i18n.LOCALE_DIR / "messages.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    extracted = _extracted()
    assert extracted - template == set(), "new strings: run `make catalogs-update`"
    assert template - extracted == set(), "strings gone from the code: run `make catalogs-update`"


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_catalog_is_current_and_every_message_translated(language: str) -> None:
    catalog = _catalog(language)
    extracted = _extracted()
    assert extracted - catalog.keys() == set(), f"{language} stale: run `make catalogs-update`"
    untranslated = sorted(m for m in extracted if not catalog[m][0] or catalog[m][1])
    assert untranslated == [], f"{language}: untranslated or fuzzy"


def test_the_placeholder_check_sees_a_renamed_placeholder() -> None:
    """A translation that renames ``{value}`` would make ``.format`` raise KeyError in a
    command: the check compares names, not counts."""
    english = "{prog}: {value!r} is not one of {choices}"
    renamed = "{prog} : {valeur!r} n'est pas parmi {choices}"
    assert sorted(PLACEHOLDER.findall(english)) != sorted(PLACEHOLDER.findall(renamed))
    assert PLACEHOLDER.findall("%(until)s, %s") == ["%(until)s", "%s"]


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_translations_keep_the_placeholders_of_the_english(language: str) -> None:
    wrong = {
        msgid: text
        for msgid, (text, _) in _catalog(language).items()
        if sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(text))
    }
    assert wrong == {}


#: What a browser would read as markup: a tag, an entity or a stray <, > or &.
MARKUP = re.compile(r"<[^<>]*>|&#?\w+;|[<>&]")


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_translations_add_no_markup_to_their_english(language: str) -> None:
    """A catalog is text from translators: a translation holds <, > or & only where its msgid
    holds the very same, so that no catalog can slip markup into a page (the console escapes
    translations too: services/console/web/rendering.py)."""
    added = {
        msgid: text
        for msgid, (text, _) in _catalog(language).items()
        if MARKUP.findall(text) != MARKUP.findall(msgid)
    }
    assert added == {}


def test_the_markup_check_catches_a_tag_an_entity_and_a_bare_ampersand() -> None:
    for hostile in ("<b>Sign in</b>", "Sign in &amp; go", "R&D", "a > b"):
        assert MARKUP.findall(hostile) != MARKUP.findall("Sign in")


@pytest.mark.parametrize("language", ["es", "fr", "pt"])
def test_translations_are_not_copies_of_the_english(language: str) -> None:
    catalog = _catalog(language)
    same = [m for m, (text, _) in catalog.items() if text == m and len(PLACEHOLDER.sub("", m)) > 12]
    # long messages identical to the English would be untranslated copies; short ones may be
    # the same word in both languages (e.g. "Confirmar" is not, "Action" in French is)
    assert same == []


def test_every_code_the_layer_may_send_has_a_message_in_each_language() -> None:
    for language in i18n.LANGUAGES:
        for code in MESSAGES:
            assert i18n.translate(code, {}, language)  # placeholders left empty, still text
    assert i18n.translate("login.locked", {"until": "10:00"}, "pt").startswith("Tentativas")
    assert i18n.translate("login.locked", {"until": "10:00"}, "es").startswith("Demasiados")


def test_language_from_accept_language_header_and_environment() -> None:
    assert i18n.negotiate("pt-BR,pt;q=0.9,en;q=0.5") == "pt"
    assert i18n.negotiate("de-DE, fr;q=0.4, es;q=0.8") == "es"
    assert i18n.negotiate("de-DE") == "en"
    assert i18n.negotiate(None) == "en"
    assert i18n.from_environment(None, {"LANG": "fr_CA.UTF-8"}) == "fr"
    assert i18n.from_environment("pt", {"LANG": "fr_CA.UTF-8"}) == "pt"
    assert i18n.from_environment(None, {"LANG": "C.UTF-8"}) == "en"
    # POSIX: the first set of LC_ALL, LC_MESSAGES, LANG decides, even when it is C
    assert i18n.from_environment(None, {"LC_ALL": "C", "LANG": "es_ES.UTF-8"}) == "en"
    assert i18n.from_environment(None, {"LC_ALL": "de_DE", "LANG": "es_ES.UTF-8"}) == "en"
    assert i18n.from_environment(None, {"LC_MESSAGES": "pt_BR", "LANG": "es_ES"}) == "pt"
    assert i18n.from_environment(None, {"LC_ALL": "", "LANG": "es_ES.UTF-8"}) == "es"

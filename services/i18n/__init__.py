"""The project's four languages (es, en, fr, pt), shared by the officer console and the CLI.

Every string a person reads goes through these gettext catalogs (``locale/<lang>/LC_MESSAGES/
messages.po``). Errors cross the application layer as a code plus parameters; :func:`translate`
turns one into the reader's language. Portuguese is Brazilian Portuguese: the Convention's
authentic Portuguese text, deposited with the OAS, is written in Brazilian usage (Brazil is the
Portuguese-speaking State Party), and Babel's ``pt`` locale is ``pt_BR``.

The ``.mo`` files are built by ``make catalogs`` and not committed; a catalog whose ``.mo`` is
missing or older than its ``.po`` is compiled in memory when first used, so a fresh clone works.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Final

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALE_DIR: Final = Path(__file__).parent / "locale"
DOMAIN: Final = "messages"
#: The Convention's four authentic languages (Art. XXXII), in the order pickers show them.
LANGUAGES: Final = ("es", "en", "fr", "pt")
DEFAULT_LANGUAGE: Final = "en"
#: Each language's own name, as a picker shows it to a reader of that language.
LANGUAGE_NAMES: Final = {"es": "Español", "en": "English", "fr": "Français", "pt": "Português"}


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it yet."""
    return message


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.GNUTranslations:
    """The compiled catalog of ``language`` (one of :data:`LANGUAGES`)."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as f:
            return gettext.GNUTranslations(f)
    with po.open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@lru_cache(maxsize=len(LANGUAGES))
def _msgids(language: str) -> dict[str, str]:
    # gettext keeps the catalog as msgid -> msgstr only (plural entries under tuple keys)
    catalog: dict[object, object] = getattr(translations(language), "_catalog", {})
    return {v: k for k, v in catalog.items() if isinstance(k, str) and k and isinstance(v, str)}


def msgid_of(language: str, text: str) -> str:
    """The English msgid whose translation into ``language`` is ``text``; ``text`` itself when
    there is none (English already, or words not from the catalog)."""
    return _msgids(language).get(text, text)


def gettext_for(language: str, message: str) -> str:
    """``message`` in ``language``."""
    return translations(language).gettext(message)


def ngettext_for(language: str, singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in ``language``."""
    return translations(language).ngettext(singular, plural, n)


def supported(language: str | None) -> str | None:
    """``language`` (a tag such as ``pt-BR`` or ``es_MX``) reduced to one of :data:`LANGUAGES`,
    or None."""
    if not language:
        return None
    primary = language.replace("_", "-").split("-")[0].strip().lower()
    return primary if primary in LANGUAGES else None


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The best of :data:`LANGUAGES` for an HTTP ``Accept-Language`` header (RFC 9110 12.5.4)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language = supported(tag)
        if language and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else default


def from_environment(lang: str | None, env: Mapping[str, str]) -> str:
    """The CLI's language: ``--lang``, else the first of ``LC_ALL``, ``LC_MESSAGES``, ``LANG``
    that is set (POSIX: ``LC_ALL=C`` means C whatever ``LANG`` says); English when that one
    names no language of the four (``C``, ``POSIX``, ``de_DE``)."""
    if lang:
        return supported(lang) or DEFAULT_LANGUAGE
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if value := env.get(variable):
            return supported(value.split(".")[0].split("@")[0]) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def translate(code: str, params: Mapping[str, object], language: str) -> str:
    """The message of ``code`` (an error or notice code from :mod:`services.i18n.codes`) in
    ``language``, its ``%(name)s`` placeholders filled from ``params``.

    An unknown code is shown as itself with its parameters, so nothing a person must read is lost.
    """
    from services.i18n.codes import MESSAGES

    template = MESSAGES.get(code)
    if template is None:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
        return f"{code} ({detail})" if detail else code
    text = gettext_for(language, template)
    if code == "procedure.step_refused":  # the workflow's refusal, itself a code
        params = {
            **params,
            "reason": translate(f"refusal.{params.get('reason')}", params, language),
        }
    if code == "article12.refused":  # its rule and remedy, themselves codes
        params = {**params, **article12_refusal(params, language)}
    # a fraction is written as the reader writes it (0,1 in es, fr and pt); codes keep floats
    shown = {
        k: format_number(v, language) if isinstance(v, float) else v for k, v in params.items()
    }
    try:
        return text % shown
    except (KeyError, TypeError, ValueError):  # a caller that forgot a parameter: still readable
        return text


def article12_refusal(params: Mapping[str, object], language: str) -> dict[str, str]:
    """The ``rule`` and ``remedy`` of an ``article12.refused`` (codes, with the originator, the
    states or the use beside them) worded in ``language``."""
    from services.i18n.values import value

    named: dict[str, object] = {
        k: ", ".join(map(str, v)) if isinstance(v, list | tuple) else v for k, v in params.items()
    }
    if "use" in named:
        named["use"] = value(str(named["use"]), language)
    return {
        part: translate(f"article12.{part}.{params.get(part)}", named, language)
        for part in ("rule", "remedy")
    }


def babel_locale(language: str) -> Locale:
    """Babel's locale for formatting dates and numbers (``pt`` is Brazilian Portuguese)."""
    try:
        return Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LANGUAGE)


def format_when(value: datetime | date | None, language: str, *, with_time: bool = True) -> str:
    """A date or time as a reader of ``language`` writes it (Babel's medium format, UTC)."""
    if value is None:
        return ""
    locale = babel_locale(language)
    if isinstance(value, datetime) and with_time:
        return format_datetime(value, format="medium", tzinfo=UTC, locale=locale) + " UTC"
    return format_date(value, format="medium", locale=locale)


def format_number(value: float | int, language: str) -> str:
    """A number as a reader of ``language`` writes it."""
    return format_decimal(value, locale=babel_locale(language))

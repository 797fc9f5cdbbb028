"""Jinja2 templates rendered in the reader's language.

One environment for the whole console; gettext callables read the language of the request being
rendered from a context variable, so a request in Portuguese and one in Spanish never mix
(rendering is synchronous: nothing awaits while a template renders). Autoescaping is on for every
template: a message body containing ``<script>`` is shown as text, and so is a translation
containing markup (a catalog is text from translators, not HTML the console trusts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from services import i18n
from services.core.accounts import Officer

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

#: The roles' names, translated where shown.
ROLE_NAMES = {
    "officer": i18n.N_("Officer"),
    "supervisor": i18n.N_("Supervisor"),
    "admin": i18n.N_("Node administrator"),
}

_language: ContextVar[str] = ContextVar("console_language", default=i18n.DEFAULT_LANGUAGE)


def _gettext(message: str) -> Markup:
    # Jinja's newstyle gettext, under autoescape, takes the translation as Markup (trusted HTML)
    # and escapes only the values of its %(name)s placeholders: the translation is escaped here
    return escape(i18n.gettext_for(_language.get(), message))


def _ngettext(singular: str, plural: str, n: int) -> Markup:
    return escape(i18n.ngettext_for(_language.get(), singular, plural, n))


def request_language(request: Request, officer: Officer | None) -> str:
    """The officer's profile language; before sign-in, the browser's ``Accept-Language``."""
    if officer is not None:
        return officer.language
    return i18n.negotiate(request.headers.get("accept-language"))


class Renderer:
    """Renders the console's templates (its own and those of ``extra_dirs``, searched first)."""

    def __init__(self, extra_dirs: Sequence[str | Path] = ()) -> None:
        loader = ChoiceLoader([FileSystemLoader([*map(str, extra_dirs), str(TEMPLATES)])])
        self.env = Environment(
            loader=loader,
            autoescape=select_autoescape(default=True, default_for_string=True),
            extensions=["jinja2.ext.i18n"],
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
        self.env.globals.update(
            language_names=i18n.LANGUAGE_NAMES,
            languages=i18n.LANGUAGES,
            role_names=ROLE_NAMES,
        )

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """``template`` rendered for this request (its officer, language and CSRF token)."""
        session = getattr(request.state, "session", None)
        officer = session.officer if session is not None and session.complete else None
        language = request_language(request, session.officer if session else None)
        token = _language.set(language)
        try:
            html = self.env.get_template(template).render(
                request=request,
                config=request.app.state.config,
                officer=officer,
                lang=language,
                csrf_token=_csrf_token(request),
                when=lambda value, with_time=True: i18n.format_when(
                    datetime.fromisoformat(value) if isinstance(value, str) else value,
                    language,
                    with_time=with_time,
                ),  # a time as stored (ISO 8601 text) or as a datetime
                number=lambda value: i18n.format_number(value, language),
                message=lambda code, params=None: i18n.translate(code, params or {}, language),
                **(context or {}),
            )
        finally:
            _language.reset(token)
        return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """``template`` rendered by the console's renderer for this request."""
    renderer: Renderer = request.app.state.renderer
    return renderer.render(request, template, context, status_code=status_code, headers=headers)


def _csrf_token(request: Request) -> str:
    session = getattr(request.state, "session", None)
    if session is not None:
        return str(session.csrf_token)
    return str(getattr(request.state, "presession", ""))

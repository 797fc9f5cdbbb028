"""The codes that cross the application layer and the console, each with its English message.

A front end never shows a library's text: it shows ``translate(code, params, language)``. The
messages are gettext msgids (extracted from here by ``make catalogs``), so every code has its
text in the four languages; placeholders are ``%(name)s`` and must be the same in every language
(tests/unit/test_catalogs.py checks both).
"""

from __future__ import annotations

from typing import Final

from services.i18n import N_

MESSAGES: Final[dict[str, str]] = {
    # sign-in and sessions
    "login.refused": N_("Sign-in refused: the name, password or code is wrong."),
    "login.locked": N_(
        "Too many failed attempts: this account is locked until %(until)s. "
        "Ask the node administrator if you need it sooner."
    ),
    "login.rate_limited": N_("Too many sign-in attempts from this address: wait a few minutes."),
    "login.totp_required": N_("Enter the six-digit code from your authenticator app."),
    "login.totp_wrong": N_("The code %(typed)s is not the current one: expected six digits."),
    "session.expired": N_("Your session has ended: sign in again."),
    "csrf.invalid": N_(
        "This form has expired or did not come from this console: reload the page and try again."
    ),
    "forbidden.role": N_("This page needs the role %(role)s."),
    "not_found": N_("Nothing here: %(what)s was not found."),
    # officer accounts
    "officer.exists": N_("An officer with the login %(login)s already exists."),
    "officer.unknown": N_("No officer with the login %(login)s."),
    "officer.login_format": N_(
        "The login %(typed)s is not valid: expected 3 to 32 lowercase letters, digits, '.', '-' "
        "or '_'."
    ),
    "officer.role_unknown": N_(
        "The role %(typed)s is not known: expected officer, supervisor or admin."
    ),
    "officer.language_unknown": N_(
        "The language %(typed)s is not offered: expected es, en, fr or pt."
    ),
    "officer.field_required": N_("%(field)s is required."),
    "officer.password_short": N_(
        "The password is too short: expected at least %(min)s characters."
    ),
    "officer.disabled": N_("The officer %(login)s is disabled."),
    "officer.added": N_("Officer %(login)s added (%(role)s)."),
    "officer.password_reset": N_(
        "Password of %(login)s reset; the second factor must be enrolled again."
    ),
    "officer.disabled_now": N_("Officer %(login)s disabled; their sessions have ended."),
    "officer.store_missing": N_("%(home)s is not a node home: run `cifta node init` first."),
    # forms
    "form.required": N_("This field is required."),
    "form.date_format": N_("%(typed)s is not a date: expected YYYY-MM-DD."),
    "form.invalid": N_("%(field)s: %(typed)s is not accepted: %(expected)s."),
}

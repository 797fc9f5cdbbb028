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
    # the secretariat's console (services/secretariat: SecretariatError codes, and its notices)
    "secretariat.no_such_request": N_("No request %(request)s is waiting for review."),
    "secretariat.not_a_request": N_(
        "This is not a signed request: expected the file made by `cifta directory register` or "
        "`cifta directory rotate`."
    ),
    "secretariat.request_too_large": N_(
        "A signed request is at most %(limit)s bytes: this file is not one."
    ),
    "secretariat.key_id_missing": N_(
        "Type the signing key id the state's point of contact read out to you by telephone."
    ),
    "secretariat.key_id_malformed": N_(
        "A key id is 32 hexadecimal characters (0-9, a-f): %(length)s were typed."
    ),
    "secretariat.key_id_mismatch": N_(
        "The key id typed is not the one in the request of %(party)s: check it again with "
        "%(party)s by telephone. Nothing was approved."
    ),
    "secretariat.not_a_registration": N_("Request %(request)s is not a registration."),
    "secretariat.not_a_rotation": N_("Request %(request)s is not a key rotation."),
    "secretariat.directory_refused": N_("The directory refused it: %(detail)s"),
    "secretariat.no_such_party": N_("%(party)s is not in the directory."),
    "secretariat.no_such_key": N_("%(party)s has no key %(kid)s."),
    "secretariat.revocation_time": N_(
        "A revocation cannot take effect in the future: revoke the key at that time."
    ),
    "secretariat.hub_not_running": N_(
        "Signed, but the hub is not running: run `cifta directory publish` once it is."
    ),
    "secretariat.hub_unreachable": N_("The hub cannot be reached: is it running?"),
    "secretariat.hub_refused": N_(
        "Signed, but the hub refused to apply it (%(error)s): see the hub's log, then run "
        "`cifta directory publish`."
    ),
    "secretariat.no_audit_log": N_(
        "There is no audit log yet: the audit service has not run on this hub."
    ),
    "secretariat.verification_running": N_("A verification is already running."),
    "secretariat.bad_input": N_("%(field)s: %(expected)s"),
    "secretariat.bad_time": N_(
        "%(typed)s is not a moment with its time zone: expected e.g. 2026-11-30T08:00:00+00:00."
    ),
    "secretariat.approved": N_(
        "%(party)s approved: directory entry version %(version)s signed and published."
    ),
    "secretariat.declined": N_("The request of %(party)s was declined: nothing was signed."),
    "secretariat.revoked": N_("Key %(kid)s of %(party)s revoked."),
}

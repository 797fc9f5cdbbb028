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
    "form.rejected": N_("This value is not accepted (%(problem)s)."),
    "form.date_format": N_("%(typed)s is not a date: expected YYYY-MM-DD."),
    "form.invalid": N_("%(field)s: %(typed)s is not accepted: %(expected)s."),
    # the node's application layer (services/node/application/errors.py)
    "node.no_home": N_("No node home given: pass --home or set CIFTA_NODE_HOME."),
    "node.not_a_home": N_("%(home)s is not a node home."),
    "node.bad_settings": N_("The node's settings are wrong at %(field)s (%(problem)s)."),
    "node.passphrase_unset": N_("The key file's passphrase variable %(variable)s is not set."),
    "node.keys_unreadable": N_("The node's keys cannot be read."),
    "node.directory_unreadable": N_("The node's directory cannot be read."),
    "node.clock_off": N_("This node's clock is off: messages cannot be dated now."),
    "officer.missing": N_("Who is acting? Name, position and agency are required."),
    "officer.incomplete": N_("The officer's identity is incomplete."),
    "message.not_found": N_("No message %(msg_id)s."),
    "message.ambiguous_id": N_("%(prefix)s matches several messages: type more of its id."),
    "message.id_too_short": N_(
        "%(prefix)s is too short: type at least %(minimum)s characters of the id."
    ),
    "message.not_received": N_("Message %(msg_id)s was not received by this node."),
    "message.not_sent": N_("Message %(msg_id)s was not sent by this node."),
    "message.unreadable": N_("Message %(msg_id)s cannot be opened (%(reason)s)."),
    "kind.unknown": N_("%(kind)s is not a kind of message."),
    "kind.protocol": N_("Receipts and rejections are sent by the node itself."),
    "body.not_json": N_("The message is not valid JSON."),
    "body.not_filled_in": N_("Some fields still hold the template's placeholder."),
    "body.invalid": N_("The message is not complete: see the fields marked below."),
    "body.mismatch": N_("%(field)s says %(found)s where %(expected)s was expected."),
    "value.invalid": N_("%(field)s: %(value)s is not accepted (expected: %(expected)s)."),
    "field.required": N_("%(field)s is required."),
    "field.invalid": N_("%(field)s is not accepted (%(problem)s)."),
    "recipient.none": N_("Choose at least one recipient state."),
    "recipient.self": N_("%(party)s is this node's own state: choose another recipient."),
    "recipient.unknown": N_("%(party)s is not in the network's directory."),
    "recipient.off_network": N_("None of these states is on the network: %(states)s."),
    "compose.refused": N_("The message cannot be sealed (%(problem)s)."),
    "procedure.step_refused": N_("The procedure does not allow this step now (%(reason)s)."),
    "procedure.not_found": N_("Not found: %(id)s."),
    "procedure.ambiguous": N_("%(id)s names procedures of several states: choose one."),
    "procedure.not_a_party": N_("%(party)s takes no part in %(id)s."),
    "article12.refused": N_("Article XII does not allow this now (%(rule)s): %(remedy)s."),
    "rebuild.refused": N_("The rebuild was refused."),
    "export.exists": N_("The file %(path)s already exists."),
    "io.failed": N_("%(path)s cannot be written (%(problem)s)."),
    # the console's own notices
    "notice.sent": N_("Sealed and queued for %(recipients)s: message %(short_id)s."),
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

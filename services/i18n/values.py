"""The names of the code values officers read, shared by the console and the CLI: the values of
the message models' enumerations (priority, outcomes, decisions, uses), where a procedure stands,
where a message stands with each recipient, and what an officer's action log records.

Each name is a gettext msgid (English); a front end shows it in its reader's language and keeps
the code itself where a program or support reads it (``--json``, a tooltip). A code without a name
here is shown as itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services import i18n
from services.i18n import N_

#: A code value's name (enumerations of the message models other than states and languages).
VALUES: dict[str, str] = {
    "aborted": N_("aborted"), "administrative_practice": N_("administrative practice"),
    "air": N_("air"), "air_cargo": N_("air cargo"), "ammunition": N_("ammunition"),
    "authorized": N_("authorized"), "carbine": N_("carbine"), "carrier": N_("carrier"),
    "case_law": N_("case law"), "completed": N_("completed"),
    "continue_intact": N_("let continue intact"), "dealer": N_("dealer"),
    "detection": N_("detection"), "explosive": N_("explosive"), "exporter": N_("exporter"),
    "express_courier": N_("express courier"),
    "external_disclosure": N_("disclosure outside the agency"), "firearm": N_("firearm"),
    "forensics": N_("forensics"), "found": N_("found"), "granted": N_("granted"),
    "granted_with_conditions": N_("granted with conditions"),
    "grenade_launcher": N_("grenade launcher"), "importer": N_("importer"),
    "interdicted": N_("interdicted"), "items_removed": N_("items removed"),
    "items_substituted": N_("items substituted"), "judicial_use": N_("use in judicial proceedings"),
    "lost": N_("lost"), "machine_gun": N_("machine gun"), "marking": N_("marking"),
    "not_found": N_("not found"), "on_foot": N_("on foot"), "on_person": N_("on the person"),
    "onward_sharing": N_("onward sharing"), "other": N_("other"),
    "other_related_material": N_("other related material"), "partial": N_("partial"),
    "parts_and_components": N_("parts and components"),
    "passenger_baggage": N_("passenger baggage"), "pistol": N_("pistol"), "postal": N_("postal"),
    "postal_parcel": N_("postal parcel"), "producer": N_("producer"), "rail": N_("rail"),
    "record_keeping": N_("record keeping"), "refused": N_("refused"),
    "regulation": N_("regulation"), "revolver": N_("revolver"), "rifle": N_("rifle"),
    "river": N_("river"), "road": N_("road"), "road_vehicle": N_("road vehicle"),
    "routine": N_("routine"), "sea": N_("sea"), "sea_container": N_("sea container"),
    "shotgun": N_("shotgun"), "statute": N_("statute"), "submachine_gun": N_("submachine gun"),
    "tracing": N_("tracing"), "training": N_("training"), "urgent": N_("urgent"),
    "seized": N_("seized"), "recovered": N_("recovered"), "confiscated": N_("confiscated"),
    "true": N_("yes"), "false": N_("no"),
}  # fmt: skip


#: The states of procedures and what the deadlines dashboard lists.
STATUSES: dict[str, str] = {
    "filed": N_("filed"), "acknowledged": N_("acknowledged"), "answered": N_("answered"),
    "proposed": N_("proposed"), "active": N_("under way"), "declined": N_("declined"),
    "closed": N_("closed"),
    "tracing.answer_owed": N_("Tracing request to answer"),
    "tracing.answer_awaited": N_("Answer awaited to our tracing request"),
    "transfer.confirmation_awaited": N_("Import or transit confirmation awaited"),
    "transfer.receipt_awaited": N_("Receipt confirmation awaited (Art. IX.4)"),
    "delivery.consent_awaited": N_("Consent awaited for a controlled delivery"),
}  # fmt: skip

#: Where one of this node's messages stands with one recipient (the outbox's and the signed
#: receipts' states, services/node/store/messages.py).
DELIVERY_STATES: dict[str, str] = {
    "pending": N_("queued, not sent yet"), "sent": N_("sent, no receipt yet"),
    "delivered": N_("delivered"), "rejected": N_("rejected"),
}  # fmt: skip

#: Why a recipient refused a message (schemas.reasons.ReasonCode, in its signed rejection).
REJECTIONS: dict[str, str] = {
    "oversized": N_("envelope too large"), "malformed": N_("envelope malformed"),
    "unsupported_version": N_("envelope version not supported"),
    "unsupported_algorithm": N_("algorithm not supported"),
    "unknown_sender_key": N_("sender's key unknown to the directory"),
    "sender_key_not_valid": N_("sender's key not valid at that time"),
    "revoked_sender_key": N_("sender's key revoked"),
    "missing_signature": N_("a signature is missing"),
    "bad_signature": N_("a signature does not verify"),
    "not_a_recipient": N_("not addressed to that state"),
    "expired": N_("expired on arrival"), "future_dated": N_("dated in the future"),
    "replay": N_("already received (replay)"), "decryption_failed": N_("cannot be decrypted"),
    "unknown_kind": N_("unknown kind of message"),
    "schema_invalid": N_("body not valid for its kind"),
    "sender_mismatch": N_("published by another state than its sender"),
    "processing_failed": N_("could not be processed"),
    "illegal_transition": N_("the procedure does not allow this step now"),
    "lookup_over_budget": N_("lookup budget exceeded"),
    "lookup_malformed": N_("lookup request malformed"),
    "lookup_unavailable": N_("lookup unavailable"),
    "attachment_missing": N_("an attachment is missing"),
    "attachment_corrupt": N_("an attachment is corrupt"),
    "attachment_too_large": N_("an attachment is too large"),
}  # fmt: skip

#: What an officer's action log records (services/core/accounts.py ``record``): the console's
#: sign-in and its pages, and the administrator's ``cifta officer`` commands.
ACTIONS: dict[str, str] = {
    "signed_in": N_("signed in"), "sign_in_refused": N_("sign-in refused"),
    "password_accepted": N_("password accepted, security key asked for"),
    "signed_out": N_("signed out"),
    "second_factor_enrolled": N_("authenticator app enrolled"),
    "security_key_enrolled": N_("security key enrolled"),
    "security_key_refused": N_("security key refused"),
    "account_added": N_("account created"), "account_disabled": N_("account disabled"),
    "password_reset": N_("password reset"), "security_keys_removed": N_("security keys removed"),
    "message_opened": N_("message opened"), "message_sent": N_("message sent"),
    "message_forwarded": N_("message forwarded"), "message_exported": N_("message exported"),
    "attachment_downloaded": N_("attachment downloaded"),
    "disclosure_notified": N_("disclosure notice sent"),
    "consent_requested": N_("consent requested"),
    "consent_answered": N_("consent request answered"),
    "trace_answered": N_("tracing request answered"),
    "delivery_consented": N_("consent given to a controlled delivery"),
    "delivery_declined": N_("controlled delivery declined"),
    "delivery_handover": N_("custody hand-over recorded"),
    "delivery_interception": N_("interception recorded"),
    "delivery_closure": N_("controlled delivery closed"),
    "transfer_confirm": N_("transfer confirmed or refused"),
    "transfer_dispatch": N_("transfer dispatch notified"),
    "transfer_receive": N_("transfer receipt confirmed"),
}  # fmt: skip


def _named(table: Mapping[str, str], code: str, language: str) -> str:
    text = table.get(code)
    return i18n.gettext_for(language, text) if text else code


def value(code: str, language: str) -> str:
    """A listed code value (``urgent``, ``items_removed``) in ``language``; else the code."""
    return _named(VALUES, code, language)


def status(code: str, language: str) -> str:
    """Where a procedure stands (``filed``, ``active``...) in ``language``; else the code."""
    return _named(STATUSES, code, language)


def delivery_state(code: str, language: str) -> str:
    """Where a message stands with a recipient (``pending``, ``delivered``...)."""
    return _named(DELIVERY_STATES, code, language)


def rejection(code: str, language: str) -> str:
    """Why a recipient refused a message (``expired``, ``not_a_recipient``...)."""
    return _named(REJECTIONS, code, language)


def action(code: str, language: str) -> str:
    """An action of an officer's log (``signed_in``, ``message_opened``...)."""
    return _named(ACTIONS, code, language)


def timeline(code: str, params: Mapping[str, object], language: str) -> str:
    """A controlled delivery's timeline entry in ``language``, its decision or outcome named."""
    named = {k: value(str(v), language) if k in ("decision", "outcome") else v
             for k, v in params.items()}  # fmt: skip
    return i18n.translate(f"timeline.{code}", named, language)


def choices(codes: Iterable[str], language: str) -> str:
    """The codes an option takes, each with its name where the name says more than the code
    (``items_removed (objetos retirados)``): what ``--help`` lists."""
    shown = []
    for code in codes:
        name = value(code, language)
        same = name.casefold() == code.replace("_", " ").casefold()
        shown.append(code if same else f"{code} ({name})")
    return ", ".join(shown)

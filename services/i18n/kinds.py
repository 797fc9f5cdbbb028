"""The titles of the kinds of message: what lists and forms call each kind.

Gettext msgids (English), so every front end shows them in its reader's language; the application
layer puts the English title in each message summary and front ends translate it.
"""

from __future__ import annotations

from typing import Final

from services.i18n import N_

#: The kinds of message, as lists and forms name them.
KINDS: Final[dict[str, str]] = {
    "info.authorized_parties": N_("Authorized producers, dealers, importers, exporters, carriers"),
    "info.concealment_methods": N_("Concealment methods and how to detect them"),
    "info.trafficking_routes": N_("Trafficking routes"),
    "info.legislative_measures": N_("Legislative experience and measures"),
    "info.money_laundering": N_("Money-laundering techniques"),
    "info.scientific_technological": N_("Scientific and technological information"),
    "tracing.request": N_("Tracing request"), "tracing.response": N_("Tracing response"),
    "tracing.acknowledgement": N_("Tracing acknowledgement"),
    "tracing.reminder": N_("Tracing reminder"), "tracing.overdue": N_("Tracing overdue notice"),
    "transfer.notice": N_("Transfer notice"),
    "transfer.import_confirmation": N_("Import confirmation"),
    "transfer.transit_authorization": N_("Transit authorization"),
    "transfer.dispatch": N_("Dispatch notice"),
    "transfer.receipt_confirmation": N_("Receipt confirmation"),
    "transfer.receipt_overdue": N_("Receipt overdue"),
    "transfer.discrepancy": N_("Discrepancy report"),
    "delivery.proposal": N_("Controlled delivery proposal"),
    "delivery.consent": N_("Consent to a controlled delivery"),
    "delivery.decline": N_("Controlled delivery declined"),
    "delivery.handover": N_("Custody hand-over"), "delivery.interception": N_("Interception"),
    "delivery.closure": N_("Controlled delivery closed"),
    "confidentiality.disclosure_notice": N_("Disclosure notice"),
    "confidentiality.consent_request": N_("Request for consent to share"),
    "confidentiality.consent_answer": N_("Answer to a request for consent"),
    "protocol.receipt": N_("Delivery receipt"), "protocol.rejection": N_("Rejection"),
}  # fmt: skip


def title(kind: str) -> str:
    """The English title of ``kind`` (a gettext msgid); the kind itself when it has none."""
    return KINDS.get(kind, kind)

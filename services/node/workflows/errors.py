"""Why a workflow refuses an event: a refusal code plus parameters, never prose, so that each
front end renders it in the reader's language (the English, and the es/fr/pt translations, are
the ``refusal.<code>`` messages of ``services/i18n/codes.py``; the article each rule applies is
noted beside its code). ``str()`` of a refusal is its English line, for logs and for the
``detail`` of a sealed rejection, which the other state's node logs.
"""

from __future__ import annotations

from typing import Literal, get_args

RefusalCode = Literal[
    "unknown_event",
    "step.followup_invalid",
    "addressed.proposal",  # Art. XVIII
    "addressed.operation",  # Art. XVIII
    "addressed.transfer_notice",  # Art. IX
    "addressed.transfer",  # Art. IX
    "addressed.trace_answer",  # Art. XIII
    "addressed.reminder",  # Art. XIII
    "art12.one_state",  # Art. XII
    "art12.not_a_step",  # Art. XII
    "art12.onward_unnamed",  # Art. XII
    "art12.no_request",  # Art. XII
    "art12.answered",  # Art. XII
    "art12.not_received",  # Art. XII
    "art12.not_sent",  # Art. XII
    "art12.forwarded_copy",  # Art. XII
    "art12.forwarded_copy_unknown",  # Art. XII
    "art12.protocol",  # Art. XII
    "delivery.proposer_in_route",  # Art. XVIII
    "delivery.route_outside",  # Art. XVIII
    "delivery.route_broken",  # Art. XVIII
    "delivery.not_asked",  # Art. XVIII
    "delivery.already_answered",  # Art. XVIII
    "delivery.consent_late",  # Art. XVIII
    "delivery.not_a_leg",  # Art. XVIII
    "delivery.proposer_closes",  # Art. XVIII
    "delivery.close_not_yet",  # Art. XVIII
    "delivery.close_not_active",  # Art. XVIII
    "delivery.closed_early",  # Art. XVIII
    "delivery.not_active_yet",  # Art. XVIII
    "delivery.not_active",  # Art. XVIII
    "delivery.not_holder",  # Art. XVIII
    "delivery.already_proposed",  # Art. XVIII
    "delivery.handover_party",  # Art. XVIII
    "delivery.closure_before_last",  # Art. XVIII
    "delivery.not_a_step",  # Art. XVIII
    "trace.no_state",  # Art. XIII
    "trace.already_status",  # Art. XIII
    "trace.already_answered",  # Art. XIII
    "trace.not_asked",  # Art. XIII
    "trace.due_before_filed",  # Art. XIII
    "trace.already_filed",  # Art. XIII
    "trace.no_request",  # Art. XIII
    "trace.requester_reminds",  # Art. XIII
    "trace.not_due",  # Art. XIII
    "transfer.exporter_dispatches",  # Art. IX
    "transfer.awaiting",  # Art. IX
    "transfer.not_authorized",  # Art. IX
    "transfer.refused_not_authorized",  # Art. IX
    "transfer.importer_confirms_receipt",  # Art. IX
    "transfer.nothing_dispatched",  # Art. IX
    "transfer.refused_nothing_dispatched",  # Art. IX
    "transfer.line_not_dispatched",  # Art. IX
    "transfer.not_confirming_party",  # Art. IX
    "transfer.already_confirmed",  # Art. IX
    "transfer.confirm_after_dispatch",  # Art. IX
    "transfer.refused_confirm",  # Art. IX
    "transfer.exporter_notifies",  # Art. IX
    "transfer.already_notified",  # Art. IX
    "transfer.importer_confirms",  # Art. IX
    "transfer.not_transit",  # Art. IX
    "transfer.not_a_step",  # Art. IX
    "transfer.exporter_raises",  # Art. IX
    "transfer.not_dispatched",  # Art. IX
    "transfer.receipt_confirmed",  # Art. IX
    "transfer.importer_reports",  # Art. IX
    "transfer.no_receipt_yet",  # Art. IX
    "transfer.receipt_matched",  # Art. IX
    "transfer.report_mismatch",  # Art. IX
    "transfer.not_a_party",  # Art. IX
    "transfer.ambiguous",  # Art. IX
    "transfer.not_notified",  # Art. IX
    "delivery.not_a_party",  # Art. XVIII
    "delivery.ambiguous",  # Art. XVIII
    "delivery.no_operation",  # Art. XVIII
]

#: Every refusal code, in the order above (tests check each has its message in every catalog).
REFUSAL_CODES: tuple[str, ...] = get_args(RefusalCode)


class IllegalTransition(Exception):
    """An event the workflow cannot take in its present state: ``code`` says why, ``params``
    (short strings: state codes, ids, phases) with what."""

    def __init__(self, code: RefusalCode, **params: str) -> None:
        super().__init__(code, params)
        self.code: RefusalCode = code
        self.params: dict[str, str] = params

    def __str__(self) -> str:
        return english(self.code, self.params)


class NotYet(IllegalTransition):
    """An event that may become legal once a message still in flight has arrived: a dispatch
    notice before the importing state's confirmation reached this party, a hand-over before the
    last consent did. A node asks for such a message again later and refuses it only when the
    broker has no delivery attempt left; an officer's own action is simply refused."""


def english(code: str, params: dict[str, str]) -> str:
    """The English line of refusal ``code`` with ``params`` (for logs and sealed details)."""
    from services.i18n.codes import MESSAGES  # the one English text, shared with the catalogs

    template = MESSAGES.get(f"refusal.{code}")
    if template is None:
        return f"{code} {params}"
    try:
        return template % params
    except (KeyError, TypeError, ValueError):
        return template

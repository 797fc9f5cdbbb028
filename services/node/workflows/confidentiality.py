"""Article XII, as the node enforces it: what an officer may do with a message it received.

- Forwarding (onward sharing) an H2 message needs the originator's consent for those recipients.
- Exporting an H1 message for use in judicial proceedings needs the originator's permission.
- Disclosing or exporting a confidential message needs a disclosure notice sent to the
  originator first (a recipient forced by law to disclose tells the supplier before it does).
- H3 restrictions are stated in words: the node shows them and leaves the judgement to people.

Pure functions over what the store knows (the message's handling, the consents received, the
notices sent); ``Refused`` says which rule applies and what would lift it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from schemas import HandlingCode
from schemas.confidentiality import ConsentDecision, IntendedUse


@dataclass(frozen=True)
class Consent:
    """An originator's answer about one message."""

    use: IntendedUse
    decision: ConsentDecision
    recipients: frozenset[str] = frozenset()  # for onward sharing: to whom
    valid_until: datetime | None = None

    def covers(self, use: IntendedUse, recipients: Iterable[str], at: datetime) -> bool:
        if self.decision is ConsentDecision.REFUSED or self.use is not use:
            return False
        if self.valid_until is not None and at >= self.valid_until:
            return False
        return use is not IntendedUse.ONWARD_SHARING or set(recipients) <= self.recipients


@dataclass(frozen=True)
class Refused:
    rule: str  # the article and code that applies
    remedy: str  # what would lift it


@dataclass(frozen=True)
class Received:
    """What the node knows of a message it received, for these rules."""

    originator: str
    handling: HandlingCode
    confidential: bool
    consents: tuple[Consent, ...] = ()
    #: a disclosure notice reached the originator (its signed receipt is in)
    disclosure_notice_delivered: bool = False


def may_forward(m: Received, to: Iterable[str], at: datetime) -> Refused | None:
    """Whether the message may be forwarded to ``to`` now; None when it may."""
    recipients = [r for r in to if r != m.originator]
    if not recipients:
        return Refused("nothing to forward", f"{m.originator} sent it: it has it")
    consented = any(c.covers(IntendedUse.ONWARD_SHARING, recipients, at) for c in m.consents)
    if m.handling is HandlingCode.H2 and not consented:
        return Refused(
            "Art. XII, handling H2: not to be disseminated further without the provider's "
            "permission",
            f"ask {m.originator} for consent to share with {', '.join(recipients)}",
        )
    if m.confidential and not consented:
        return Refused(
            "Art. XII: the supplier asked for confidentiality",
            f"ask {m.originator} for consent to share with {', '.join(recipients)}",
        )
    return None


def may_export(m: Received, *, judicial: bool, at: datetime) -> Refused | None:
    """Whether the message may be exported (disclosed outside the network); None when it may."""
    # a consent to share with named States Parties is not a consent to take it out of the network
    use = IntendedUse.JUDICIAL_USE if judicial else IntendedUse.EXTERNAL_DISCLOSURE
    permitted = any(c.covers(use, [], at) for c in m.consents)
    if judicial and m.handling is HandlingCode.H1 and not permitted:
        return Refused(
            "Art. XII, handling H1: not to be disclosed in judicial proceedings without the "
            "provider's permission",
            f"ask {m.originator} for permission for judicial use",
        )
    if m.handling is HandlingCode.H2 and not permitted:
        return Refused(
            "Art. XII, handling H2: not to be disseminated further without the provider's "
            "permission",
            f"ask {m.originator} for consent ({use.value})",
        )
    if m.confidential and not m.disclosure_notice_delivered:
        return Refused(
            "Art. XII: the supplier asked for confidentiality",
            f"send {m.originator} a disclosure notice, and wait for its receipt, before disclosing",
        )
    return None

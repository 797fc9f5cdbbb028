"""Article XII, as the node enforces it: what an officer may do with a message it received.

- Forwarding (onward sharing) an H2 message needs the originator's consent for those recipients.
- Exporting an H1 message for use in judicial proceedings needs the originator's permission.
- Disclosing or exporting a confidential message needs a disclosure notice sent to the
  originator first (a recipient forced by law to disclose tells the supplier before it does).
- H3 restrictions are stated in words: the node shows them and leaves the judgement to people.

Pure functions over what the store knows (the message's handling, the consents received, the
notices sent); ``Refused`` says which rule applies and what would lift it, as codes with their
parameters: front ends word them in the reader's language (``article12.rule.<rule>``,
``article12.remedy.<remedy>`` in services/i18n/codes.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from schemas import HandlingCode
from schemas.audit import EventType
from schemas.confidentiality import (
    ConsentAnswer,
    ConsentDecision,
    ConsentRequest,
    DisclosureNotice,
    IntendedUse,
)
from services.node.workflows.errors import IllegalTransition
from services.node.workflows.steps import Decision, Effects, Noted, Save, Step


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


#: Which rule of Art. XII refuses: nothing to forward (the recipients are the originator), H2
#: (no further dissemination), H1 (no judicial use), confidentiality asked by the supplier.
Rule = Literal["nothing_to_forward", "h2_onward", "h1_judicial", "confidential"]
#: What would lift it: nothing (the originator has it), its consent to share with ``states``,
#: its permission for judicial use, its consent to ``use``, a disclosure notice delivered first.
Remedy = Literal["originator_has_it", "ask_sharing", "ask_judicial", "ask_use", "send_notice"]


@dataclass(frozen=True)
class Refused:
    """Art. XII refuses: ``rule`` applies, ``remedy`` would lift it; ``params`` name the
    originator and, as the remedy needs them, the states (``states``) or the use (``use``)."""

    rule: Rule
    remedy: Remedy
    params: Mapping[str, object] = field(default_factory=dict)


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
        return Refused("nothing_to_forward", "originator_has_it", {"originator": m.originator})
    consented = any(c.covers(IntendedUse.ONWARD_SHARING, recipients, at) for c in m.consents)
    ask = {"originator": m.originator, "states": tuple(recipients)}
    # Art. XII, H2: not to be disseminated further without the provider's permission
    if m.handling is HandlingCode.H2 and not consented:
        return Refused("h2_onward", "ask_sharing", ask)
    if m.confidential and not consented:  # Art. XII: the supplier asked for confidentiality
        return Refused("confidential", "ask_sharing", ask)
    return None


def may_export(m: Received, *, judicial: bool, at: datetime) -> Refused | None:
    """Whether the message may be exported (disclosed outside the network); None when it may."""
    # a consent to share with named States Parties is not a consent to take it out of the network
    use = IntendedUse.JUDICIAL_USE if judicial else IntendedUse.EXTERNAL_DISCLOSURE
    permitted = any(c.covers(use, [], at) for c in m.consents)
    # Art. XII, H1: not to be used in judicial proceedings without the provider's permission
    if judicial and m.handling is HandlingCode.H1 and not permitted:
        return Refused("h1_judicial", "ask_judicial", {"originator": m.originator})
    if m.handling is HandlingCode.H2 and not permitted:
        return Refused("h2_onward", "ask_use", {"originator": m.originator, "use": use.value})
    # Art. XII: a recipient forced by law to disclose tells the supplier before it does
    if m.confidential and not m.disclosure_notice_delivered:
        return Refused("confidential", "send_notice", {"originator": m.originator})
    return None


# -- the record of one received message, and the messages that move it ---------------------------


@dataclass(frozen=True)
class Asked:
    """A consent request the holder sent the originator."""

    msg_id: str
    use: IntendedUse
    recipients: frozenset[str]
    answered: bool = False


@dataclass(frozen=True)
class Handling:
    """What happened under Art. XII to one message ``holder`` received from ``originator``."""

    subject_msg_id: str
    originator: str
    holder: str
    asked: tuple[Asked, ...] = ()
    consents: tuple[Consent, ...] = ()
    notices: tuple[str, ...] = ()  # msg_ids of the disclosure notices sent


@dataclass(frozen=True)
class Subject:
    """What this node's store knows of the message an Art. XII step is about."""

    direction: str  # "in": received here; "out": sent from here
    sender: str
    recipients: tuple[str, ...]
    kind: str
    copy_of: str | None = None  # the message it forwarded, if it is a forwarded copy
    provider: str | None = None  # who sent that message, if this node has it


def record_key(subject_msg_id: str, holder: str) -> str:
    """The key of a :class:`Handling` record at a node."""
    return f"{subject_msg_id}/{holder}"


def parties(step: Step) -> tuple[str, str]:
    """(holder, originator) of an Art. XII step: requests and notices go from the holder to the
    originator, answers the other way."""
    from_holder = isinstance(step.body, ConsentRequest | DisclosureNotice)
    if from_holder:
        return step.sender, step.recipients[0]
    return step.recipients[0], step.sender


def subject_of(step: Step) -> str:
    """The message an Art. XII step is about, for the caller to look up for :func:`decide`."""
    return str(step.body.subject_msg_id)  # type: ignore[attr-defined]


def key(step: Step) -> str:
    """The record ``step`` moves, for the caller to load (and its subject) for :func:`decide`."""
    return record_key(subject_of(step), parties(step)[0])


def decide(record: Handling | None, subject: Subject | None, step: Step) -> Decision[Handling]:
    """The record after ``step`` (``record``: the node's record under :func:`key`, ``subject``:
    the stored message it is about, None where there is none), and the audit event this node's
    own step is; :class:`IllegalTransition` says why the step is refused."""
    body, subject_id = step.body, subject_of(step)
    holder, originator = parties(step)
    # Art. XII: the supplier is asked, answers and is told; no one else
    if len(step.recipients) != 1:
        raise IllegalTransition("art12.one_state")
    _check_subject(subject, subject_id, step.party, holder=holder, originator=originator)
    record = record or Handling(subject_id, originator, holder)
    if isinstance(body, ConsentRequest):
        record, event = _asked(record, step, body), EventType.CONSENT_REQUESTED
    elif isinstance(body, ConsentAnswer):
        record, event = _answered(record, body), EventType.CONSENT_ANSWERED
    elif isinstance(body, DisclosureNotice):
        # Art. XII: a recipient forced by law to disclose tells the supplier before it does
        record = replace(record, notices=(*record.notices, step.msg_id))
        event = EventType.DISCLOSURE_NOTIFIED
    else:
        raise IllegalTransition("art12.not_a_step", kind=step.kind)
    noted = (Noted(event, subject_id),) if step.mine else ()
    save = Save(record_key(subject_id, holder), record, False, step.case_id)
    return Decision((save,), Effects(noted=noted))


def _asked(record: Handling, step: Step, body: ConsentRequest) -> Handling:
    recipients = frozenset(body.proposed_recipients)
    if body.use is IntendedUse.ONWARD_SHARING and (
        not recipients or recipients & {record.holder, record.originator}
    ):
        raise IllegalTransition("art12.onward_unnamed")
    return replace(record, asked=(*record.asked, Asked(step.msg_id, body.use, recipients)))


def _answered(record: Handling, body: ConsentAnswer) -> Handling:
    asked = next((a for a in record.asked if a.msg_id == body.request_msg_id), None)
    if asked is None:
        raise IllegalTransition("art12.no_request", request=body.request_msg_id)
    if asked.answered:
        raise IllegalTransition("art12.answered", request=body.request_msg_id)
    consent = Consent(asked.use, body.decision, asked.recipients, body.valid_until)
    return replace(
        record,
        asked=tuple(replace(a, answered=True) if a is asked else a for a in record.asked),
        consents=(*record.consents, consent),
    )


def _check_subject(
    m: Subject | None, subject_id: str, party: str, *, holder: str, originator: str
) -> None:
    """The subject is a message ``originator`` sent and ``holder`` received, as this node's
    store knows it (this node is one of the two)."""
    if party == holder:
        if m is None or m.direction != "in" or m.sender != originator:
            raise IllegalTransition("art12.not_received", msg_id=subject_id, originator=originator)
    else:
        if m is None or m.direction != "out" or holder not in m.recipients:
            raise IllegalTransition("art12.not_sent", msg_id=subject_id, holder=holder)
        if m.copy_of is not None:  # its provider decides, not the state that forwarded it
            if m.provider is None:
                raise IllegalTransition(
                    "art12.forwarded_copy_unknown", msg_id=subject_id, original=m.copy_of
                )
            raise IllegalTransition(
                "art12.forwarded_copy", msg_id=subject_id, original=m.copy_of, provider=m.provider
            )
    if m is not None and m.kind.startswith("protocol."):
        raise IllegalTransition("art12.protocol")


def received(
    originator: str,
    handling: HandlingCode,
    confidential: bool,
    record: Handling | None,
    notice_statuses: Iterable[str] = (),
) -> Received:
    """What these rules need to know of a received message, from its Art. XII record and the
    delivery statuses of the disclosure notices it lists."""
    return Received(
        originator=originator,
        handling=handling,
        confidential=confidential,
        consents=record.consents if record else (),
        # Art. XII: told *before* disclosing: the notice counts once its receipt is in
        disclosure_notice_delivered=any(s == "delivered" for s in notice_statuses),
    )

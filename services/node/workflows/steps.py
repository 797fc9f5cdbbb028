"""What a procedure's decide function takes and gives back: one message as a :class:`Step`, and a
:class:`Decision` (the states to save, the :class:`Effects` to carry out).

The decide functions of ``tracing``, ``transfers``, ``controlled_delivery`` and
``confidentiality`` are pure: they are handed the states the node holds (loaded by the caller),
read no store and no clock (time comes in with the step or the tick), and return values. Who may
send what to whom is decided here too, with :func:`addressed` and :func:`find_case`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, NoReturn, TypeVar

from schemas import Body, HandlingCode
from schemas.audit import EventType
from services.node.workflows.errors import IllegalTransition, NotYet, RefusalCode

_S = TypeVar("_S")


@dataclass(frozen=True)
class Step:
    """One message of a procedure, as this node (``party``) is about to store it: its own
    (``mine``: an officer's, to be refused with the reason) or another state's."""

    msg_id: str
    kind: str
    sender: str
    recipients: tuple[str, ...]
    at: datetime  # the message's created_at: the sender's time of the step
    body: Body
    party: str
    mine: bool
    handling: HandlingCode = HandlingCode.H1
    confidential: bool = False
    case_id: str | None = None


@dataclass(frozen=True)
class FollowUp:
    """A message the procedure asks this node to send now."""

    body: Body
    to: tuple[str, ...]
    handling: HandlingCode
    confidential: bool
    case_id: str | None
    in_reply_to: str | None = None


@dataclass(frozen=True)
class Noted:
    """An audit event about another stored message (the subject of an Art. XII step)."""

    event: EventType
    subject_msg_id: str


@dataclass(frozen=True)
class Effects:
    """What a step or a deadline asks of the node: messages to send, audit events to record,
    alerts to raise for its officers."""

    follow_ups: tuple[FollowUp, ...] = ()
    noted: tuple[Noted, ...] = ()
    alerts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Save(Generic[_S]):
    """A case's new state under ``key``; ``case_id`` is given when the case is opened (an update
    keeps the one it has)."""

    key: str
    state: _S
    open: bool
    case_id: str | None = None


@dataclass(frozen=True)
class Decision(Generic[_S]):
    """What a decide function decided: the states to save and the effects to carry out."""

    saves: tuple[Save[_S], ...] = ()
    effects: Effects = field(default_factory=Effects)


def addressed(step: Step, expected: Iterable[str], what: RefusalCode) -> None:
    """Every party of the case gets its messages, and no one else."""
    wanted = set(expected)
    if set(step.recipients) != wanted:
        raise IllegalTransition(
            what,
            expected=", ".join(sorted(wanted)) or "-",
            recipients=", ".join(sorted(step.recipients)),
        )


def find_case(
    cases: Mapping[str, _S],
    case_id: str,
    step: Step,
    *,
    id_of: Callable[[_S], str],
    owner_of: Callable[[_S], str],
    parties_of: Callable[[_S], Iterable[str]],
    noun: Literal["transfer", "delivery"],
    missing: tuple[RefusalCode, dict[str, str]],
) -> tuple[str, _S]:
    """The case a message names by its id, among ``cases`` (key -> state, oldest first) those
    both its sender and this node are parties to. Two states may use the same id; the
    recipients then tell them apart: the case's owner (its exporter or proposer) is among them
    or sent it."""
    found, known = [], []
    for key, case in cases.items():
        parties = set(parties_of(case))
        if id_of(case) == case_id and step.party in parties:
            known.append(case)
            if step.sender in parties:
                found.append((key, case))
    if len(found) > 1:
        found = [(k, c) for k, c in found if owner_of(c) in {step.sender, *step.recipients}]
    if len(found) == 1:
        return found[0]
    if not found and known and all(owner_of(c) in step.recipients for c in known):
        stranger: RefusalCode = f"{noun}.not_a_party"  # type: ignore[assignment]
        raise IllegalTransition(stranger, party=step.sender, case=case_id)
    if not found:
        # the case is opened by its owner: another party's message can overtake that one
        not_yet(step, missing[0], **missing[1])
    ambiguous: RefusalCode = f"{noun}.ambiguous"  # type: ignore[assignment]
    raise IllegalTransition(ambiguous, case=case_id)


def not_yet(step: Step, code: RefusalCode, **params: str) -> NoReturn:
    """Refuse a step that may fit once a message still in flight arrives: an officer's own step
    outright (:class:`IllegalTransition`), another state's for now (:class:`NotYet`)."""
    raise (IllegalTransition if step.mine else NotYet)(code, **params)

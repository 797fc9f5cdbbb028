"""Commands and answers of the Convention's procedures: tracing (Art. XIII.3), licensed
transfers (Art. IX), controlled deliveries (Art. XVIII) and Article XII's consents, disclosure
notices, forwarding and export. Each command names only what the officer decides; the layer
fills in what the procedure already knows (ids, the parties, the officer, due dates)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from schemas.confidentiality import ConsentDecision, IntendedUse
from schemas.controlled_delivery import ClosureOutcome, InterceptionDecision
from schemas.tracing import Outcome, Priority
from schemas.transfers import Decision
from services.node.application.models import Attaching, Command, Handling, Model, When

# -- tracing (Art. XIII.3) ---------------------------------------------------------------------


class FileTracingRequest(Command, Handling, Attaching):
    """File a tracing request. ``body`` is a tracing.request; its ``requesting_officer``,
    ``due_at`` and (unless given here) ``priority`` are filled in; the case is its
    ``case_reference`` unless ``case_id`` says otherwise. ``to``: by default the country of
    manufacture and of last legal import."""

    body: dict[str, Any]
    to: list[str] = []
    priority: Priority | None = None
    justification: str | None = None
    case_id: str | None = None


class AcknowledgeTrace(Command):
    request_msg_id: str
    reference: str | None = None
    expected_by: When | None = None


class AnswerTrace(Command):
    """Answer a tracing request: with ``body`` (a tracing.response; its ``request_msg_id`` and
    ``responding_officer`` are filled in), or ``outcome=not_found`` and a ``narrative``."""

    request_msg_id: str
    body: dict[str, Any] | None = None
    outcome: Outcome | None = None
    narrative: str | None = None


class TraceView(Model):
    request_msg_id: str
    short_id: str
    requester: str
    requested: str
    priority: str
    status: str
    overdue: bool
    filed_at: datetime
    due_at: datetime
    acknowledged_at: datetime | None
    answered_at: datetime | None
    outcome: str | None
    reminders_sent: int
    overdue_sent: bool


class TraceStatsView(Model):
    state: str
    received: int
    answered: int
    median_response_h: float | None
    p90_response_h: float | None
    on_time_share: float | None
    outcomes: dict[str, int]


# -- licensed transfers (Art. IX) ----------------------------------------------------------------


class NotifyTransfer(Command, Handling):
    body: dict[str, Any]
    case_id: str | None = None


class ConfirmTransfer(Command, Handling):
    """The importing state confirms its licence; a transit state authorizes the transit."""

    transfer_id: str
    exporter: str | None = None
    decision: Decision = Decision.AUTHORIZED
    reason: str | None = None
    conditions: list[str] = []
    number: str | None = None
    valid_until: date | None = None


class DispatchTransfer(Command, Handling):
    transfer_id: str
    carrier: str
    document: str
    seals: list[str] = []
    arrival: date | None = None
    lines: dict[int, int] = {}  # line -> quantity shipped, where not as notified


class ReceiveTransfer(Command, Handling):
    transfer_id: str
    exporter: str | None = None
    place: str
    lines: dict[int, int] = {}  # line -> quantity received, where not as dispatched
    remarks: dict[int, str] = {}


class TransferView(Model):
    transfer_id: str
    exporter: str
    importer: str
    transit: list[str]
    stage: str
    missing_confirmations: list[str]
    refused_by: str | None
    expected_arrival: date
    dispatched: dict[int, int]
    received: dict[int, int]
    discrepancies: list[tuple[int, int, int]]  # line, dispatched, received
    overdue_alerted: bool


# -- controlled deliveries (Art. XVIII) --------------------------------------------------------


class ProposeDelivery(Command, Handling):
    body: dict[str, Any]
    case_id: str | None = None


class OperationStep(Command, Handling):
    operation_id: str
    proposer: str | None = None


class ConsentDelivery(OperationStep):
    conditions: list[str] = []


class DeclineDelivery(OperationStep):
    reason: str


class RecordHandover(OperationStep):
    from_state: str
    to_state: str
    place: str
    at: When | None = None
    containers: list[str] = []
    seals: list[str] = []
    seals_intact: bool = True
    remarks: str | None = None


class RecordInterception(OperationStep):
    decision: InterceptionDecision
    inventory: list[dict[str, Any]] = []
    new_seals: list[str] = []
    at: When | None = None


class CloseDelivery(OperationStep):
    outcome: ClosureOutcome
    summary: str


class TimelineEntry(Model):
    """One step of an operation's timeline: a code (``timeline.<code>`` in the catalogs) and its
    parameters, which front ends show in their reader's language."""

    at: datetime
    code: str
    params: dict[str, str]


class OperationView(Model):
    operation_id: str
    proposer: str
    participants: list[str]
    phase: str
    custody: str | None
    awaiting: list[str]
    route: list[str]
    timeline: list[str] = Field(description="the entries in English, one dated line each")
    entries: list[TimelineEntry]


# -- Article XII ---------------------------------------------------------------------------------


class RequestConsent(Command):
    msg_id: str
    use: IntendedUse
    to: list[str] = []
    purpose: str


class AnswerConsent(Command):
    request_msg_id: str
    decision: ConsentDecision
    conditions: list[str] = []
    reason: str | None = None
    valid_until: When | None = None


class NotifyDisclosure(Command):
    msg_id: str
    to: str
    legal_basis: str
    scope: str
    at: When | None = None


class ForwardMessage(Command):
    msg_id: str
    to: list[str]


class ExportMessage(Command):
    """Take a message out of the network; there is nothing to preview (``dry_run`` stays off)."""

    msg_id: str
    judicial: bool = False
    dry_run: Literal[False] = False


class Exported(Model):
    """The record an export writes (the front end puts it where it goes)."""

    record: dict[str, Any]
    msg_id: str
    kind: str

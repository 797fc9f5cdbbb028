"""What front ends send to the application layer and get back: pydantic models, one per command
or query, and one per answer. Fields are named as a form names them; every time is aware.

A command that records an action names its officer (:class:`OfficerIdentity`); every command that
queues a message takes ``dry_run``: the message is composed and checked exactly as it would be
sealed, then nothing is kept, and the answer's ``preview`` says what would go to whom.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from schemas import HandlingCode
from schemas.base import Officer

#: One part of an officer's identity; three of them fit the audit record's 200 characters.
_Part = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def _aware(value: object) -> object:
    """``YYYY-MM-DD`` (midnight UTC) or RFC 3339; UTC when no offset is given."""
    if isinstance(value, str) and len(value.strip()) == 10:
        value = f"{value.strip()}T00:00:00+00:00"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


#: A time as a person writes it: ``YYYY-MM-DD`` or RFC 3339.
When = Annotated[datetime, BeforeValidator(_aware)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OfficerIdentity(Model):
    """The officer acting: recorded with every action (opened, sent, forwarded, exported)."""

    name: _Part
    position: _Part
    agency: _Part

    @property
    def recorded(self) -> str:
        """As the audit record names the officer."""
        return f"{self.name} ({self.position}, {self.agency})"

    def as_officer(self) -> Officer:
        """As messages name an official (tracing responses, consents, receipts)."""
        return Officer(name=self.name, position=self.position, agency=self.agency)


class Notice(Model):
    """Something the front end should tell the officer: a code and its parameters."""

    code: str
    params: dict[str, Any] = {}


class Handling(Model):
    """A message's handling code (Art. XII), its H3 restriction and confidentiality. ``handling``
    None: the procedure's default (H1; H2 for controlled deliveries; a reply keeps its
    original's)."""

    handling: HandlingCode | None = None
    note: str | None = None
    confidential: bool | None = None


class Command(Model):
    """What every recorded action carries."""

    officer: OfficerIdentity
    dry_run: bool = False


class Preview(Model):
    """Exactly what would be sealed, and for whom."""

    kind: str
    sender: str
    recipients: list[str]
    handling: HandlingCode
    handling_note: str | None
    confidential: bool
    case_id: str | None
    in_reply_to: str | None
    created_at: datetime
    expires_at: datetime | None
    body: dict[str, Any]


class Queued(Model):
    """A message queued (``sealed``), or, for a dry run, what would have been."""

    msg_id: str
    short_id: str
    kind: str
    recipients: list[str]
    case_id: str | None = None
    sealed: bool = True
    preview: Preview | None = None
    notices: list[Notice] = []


# -- messages ---------------------------------------------------------------------------------


class Attaching(Model):
    """Files to send with the message (photographs of markings, licences, scans): each sealed,
    stored at the hub for every recipient, then named in the sealed body. A command with files
    goes through ``Application.send_attached``."""

    attachments: list[Path] = []


class SendMessage(Command, Handling, Attaching):
    """Seal a body of ``kind`` for ``to`` and queue it."""

    kind: str
    body: dict[str, Any]
    to: list[str]
    case_id: str | None = None
    expires_at: When | None = None


class ReplyMessage(Command, Handling):
    """Answer a stored message in its case (to its sender; with ``to_all``, to all)."""

    msg_id: str
    kind: str
    body: dict[str, Any]
    to_all: bool = False


Direction = Literal["in", "out", "all"]


class InboxQuery(Model):
    """Which messages to list; received ones by default."""

    direction: Direction = "in"
    case_id: str | None = None
    kind: str | None = None  # a kind, or a family such as tracing.*
    state: str | None = None
    unread: bool = False
    protocol: bool = False  # receipts and rejections too
    since: When | None = None  # stored at or after (a date is its midnight UTC)
    until: When | None = None  # stored before


class MessageSummary(Model):
    """A message as lists show it (no body: listing opens nothing)."""

    msg_id: str
    short_id: str
    direction: Literal["in", "out"]
    kind: str
    title: str = Field(description="the kind's English title, a gettext msgid to translate")
    sender: str
    recipients: list[str]
    handling: str
    confidential: bool
    case_id: str | None
    in_reply_to: str | None
    created_at: str
    stored_at: str
    read: bool


class FieldView(Model):
    """One labelled field of a body: ``path`` names it (``firearm.markings.serial_number``),
    front ends label it; ``value`` is the value as text; ``code`` names an explanation
    (``evaluation.source.B``) where the value is a code."""

    path: str
    value: str
    code: str | None = None


class MessageView(Model):
    """An opened message: its summary, its fields and the explanations of its codes."""

    summary: MessageSummary
    handling_note: str | None
    expires_at: datetime | None
    body: dict[str, Any]
    fields: list[FieldView]
    explanations: list[str] = Field(description="codes to explain: handling.H2, evaluation...")
    opened_by: str


class RecipientStatusView(Model):
    recipient: str
    state: str
    at: str | None
    attempts: int
    reason: str | None
    detail: str | None
    last_error: str | None


class KindInfo(Model):
    kind: str
    family: str


class Template(Model):
    """A body of ``kind`` to fill in: every value to give is a placeholder (``placeholders``
    lists their paths), so it does not pass until filled in."""

    kind: str
    body: dict[str, Any]
    placeholders: list[str]


class Deadline(Model):
    """Something due at this node: ``what`` is a code (``tracing.answer_due``...)."""

    family: Literal["tracing", "transfer", "delivery"]
    what: str
    reference: str
    parties: list[str]
    due_at: datetime | None
    overdue: bool


class Alert(Model):
    """Something the node raised for its operator (a procedure's deadline, its clock)."""

    at: str
    source: str
    detail: str


# -- attachments ------------------------------------------------------------------------------

#: Where a message's attachment is: this node holds its verified copy; it is still to be fetched
#: from the hub; or it was refused (its reason code in ``reason``).
AttachmentState = Literal["held", "pending", "refused"]


class AttachmentView(Model):
    """One attachment of a message, as its manifest names it, and whether this node holds it."""

    name: str
    media_type: str
    size: int
    ciphertext_sha256: str
    state: AttachmentState
    reason: str | None = None
    detail: str | None = None


class SaveAttachment(Command):
    """Decrypt one attachment of a message (named as listed) into the file ``out``."""

    msg_id: str
    name: str
    out: Path
    force: bool = False


class SavedAttachment(Model):
    msg_id: str
    name: str
    size: int
    out: Path

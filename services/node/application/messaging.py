"""An officer's messages: send, reply, list, open (rendered as labelled fields with its codes
explained), status per recipient, a case's thread, templates to fill in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from schemas import BODY_MODELS, HandlingCode
from schemas.attachment import AttachmentManifest
from schemas.registry import UnknownKindError, example_body
from services.i18n import kinds as kind_titles
from services.node.application.errors import ApplicationError
from services.node.application.models import (
    FieldView,
    InboxQuery,
    KindInfo,
    MessageSummary,
    MessageView,
    OfficerIdentity,
    Queued,
    RecipientStatusView,
    ReplyMessage,
    SendMessage,
    Template,
)
from services.node.application.plumbing import (
    PLACEHOLDER,
    check_recipients,
    handling_options,
    parse_body,
    placeholders,
    refusals,
    resolve,
    short_id,
    submit,
    with_attachments,
)
from services.node.core import NodeCore
from services.node.store import StoredMessage


def send(
    core: NodeCore, cmd: SendMessage, attachments: Sequence[AttachmentManifest] = ()
) -> Queued:
    """Seal and queue ``cmd``'s body, naming ``attachments`` (already stored at the hub for
    every recipient: ``attachments.send``)."""
    body = with_attachments(parse_body(cmd.kind, cmd.body), attachments)
    to = check_recipients(core, cmd.to)
    check_expiry(core, cmd.expires_at)
    options = handling_options(cmd, HandlingCode.H1) if cmd.handling else None
    if options is None:
        raise ApplicationError("field.required", field="handling", when=None)
    return submit(
        core,
        body,
        cmd,
        lambda: core.compose(
            body,
            to,
            case_id=cmd.case_id,
            expires_at=cmd.expires_at,
            **options,
        ),
    )


def reply(core: NodeCore, cmd: ReplyMessage) -> Queued:
    original = resolve(core, cmd.msg_id)
    body = parse_body(cmd.kind, cmd.body)
    handling = None
    if cmd.handling is not None:
        handling = handling_options(cmd, cmd.handling)["handling"]
    elif cmd.note and original.handling != HandlingCode.H3.value:
        # the reply keeps its original's handling code; a restriction goes only with H3
        raise ApplicationError("field.invalid", field="note", problem="only_with_h3")
    return submit(
        core,
        body,
        cmd,
        lambda: core.reply(
            original.msg_id,
            body,
            to_all=cmd.to_all,
            handling=handling,
            confidential=cmd.confidential,
            handling_note=cmd.note,
        ),
    )


def summary(m: StoredMessage) -> MessageSummary:
    return MessageSummary(
        msg_id=m.msg_id,
        short_id=short_id(m.msg_id),
        direction=m.direction,
        kind=m.kind,
        title=kind_titles.title(m.kind),
        sender=m.sender,
        recipients=list(m.recipients),
        handling=m.handling,
        confidential=bool(m.confidential),
        case_id=m.case_id,
        in_reply_to=m.in_reply_to,
        created_at=m.created_at,
        stored_at=m.stored_at,
        read=m.first_read_at is not None,
    )


def inbox(core: NodeCore, q: InboxQuery) -> list[MessageSummary]:
    messages = core.store.messages(
        direction=None if q.direction == "all" else q.direction,
        case_id=q.case_id,
        kind=q.kind,
        party=q.state.upper() if q.state else None,
        unread=q.unread,
        include_protocol=q.protocol,
    )
    return [summary(m) for m in messages if _within(m.stored_at, q)]


def _within(stored_at: str, q: InboxQuery) -> bool:
    """Whether a message stored at ``stored_at`` (RFC 3339) falls in the query's dates."""
    if q.since is None and q.until is None:
        return True
    at = datetime.fromisoformat(stored_at.replace("Z", "+00:00"))
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return (q.since is None or at >= q.since) and (q.until is None or at < q.until)


def check_expiry(core: NodeCore, expires_at: datetime | None) -> None:
    """An expiry after the instant of sealing: one at or before it would be sealed and queued
    only for every recipient to reject it as ``expired`` (docs/envelope.md, the header check)."""
    if expires_at is not None and expires_at <= core.clock():
        raise ApplicationError(
            "value.invalid", field="expires_at", value=expires_at.isoformat(), expected="future"
        )


def thread(core: NodeCore, case_id: str) -> list[MessageSummary]:
    """A case's messages, sent and received, oldest first."""
    return inbox(core, InboxQuery(direction="all", case_id=case_id))


def show(core: NodeCore, msg_id: str, officer: OfficerIdentity) -> MessageView:
    """Open a message for ``officer``; the opening is recorded under the officer's name."""
    message = resolve(core, msg_id)
    with refusals():
        _, opened = core.read(message.msg_id, officer.recorded)
    body = json.loads(opened.plaintext)
    h = opened.header
    fields = list(_fields(body))
    explanations = [f"handling.{h.handling.value}"]
    explanations += [f.code for f in fields if f.code and f.code not in explanations]
    if h.confidential:
        explanations.append("confidential")
    return MessageView(
        summary=summary(core.store.message(message.msg_id) or message),
        handling_note=h.handling_note,
        expires_at=h.expires_at,
        body=body,
        fields=fields,
        explanations=explanations,
        opened_by=officer.recorded,
    )


def _fields(value: Any, path: str = "") -> list[FieldView]:
    """A body as labelled leaves; an evaluation's codes (4x4 grading) named for explaining."""
    if isinstance(value, dict):
        if path.split(".")[-1] in ("kind", "schema_version"):
            return []
        out: list[FieldView] = []
        for k, v in value.items():
            # the attachments are listed apart, and their manifests hold their keys: never a field
            if not path and k in ("kind", "schema_version", "attachments"):
                continue
            out += _fields(v, f"{path}.{k}".lstrip("."))
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            out += _fields(v, f"{path}[{i + 1}]")
        return out
    leaf = path.rsplit(".", 1)[-1]
    code = None
    if ".evaluation." in f".{path}" and leaf in ("source", "information"):
        code = f"evaluation.{leaf}.{value}"
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return [FieldView(path=path, value=text, code=code)]


def status(core: NodeCore, msg_id: str) -> tuple[MessageSummary, list[RecipientStatusView]]:
    """Where one of this node's messages stands with each recipient."""
    message = resolve(core, msg_id)
    if message.direction != "out":
        raise ApplicationError("message.not_sent", msg_id=message.msg_id)
    rows = [
        RecipientStatusView(
            recipient=s.recipient,
            state=s.state,
            at=s.answered_at or s.sent_at,
            attempts=s.attempts,
            reason=s.reason,
            detail=s.detail,
            last_error=s.last_error,
        )
        for s in core.store.recipient_statuses(message.msg_id)
    ]
    return summary(message), rows


def kinds() -> list[KindInfo]:
    """The kinds an officer may write."""
    return [
        KindInfo(kind=k, family=k.split(".")[0])
        for k in sorted(BODY_MODELS)
        if not k.startswith("protocol.")
    ]


#: What the commands fill in themselves (tracing.py): a template asking for it would have the
#: officer type what is known, or be refused for it (a request id that is not the request's).
LAYER_FILLED: dict[str, tuple[str, ...]] = {
    "tracing.request": ("due_at", "priority", "urgency_justification", "requesting_officer"),
    "tracing.response": ("request_msg_id", "responding_officer"),
}


def template(kind: str, *, example: bool = False) -> Template:
    """A body of ``kind`` to fill in: the documented example's shape with every value a
    placeholder that says what is expected (it does not pass until each is replaced). With
    ``example``, the documented example itself."""
    try:
        sample = example_body(kind).model_dump(mode="json", exclude_none=False)
    except UnknownKindError:
        raise ApplicationError("kind.unknown", kind=kind) from None
    if example:
        return Template(kind=kind, body=sample, placeholders=[])
    filled = LAYER_FILLED.get(kind, ())
    body = {
        k: (v if k in ("kind", "schema_version") else _blank(v))
        for k, v in sample.items()
        if k not in filled
    }
    return Template(kind=kind, body=body, placeholders=placeholders(body))


def _blank(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _blank(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v) for v in value[:1]]
    if value is None or isinstance(value, bool):
        return value
    return f"{PLACEHOLDER}, e.g. {value}>"

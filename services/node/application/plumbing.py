"""What every command shares: resolving a message id, reading a body, checking recipients,
composing with a dry run, and turning the node's exceptions into :class:`ApplicationError`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas import BODY_MODELS, Body, HandlingCode
from schemas.attachment import AttachmentManifest, Attachments
from services.core.directory import DirectoryError
from services.core.envelope import EnvelopeError, ProtectedHeader
from services.node.application.errors import ApplicationError
from services.node.application.models import Command, Handling, Preview, Queued
from services.node.core import Article12Refusal, ClockError, ComposeError, NodeCore
from services.node.outbound import StepRefused
from services.node.store import StoredMessage, iso
from services.node.workflows.errors import IllegalTransition

M = TypeVar("M", bound=BaseModel)
B = TypeVar("B", bound=Body)
_ATTACHMENTS: TypeAdapter[list[AttachmentManifest]] = TypeAdapter(Attachments)

#: Shorter fragments of an id match too much to be meant.
MIN_ID_FRAGMENT = 6
#: Where a template leaves a value to give (templates.py writes it, bodies must not carry it).
PLACEHOLDER = "<fill in"


def short_id(msg_id: str) -> str:
    """The part of a message id lists show: its last 8 hex digits (UUIDv7's random tail, where
    the leading digits are the creation time and shared by messages of the same minute)."""
    return msg_id[-8:]


def resolve(core: NodeCore, text: str) -> StoredMessage:
    """The stored message a person means: its full id, or a unique prefix or short id."""
    fragment = text.strip().lower()
    message = core.store.message(fragment)
    if message is not None:
        return message
    if len(fragment) < MIN_ID_FRAGMENT:
        raise ApplicationError("message.id_too_short", prefix=text, minimum=MIN_ID_FRAGMENT)
    found = core.store.message_ids_matching(fragment)
    if not found:
        raise ApplicationError("message.not_found", msg_id=text)
    if len(found) > 1:
        raise ApplicationError("message.ambiguous_id", prefix=text, candidates=found)
    message = core.store.message(found[0])
    assert message is not None
    return message


def validation_problems(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as codes: the field's path, the problem's type, the input."""
    out = []
    for e in exc.errors()[:10]:
        problem: dict[str, Any] = {
            "field": ".".join(str(p) for p in e["loc"]) or "body",
            "problem": e["type"],
        }
        if e["type"] == "value_error":  # the schema's own check: its reason is the cause
            problem["detail"] = str(e.get("ctx", {}).get("error", ""))
        if isinstance(e.get("input"), str | int | float | bool):
            problem["input"] = e["input"]
        out.append(problem)
    return out


def command(model: type[M], **data: Any) -> M:
    """Build a command from a front end's values; a bad value is ``value.invalid`` naming the
    field and the format expected (``date``, ``datetime``, ``integer``, ``one_of``...)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        field = str(e["loc"][0]) if e["loc"] else ""
        kind = e["type"]
        expected = (
            "datetime"
            if kind.startswith(("datetime", "timezone"))
            else "date"
            if kind.startswith("date")
            else "integer"
            if kind.startswith("int")
            else "one_of"
            if kind in ("enum", "literal_error")
            else "value"
        )
        if kind == "missing":
            raise ApplicationError("field.required", field=field, when=None) from None
        if kind == "value_error":  # a When's own parsing ("month must be in 1..12")
            expected = _time_format(model, field) or expected
        params: dict[str, Any] = {"field": field, "value": e.get("input"), "expected": expected}
        if expected == "one_of":
            params["choices"] = e.get("ctx", {}).get("expected")
        raise ApplicationError("value.invalid", **params) from None


def _time_format(model: type[BaseModel], field: str) -> str | None:
    """``datetime`` or ``date`` where ``field`` of ``model`` holds one: a value it refused is
    then answered with the format to type, whatever the parser's complaint was."""
    info = model.model_fields.get(field)
    if info is None:
        return None
    types = _types(info.annotation)
    return "datetime" if datetime in types else "date" if date in types else None


def _types(annotation: Any) -> set[Any]:
    """The types an annotation names, through ``X | None`` and ``Annotated[X, ...]``."""
    args = get_args(annotation)
    return {annotation} if not args else {t for a in args for t in _types(a)}


def parse_body(kind: str, payload: dict[str, Any], fill: dict[str, Any] | None = None) -> Body:
    """A body of ``kind`` from a form or a JSON file, with ``fill`` put where it says nothing."""
    model = BODY_MODELS.get(kind)
    if model is None:
        raise ApplicationError("kind.unknown", kind=kind)
    if kind.startswith("protocol."):
        raise ApplicationError("kind.protocol", kind=kind)
    unfilled = placeholders(payload)
    if unfilled:
        raise ApplicationError("body.not_filled_in", kind=kind, fields=unfilled)
    data = {**(fill or {}), **{k: v for k, v in payload.items() if v is not None}, "kind": kind}
    try:
        return model.model_validate_json(json.dumps(data, default=str))
    except ValidationError as exc:
        raise ApplicationError(
            "body.invalid", kind=kind, problems=validation_problems(exc)
        ) from None


def with_attachments(body: B, manifests: Sequence[AttachmentManifest]) -> B:
    """``body`` naming ``manifests`` too (the envelope's signature then covers them)."""
    if not manifests:
        return body
    try:
        # model_copy does not validate: check the field as a recipient will (distinct names
        # and objects, at most MAX_ATTACHMENTS), so nothing is sealed that all would refuse
        named = _ATTACHMENTS.validate_python([*body.attachments, *manifests])
    except ValidationError as exc:
        problem = "; ".join(e["msg"] for e in exc.errors())
        raise ApplicationError("attachment.invalid", problem=problem) from None
    return body.model_copy(update={"attachments": named})


def placeholders(value: Any, path: str = "") -> list[str]:
    """The paths where a template's placeholder is still in place."""
    if isinstance(value, str):
        return [path or "body"] if value.startswith(PLACEHOLDER) else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in placeholders(v, f"{path}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in placeholders(v, f"{path}[{i}]")]
    return []


def check_recipients(core: NodeCore, to: list[str]) -> list[str]:
    """The states a message goes to, each on the network and none this node."""
    states = list(dict.fromkeys(s.strip().upper() for s in to if s.strip()))
    if not states:
        raise ApplicationError("recipient.none")
    for s in states:
        if s == core.party:
            raise ApplicationError("recipient.self", party=s)
        if s not in core.directory.entries:
            raise ApplicationError("recipient.unknown", party=s, problem="not_in_directory")
    return states


def handling_options(h: Handling, default: HandlingCode) -> dict[str, Any]:
    """compose()'s handling options; H3 must state its restriction (Art. XII)."""
    code = h.handling or default
    # the header carries a restriction exactly with H3 (docs/envelope.md, the protected header)
    if code is HandlingCode.H3 and not h.note:
        raise ApplicationError("field.required", field="note", when="handling=H3")
    if code is not HandlingCode.H3 and h.note:
        raise ApplicationError("field.invalid", field="note", problem="only_with_h3")
    return {"handling": code, "confidential": bool(h.confidential), "handling_note": h.note}


class _DryRun(Exception):
    def __init__(self, header: ProtectedHeader) -> None:
        self.header = header


@contextmanager
def refusals() -> Iterator[None]:
    """The node's refusals as error codes."""
    try:
        yield
    except Article12Refusal as exc:
        refused = exc.refused
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in refused.params.items()}
        raise ApplicationError(
            "article12.refused", rule=refused.rule, remedy=refused.remedy, **params
        ) from None
    except ClockError as exc:
        clock = exc.problem
        raise ApplicationError(
            "node.clock_off", offset_s=round(clock.offset_s), measured_at=iso(clock.measured_at),
            tolerance_s=round(clock.tolerance_s),
        ) from None  # fmt: skip
    except StepRefused as exc:
        raise step_refused(exc.kind, exc.refusal) from None
    except ComposeError as exc:
        raise ApplicationError("compose.refused", problem=str(exc)) from None
    except DirectoryError as exc:
        raise ApplicationError("recipient.unknown", party="", problem=str(exc)) from None
    except EnvelopeError as exc:
        raise ApplicationError("message.unreadable", msg_id="", reason=exc.reason.value) from None


def step_refused(kind: str, refusal: IllegalTransition) -> ApplicationError:
    """The layer's error for a step the procedure refuses: the workflow's refusal code and its
    parameters beside it (all short strings; front ends render ``refusal.<reason>`` with them).
    A refusal's own ``kind`` parameter is the same step's kind."""
    return ApplicationError(
        "procedure.step_refused", **{**refusal.params, "kind": kind, "reason": refusal.code}
    )


def submit(
    core: NodeCore, body: Body, cmd: Command, compose: Callable[[], ProtectedHeader]
) -> Queued:
    """Run ``compose`` (which queues ``body``) for ``cmd``'s officer, recorded in the audit log
    as the one who sent it; for a dry run, roll everything back and say what would have been
    sealed. Every check runs either way: the preview is what sending does."""
    with refusals():
        try:
            with core.store.transaction():
                header = compose()
                if cmd.dry_run:
                    raise _DryRun(header)
                core.record_sent(header, cmd.officer.recorded)
        except _DryRun as dry:
            return queued(dry.header, preview(core, dry.header, body))
    return queued(header)


def queued(header: ProtectedHeader, preview: Preview | None = None) -> Queued:
    return Queued(
        msg_id=header.msg_id,
        short_id=short_id(header.msg_id),
        kind=header.kind,
        recipients=list(header.recipients),
        case_id=header.case_id,
        sealed=preview is None,
        preview=preview,
    )


def preview(core: NodeCore, h: ProtectedHeader, body: Body) -> Preview:
    return Preview(
        kind=h.kind,
        sender=h.sender,
        recipients=list(h.recipients),
        handling=h.handling,
        handling_note=h.handling_note,
        confidential=h.confidential,
        case_id=h.case_id,
        in_reply_to=h.in_reply_to,
        created_at=h.created_at,
        expires_at=h.expires_at,
        body=body.model_dump(mode="json"),
    )

"""Every body kind and the model that validates it, plus the non-body contract models."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

from schemas.base import Body
from schemas.wirejson import WireJSONError, loads_strict


class UnknownKindError(ValueError):
    """The kind names no model in the contract."""


#: kind -> model. Filled by the family modules through :func:`body`.
BODY_MODELS: dict[str, type[Body]] = {}
#: name -> model, for contract models that are not envelope bodies (directory, audit).
RECORD_MODELS: dict[str, type[BaseModel]] = {}

B = TypeVar("B", bound=type[Body])
M = TypeVar("M", bound=type[BaseModel])


def body(model: B) -> B:
    """Register a body model under its ``KIND``; a kind can be registered once."""
    kind = model.KIND
    if not kind or "." not in kind:
        raise ValueError(f"{model.__name__} has no family.kind")
    if kind in BODY_MODELS:
        raise ValueError(f"kind {kind} registered twice")
    BODY_MODELS[kind] = model
    return model


def record(name: str) -> Callable[[M], M]:
    """Register a non-body contract model (its JSON Schema is generated too)."""

    def register(model: M) -> M:
        if name in RECORD_MODELS:
            raise ValueError(f"record {name} registered twice")
        RECORD_MODELS[name] = model
        return model

    return register


def parse_body(kind: str, data: bytes) -> Body:
    """Validate JSON bytes as the body of ``kind``; raise UnknownKindError or ValidationError."""
    try:
        model = BODY_MODELS[kind]
    except KeyError:
        raise UnknownKindError(kind) from None
    return model.model_validate_json(data)


#: Members every received body carries (docs/envelope.md section 10), whatever its kind.
REQUIRED_BODY_MEMBERS = ("kind", "schema_version")
_REQUIRED = frozenset(REQUIRED_BODY_MEMBERS)


def open_body(kind: str, data: bytes) -> Body:
    """Validate a received body of ``kind`` exactly as the published JSON Schema does.

    Strict JSON (no BOM, no duplicate member at any depth), an object carrying ``kind`` and
    ``schema_version``, and no coercion (``true`` is not an integer, a number is not a time).
    Raise UnknownKindError, WireJSONError or pydantic's ValidationError (all ValueErrors).
    """
    try:
        model = BODY_MODELS[kind]
    except KeyError:
        raise UnknownKindError(kind) from None
    raw = loads_strict(data)
    if not isinstance(raw, dict):
        raise WireJSONError("a body is a JSON object")
    if not raw.keys() >= _REQUIRED:
        missing = [m for m in REQUIRED_BODY_MEMBERS if m not in raw]
        raise WireJSONError(f"body without {' and '.join(missing)}")
    # The validator itself: pydantic's model_validate_json wrapper costs a tenth of a validation.
    body: Body = model.__pydantic_validator__.validate_json(data, strict=True)
    return body


def example_body(kind: str) -> Body:
    """The first documented example of ``kind``, validated (templates, demos, tests)."""
    try:
        model = BODY_MODELS[kind]
    except KeyError:
        raise UnknownKindError(kind) from None
    extra = model.model_config.get("json_schema_extra")
    if not isinstance(extra, dict) or not extra.get("examples"):
        raise UnknownKindError(f"{kind} has no example")
    examples = extra["examples"]
    assert isinstance(examples, list)
    return model.model_validate(examples[0])

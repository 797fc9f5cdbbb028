"""Every body kind and the model that validates it, plus the non-body contract models."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

from schemas.base import Body


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

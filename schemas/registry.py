"""Every body kind and the model that validates it."""

from __future__ import annotations

from schemas.base import Body


class UnknownKindError(ValueError):
    """The kind names no model in the contract."""


#: kind -> model. Filled from the family modules.
BODY_MODELS: dict[str, type[Body]] = {}


def parse_body(kind: str, data: bytes) -> Body:
    """Validate JSON bytes as the body of ``kind``; raise UnknownKindError or ValidationError."""
    try:
        model = BODY_MODELS[kind]
    except KeyError:
        raise UnknownKindError(kind) from None
    return model.model_validate_json(data)

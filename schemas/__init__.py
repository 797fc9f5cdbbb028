"""The wire contract of CIFTA Exchange: every message body, by family, and the reason codes.

``parse_body(kind, data)`` is the one entry point a node needs: it validates JSON bytes against
the model registered for ``kind``. Importing the package registers every family.
"""

from schemas import (  # noqa: F401  (importing a family registers its kinds)
    audit,
    confidentiality,
    controlled_delivery,
    directory,
    information,
    lookup,
    protocol,
    tracing,
    transfers,
)
from schemas.base import SCHEMA_VERSION, Body, HandlingCode, PartyCode
from schemas.reasons import ReasonCode
from schemas.registry import BODY_MODELS, RECORD_MODELS, UnknownKindError, parse_body

__all__ = [
    "BODY_MODELS",
    "RECORD_MODELS",
    "SCHEMA_VERSION",
    "Body",
    "HandlingCode",
    "PartyCode",
    "ReasonCode",
    "UnknownKindError",
    "parse_body",
]

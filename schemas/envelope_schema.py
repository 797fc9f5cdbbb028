"""JSON Schemas of the envelope (docs/envelope.md section 4) and of its protected header
(section 5), published as ``schemas/json/envelope.schema.json`` and
``envelope.protected.schema.json`` and used as the payload of the AsyncAPI documents.

They say what a schema can: members, types, lengths, patterns (canonical base64url included:
the unused low bits of the last character are zero), enumerations, days within their month.
Some of check 1 is beyond any JSON Schema and stays in the spec alone: no member name twice and
no byte order mark (a parser that keeps the last of two names cannot see them), an integer
written without a fraction (``1.0`` is the integer 1 to JSON Schema), February 29 of a year that
is not a leap year, and the stanzas in the header's order. The patterns are ECMA-262's: under a
validator using Python's ``re``, ``$`` also matches before a final newline; fixed-length members
carry a ``maxLength`` that closes this, the others do not.

An envelope that fails a schema is malformed, except for an unknown algorithm name in ``sigs``
or a signature's ``alg``, which the spec calls ``unsupported_algorithm``; one that passes may
still be malformed.
"""

from __future__ import annotations

from typing import Any

from schemas.base import PARTY_CODES

_ID_BASE = "https://cifta-exchange.org/schemas/v1/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

MAX_RECIPIENTS = 64
ENC_ALG = "HPKE-Base-MLKEM768X25519-HKDFSHA256-A256GCM"
#: Bytes, as decoded from base64url (docs/envelope.md sections 2 and 4).
IV_BYTES, WRAPPED_BYTES, TAG_BYTES = 12, 1168, 16
SIGNATURE_BYTES = {"Ed25519": 64, "ML-DSA-65": 3309}
#: The header's one timestamp form, with the ranges a pattern can hold: no second 60, no day
#: past its month's end (February 29 in every year: leap years are beyond a pattern).
HEADER_TIME = (
    r"^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|02-(0[1-9]|1[0-9]|2[0-9]))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z$"
)
MSG_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
KEY_ID = r"^[0-9a-f]{32}$"


def b64u_length(n: int) -> int:
    """Characters of the unpadded base64url encoding of ``n`` bytes."""
    return (4 * n + 2) // 3


#: The last character of a canonical base64url string whose last group holds 2 bytes (its low
#: 2 bits zero) or 1 byte (its low 4 bits zero): RFC 4648 section 3.5.
_LAST_OF_TWO, _LAST_OF_ONE = "[AEIMQUYcgkosw048]", "[AQgw]"
_CHAR = "[A-Za-z0-9_-]"


def _b64u(exactly: int | None = None, at_least: int = 0) -> dict[str, Any]:
    """A canonical, unpadded base64url string of ``exactly`` bytes, or of ``at_least``."""
    if exactly is not None:
        chars = b64u_length(exactly)
        last = {0: _CHAR, 1: _LAST_OF_ONE, 2: _LAST_OF_TWO}[exactly % 3]
        body = f"{_CHAR}{{{chars - 1}}}{last}" if chars else ""
        return {"type": "string", "pattern": f"^{body}$", "maxLength": chars}
    return {
        "type": "string",
        "minLength": b64u_length(at_least),
        "pattern": f"^({_CHAR}{{4}})*({_CHAR}{{2}}{_LAST_OF_TWO}|{_CHAR}{_LAST_OF_ONE})?$",
    }


_PARTY = {"type": "string", "enum": list(PARTY_CODES)}


def header_schema() -> dict[str, Any]:
    """The protected header, once decoded from the envelope's ``protected`` member."""
    time = {"type": "string", "pattern": HEADER_TIME}
    return {
        "$schema": DRAFT,
        "$id": f"{_ID_BASE}envelope.protected.schema.json",
        "title": "ProtectedHeader",
        "description": "The signed clear header: routing and handling metadata, never content "
        "(docs/envelope.md section 5). Optional members are omitted, never null.",
        "type": "object",
        "additionalProperties": False,
        "required": [
            "v",
            "msg_id",
            "kind",
            "sender",
            "sender_kid",
            "recipients",
            "created_at",
            "handling",
            "confidential",
            "enc",
            "sigs",
        ],
        "properties": {
            "v": {"const": 1},
            "msg_id": {"type": "string", "pattern": MSG_ID, "maxLength": 36},
            "kind": {"type": "string", "pattern": r"^[a-z_]+\.[a-z_]+$", "maxLength": 64},
            "sender": _PARTY,
            "sender_kid": {"type": "string", "pattern": KEY_ID, "maxLength": 32},
            "recipients": {
                "type": "array",
                "items": _PARTY,
                "minItems": 1,
                "maxItems": MAX_RECIPIENTS,
                "uniqueItems": True,
            },
            "created_at": time,
            "expires_at": time,
            "handling": {"enum": ["H0", "H1", "H2", "H3"]},
            "handling_note": {"type": "string", "minLength": 1, "maxLength": 500},
            "confidential": {"type": "boolean"},
            "case_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": 64,
                "pattern": r"^[A-Za-z0-9._:/-]+$",
            },
            "in_reply_to": {"type": "string", "pattern": MSG_ID, "maxLength": 36},
            "enc": {"const": ENC_ALG},
            "sigs": {
                "type": "array",
                "items": {"enum": list(SIGNATURE_BYTES)},
                "minItems": 1,
                "maxItems": 2,
                "uniqueItems": True,
            },
        },
        # handling_note exactly with H3
        "if": {"properties": {"handling": {"const": "H3"}}},
        "then": {"required": ["handling_note"]},
        "else": {"not": {"required": ["handling_note"]}},
    }


def envelope_schema() -> dict[str, Any]:
    """The envelope object as it travels (docs/envelope.md section 4)."""
    signature = {
        "type": "object",
        "additionalProperties": False,
        "required": ["alg", "sig"],
        "properties": {"alg": {"enum": list(SIGNATURE_BYTES)}, "sig": {"type": "string"}},
        "oneOf": [
            {"properties": {"alg": {"const": alg}, "sig": _b64u(exactly=n)}}
            for alg, n in SIGNATURE_BYTES.items()
        ],
    }
    return {
        "$schema": DRAFT,
        "$id": f"{_ID_BASE}envelope.schema.json",
        "title": "Envelope",
        "description": "A signed, end-to-end encrypted message (docs/envelope.md): at most "
        "8 MiB as received. `protected` is the base64url of the protected header's bytes "
        "(envelope.protected.schema.json); the body is in `ciphertext`, readable by the "
        "recipients alone.",
        "type": "object",
        "additionalProperties": False,
        "required": ["v", "protected", "iv", "ciphertext", "recipients", "signatures"],
        "properties": {
            "v": {"const": 1},
            "protected": {
                **_b64u(at_least=1),
                "contentEncoding": "base64url",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "envelope.protected.schema.json"},
            },
            "iv": _b64u(exactly=IV_BYTES),
            "ciphertext": _b64u(at_least=TAG_BYTES),
            "recipients": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_RECIPIENTS,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["party", "kid", "enc"],
                    "properties": {
                        "party": _PARTY,
                        "kid": {"type": "string", "pattern": KEY_ID, "maxLength": 32},
                        "enc": _b64u(exactly=WRAPPED_BYTES),
                    },
                },
            },
            "signatures": {
                "type": "array",
                "maxItems": 2,
                "items": signature,
                # no algorithm twice, in a form JSON Schema draft 07 (AsyncAPI's default schema
                # format) reads as 2020-12 does: not two items that both name it
                "allOf": [
                    {
                        "not": {
                            "minItems": 2,
                            "items": {"required": ["alg"], "properties": {"alg": {"const": alg}}},
                        }
                    }
                    for alg in SIGNATURE_BYTES
                ],
            },
        },
    }

"""The envelope's published JSON Schemas (schemas/envelope_schema.py) against the envelope test
vectors: every envelope a receiver opens passes them, the structural faults check 1 refuses are
refused by them too, and their constants are the reference node's."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from schemas import envelope_schema as es
from services.core import envelope_format as ef

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "docs/vectors/envelope-v1.json").read_text()
)["vectors"]
#: Reasons found after check 1: the envelope is well-formed, so the schemas must accept it.
WELL_FORMED = {
    "bad_signature", "missing_signature", "sender_key_not_valid", "unknown_sender_key",
    "revoked_sender_key", "expired", "future_dated", "decryption_failed", "not_a_recipient",
    "replay", "unknown_kind", "schema_invalid",
}  # fmt: skip


def _validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    header = es.header_schema()
    registry: Registry[Any] = Registry().with_resource(
        header["$id"], Resource.from_contents(header)
    )
    return (
        Draft202012Validator(es.envelope_schema(), registry=registry),
        Draft202012Validator(header),
    )


def _errors(raw: str) -> list[str]:
    """What the schemas find wrong with the envelope ``raw`` (and its decoded header)."""
    outer, header = _validators()
    try:
        envelope = json.loads(raw)
    except ValueError:
        return ["not JSON"]
    found = [e.message for e in outer.iter_errors(envelope)]
    protected = envelope.get("protected") if isinstance(envelope, dict) else None
    if isinstance(protected, str):
        try:
            decoded = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
        except ValueError:
            return [*found, "protected is not base64url JSON"]
        found += [e.message for e in header.iter_errors(decoded)]
    return found


def _by_reason(*reasons: str) -> list[dict[str, Any]]:
    return [v for v in VECTORS if v["expect"].get("reason", "ok") in reasons]


@pytest.mark.parametrize("vector", _by_reason("ok", *WELL_FORMED), ids=lambda v: v["name"])
def test_every_well_formed_vector_passes_the_schemas(vector: dict[str, Any]) -> None:
    assert _errors(vector["envelope"]) == []


def test_most_malformed_vectors_are_refused_by_the_schemas_alone() -> None:
    """What a schema cannot see (a duplicate name, a BOM, ``1.0`` for ``1``, the stanzas'
    order) is listed in the module's docstring; the rest must be refused here."""
    malformed = _by_reason("malformed", "unsupported_version", "unsupported_algorithm")
    passed = [v["name"] for v in malformed if not _errors(v["envelope"])]
    refused = len(malformed) - len(passed)
    assert refused >= 0.85 * len(malformed), passed
    beyond_a_schema = ("duplicate", "bom", "-float", "-order")
    assert all(any(w in name for w in beyond_a_schema) for name in passed), passed


def test_the_schemas_constants_are_the_reference_nodes() -> None:
    assert es.MAX_RECIPIENTS == ef.MAX_RECIPIENTS
    assert es.ENC_ALG == ef.ENC_ALG
    assert (es.IV_BYTES, es.WRAPPED_BYTES, es.TAG_BYTES) == (ef.IV_LEN, ef.WRAPPED_LEN, ef.TAG_LEN)
    assert es.SIGNATURE_BYTES == ef.SIG_LENGTHS
    for t in ("2026-11-24T14:58:00.000Z", "2026-12-31T23:59:59.999Z"):
        assert re.fullmatch(es.HEADER_TIME, t) and re.fullmatch(ef.HEADER_TIME_PATTERN, t)
    for t in ("2026-11-24T14:58:60.000Z", "2026-13-01T00:00:00.000Z", "2026-11-24T24:00:00.000Z"):
        assert re.fullmatch(ef.HEADER_TIME_PATTERN, t) and not re.fullmatch(es.HEADER_TIME, t)
    for n in (0, 1, 2, 3, 12, 64, 1168, 3309):
        assert es.b64u_length(n) == len(base64.urlsafe_b64encode(bytes(n)).rstrip(b"="))

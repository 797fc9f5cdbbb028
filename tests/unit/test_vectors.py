"""The published test vectors (docs/vectors/envelope-v1.json) verify, two ways.

1. ``open_envelope`` gives each vector's expected header and body, or its reason code.
2. A second, minimal implementation written from docs/envelope.md alone (raw primitives, no
   project code) reaches the same intermediate values and plaintext for the valid vectors, which
   is what an agency implementing the envelope in another language will do.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from schemas import ReasonCode
from schemas.reasons import NODE_REASONS
from services.core.envelope import (
    EnvelopeError,
    ProtectedHeader,
    SenderKeyRecord,
    open_envelope,
)
from services.core.keys import NodeKeys, SigningPublicKey
from tests.unit.envelope_from_spec import Opening, Refused, open_from_spec

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "envelope-v1.json"
DOC: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
BY_NAME = {v["name"]: v for v in DOC["vectors"]}


def when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


class VectorDirectory:
    def __init__(self, changes: list[dict[str, Any]]) -> None:
        self.records: dict[tuple[str, str], SenderKeyRecord] = {}
        for entry in DOC["directory"]:
            change = next(
                (c for c in changes if (c["party"], c["kid"]) == (entry["party"], entry["kid"])),
                {},
            )
            merged = entry | change
            self.records[(entry["party"], entry["kid"])] = SenderKeyRecord(
                SigningPublicKey.from_json(entry["public"]),
                when(merged["valid_from"]),  # type: ignore[arg-type]
                when(merged.get("valid_until")),
                when(merged.get("revoked_at")),
            )

    def signing_key(self, party: str, kid: str) -> SenderKeyRecord | None:
        return self.records.get((party, kid))


def envelope_bytes(v: dict[str, Any]) -> bytes:
    """The envelope as received: its text, padded with spaces to ``pad_to`` bytes if given."""
    data = v["envelope"].encode()
    return data + b" " * (v.get("pad_to", len(data)) - len(data))


def open_vector(v: dict[str, Any]) -> Any:
    seen = set(v.get("seen_msg_ids", []))
    return open_envelope(
        envelope_bytes(v),
        keys=NodeKeys.from_private_json(DOC["keys"][v["open_as"]]),
        directory=VectorDirectory(v.get("directory_changes", [])),
        is_replay=seen.__contains__,
        now=when(v["now"]),
    )


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_vector_opens_as_expected(name: str) -> None:
    v = BY_NAME[name]
    expect = v["expect"]
    if "reason" in expect:
        with pytest.raises(EnvelopeError) as refused:
            open_vector(v)
        assert refused.value.reason.value == expect["reason"]
    else:
        opened = open_vector(v)
        assert opened.header == ProtectedHeader.model_validate(expect["header"])
        assert json.loads(opened.plaintext) == expect["body"]
        assert opened.envelope_hash == expect["envelope_sha256"]


def test_vectors_cover_every_reason_code_of_the_envelope() -> None:
    produced = {v["expect"].get("reason") for v in DOC["vectors"]}
    envelope_codes = {r.value for r in ReasonCode if r not in NODE_REASONS}
    missing = envelope_codes - produced
    assert not missing, f"no vector for {sorted(missing)}"


#: One vector at least for each rule the spec's check list states (docs/envelope.md section 11).
RULES = {
    "1a size": ["oversized", "size-limit"],
    "1b strict JSON": ["outer-bom", "outer-duplicate-v", "stanza-duplicate-member", "outer-nan"],
    "1b-1c version": ["outer-v-true", "outer-v-float", "outer-v-missing", "version-2"],
    "1d-1e header version": ["header-bom", "header-v-string", "header-v-2"],
    "1f algorithms": ["enc-unknown", "sigs-unknown", "signature-alg-unknown"],
    "1g encodings": ["protected-padded", "stanza-non-canonical", "signature-non-canonical"],
    "1g lengths": ["iv-short", "stanza-short", "signature-short", "mldsa-signature-short"],
    "1g header types": [
        "confidential-1",
        "confidential-true",
        "confidential-yes",
        "confidential-off",
    ],
    "1g timestamps": ["created-at-seconds", "created-at-space", "created-at-offset-compact"],
    "1g H3": ["h3-without-note", "note-with-h1"],
    "1g sigs": ["sigs-duplicate", "signature-alg-twice", "enc-missing"],
    "2 key validity": ["valid-until-boundary", "signing-key-rotation-new-key", "revoked-boundary"],
    "3 post-quantum": ["mldsa-signature-byte", "mldsa-stripped", "pq-downgrade"],
    "3 key binding": ["pq-downgrade-ed25519-kid", "mldsa-not-in-directory"],
    "5 time": ["expires-at-boundary", "expires-just-before", "clock-skew-limit"],
    "7 rotation": ["encryption-key-rotation-previous-key"],
    "8 bodies": ["body-without-kind", "body-schema-version-true", "receipt-stored-at-integer"],
    "8 published rules": [
        "body-unknown-country",
        "notice-duplicate-lines",
        "body-duplicate-member",
    ],
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_of_the_check_list_has_its_vectors(rule: str) -> None:
    missing = [name for name in RULES[rule] if name not in BY_NAME]
    assert not missing, f"{rule}: no vector {missing}"


def test_vectors_include_multi_recipient_and_post_quantum_cosigned_envelopes() -> None:
    headers = [v["expect"]["header"] for v in DOC["vectors"] if "header" in v["expect"]]
    assert any(len(h["recipients"]) > 1 for h in headers)
    assert any(h["sigs"] == ["Ed25519", "ML-DSA-65"] for h in headers)


# --- an independent implementation from the specification ------------------------------------


def directory_for(v: dict[str, Any]) -> list[dict[str, Any]]:
    """The directory records with the vector's ``directory_changes`` applied."""
    changes = {(c["party"], c["kid"]): c for c in v.get("directory_changes", [])}
    return [d | changes.get((d["party"], d["kid"]), {}) for d in DOC["directory"]]


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_an_implementation_from_the_spec_alone_reaches_every_vectors_verdict(name: str) -> None:
    v = BY_NAME[name]
    expect = v["expect"]
    receiver = Opening(
        me=v["open_as"],
        keys=DOC["keys"][v["open_as"]],
        directory=directory_for(v),
        now=when(v["now"]),  # type: ignore[arg-type]
        seen=set(v.get("seen_msg_ids", [])),
    )
    if "reason" in expect:
        with pytest.raises(Refused) as refused:
            open_from_spec(envelope_bytes(v), receiver)
        assert refused.value.reason == expect["reason"]
        return
    result = open_from_spec(envelope_bytes(v), receiver)
    assert result["header"] == expect["header"]
    assert result["body"] == expect["body"]
    assert result["plaintext"] == expect["plaintext"]
    assert len(result["signature_input"]) == expect["signature_input_length"]
    assert hashlib.sha256(result["signature_input"]).hexdigest() == expect["signature_input_sha256"]
    assert result["wrap_info_hex"] == expect["wrap_info_hex"]
    assert result["content_key_hex"] == expect["content_key_hex"]
    assert hashlib.sha256(envelope_bytes(v)).hexdigest() == expect["envelope_sha256"]

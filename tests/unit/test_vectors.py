"""The published test vectors (docs/vectors/envelope-v1.json) verify, two ways.

1. ``open_envelope`` gives each vector's expected header and body, or its reason code.
2. A second, minimal implementation written from docs/envelope.md alone (raw primitives, no
   project code) reaches the same intermediate values and plaintext for the valid vectors, which
   is what an agency implementing the envelope in another language will do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas import ReasonCode
from schemas.reasons import NODE_REASONS
from services.core.envelope import (
    EnvelopeError,
    ProtectedHeader,
    SenderKeyRecord,
    open_envelope,
)
from services.core.keys import NodeKeys, SigningPublicKey

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


def open_vector(v: dict[str, Any]) -> Any:
    seen = set(v.get("seen_msg_ids", []))
    return open_envelope(
        v["envelope"].encode(),
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


def test_vectors_cover_every_reason_code_but_oversized() -> None:
    produced = {v["expect"].get("reason") for v in DOC["vectors"]}
    envelope_codes = {r.value for r in ReasonCode if r not in NODE_REASONS}
    missing = envelope_codes - produced - {ReasonCode.OVERSIZED.value}
    assert not missing, f"no vector for {sorted(missing)}"


def test_vectors_include_multi_recipient_and_post_quantum_cosigned_envelopes() -> None:
    headers = [v["expect"]["header"] for v in DOC["vectors"] if "header" in v["expect"]]
    assert any(len(h["recipients"]) > 1 for h in headers)
    assert any(h["sigs"] == ["Ed25519", "ML-DSA-65"] for h in headers)


# --- an independent implementation from the specification ------------------------------------


def d64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def lp(data: bytes) -> bytes:
    return struct.pack(">Q", len(data)) + data


@pytest.mark.parametrize("name", sorted(n for n, v in BY_NAME.items() if "header" in v["expect"]))
def test_spec_alone_reproduces_the_valid_vectors(name: str) -> None:
    v = BY_NAME[name]
    expect = v["expect"]
    env = json.loads(v["envelope"])
    protected = d64(env["protected"])
    header = json.loads(protected)
    iv, ciphertext = d64(env["iv"]), d64(env["ciphertext"])

    # Signature input: domain, then length-prefixed header, IV, ciphertext, stanza count, stanzas.
    to_sign = (
        b"CIFTA-Exchange envelope v1 signature\x00"
        + lp(protected)
        + lp(iv)
        + lp(ciphertext)
        + struct.pack(">Q", len(env["recipients"]))
        + b"".join(
            lp(s["party"].encode()) + lp(s["kid"].encode()) + lp(d64(s["enc"]))
            for s in env["recipients"]
        )
    )
    assert len(to_sign) == expect["signature_input_length"]
    assert hashlib.sha256(to_sign).hexdigest() == expect["signature_input_sha256"]
    sender_pub = DOC["public_keys"][header["sender"]]["signing"]
    ed25519.Ed25519PublicKey.from_public_bytes(d64(sender_pub["ed25519"])).verify(
        d64(next(s["sig"] for s in env["signatures"] if s["alg"] == "Ed25519")), to_sign
    )

    # Key wrap: HPKE base mode, X-Wing KEM, info binds msg_id, recipient, kid and header hash.
    me = v["open_as"]
    stanza = next(s for s in env["recipients"] if s["party"] == me)
    info = (
        b"CIFTA-Exchange envelope v1 key wrap\x00"
        + lp(header["msg_id"].encode())
        + lp(me.encode())
        + lp(stanza["kid"].encode())
        + hashlib.sha256(protected).digest()
    )
    assert info.hex() == expect["wrap_info_hex"]
    private = DOC["keys"][me]["encryption"][0]
    own = hpke.MLKEM768X25519PrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(d64(private["mlkem768_seed"])),
        x25519.X25519PrivateKey.from_private_bytes(d64(private["x25519"])),
    )
    suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    cek = suite.decrypt(d64(stanza["enc"]), own, info=info)
    assert cek.hex() == expect["content_key_hex"]

    # Body: AES-256-GCM under the content key, AAD = the protected header bytes.
    plaintext = AESGCM(cek).decrypt(iv, ciphertext, protected)
    assert plaintext.decode() == expect["plaintext"]
    assert json.loads(plaintext)["kind"] == header["kind"]

"""The published attachment vectors (docs/vectors/attachment-v1.json) hold, two ways: with the
reference implementation, and with a few lines written from docs/envelope.md section 13 alone
(raw AES-256-GCM, the nonce built by hand), as another agency would."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.attachment import AttachmentManifest
from services.core.attachments import AttachmentError, AttachmentFault, open_chunks

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "attachment-v1.json"
DOC: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
BY_NAME = {v["name"]: v for v in DOC["vectors"]}
VALID = [v for v in DOC["vectors"] if v["expect"] == "valid"]
INVALID = [v for v in DOC["vectors"] if v["expect"] != "valid"]
CHUNK, TAG = 65536, 16


def plaintext(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def spec_encrypt(key: bytes, data: bytes) -> list[bytes]:
    """Section 13.3, from the text: 64 KiB chunks, nonce = 11-byte counter || last flag."""
    pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    return [
        AESGCM(key).encrypt(i.to_bytes(11, "big") + bytes([i == len(pieces) - 1]), p, None)
        for i, p in enumerate(pieces)
    ]


def spec_open(manifest: dict[str, Any], chunks: list[bytes]) -> bytes | int | None:
    """The plaintext, or the index of the chunk that fails, or None when the chunks run out
    before the last one (or the digest differs)."""
    key, size = unb64(manifest["key"]), manifest["size"]
    count = max(1, -(-size // CHUNK))
    out = b""
    for i, c in enumerate(chunks):
        want = (CHUNK if i < count - 1 else size - CHUNK * (count - 1)) + TAG
        if i >= count or len(c) != want:
            return i
        try:
            out += AESGCM(key).decrypt(i.to_bytes(11, "big") + bytes([i == count - 1]), c, None)
        except InvalidTag:
            return i
    if len(chunks) != count:
        return None
    if hashlib.sha256(b"".join(chunks)).hexdigest() != manifest["ciphertext_sha256"]:
        return None
    return out


def build(vector: dict[str, Any]) -> list[bytes]:
    out = []
    for pick in vector["chunks"]:
        source = BY_NAME[pick["of"]]
        chunk = bytearray(
            spec_encrypt(unb64(source["manifest"]["key"]), plaintext(source["plaintext_size"]))[
                pick["index"]
            ]
        )
        if "flip_bit" in pick:
            chunk[pick["flip_bit"] // 8] ^= 1 << (pick["flip_bit"] % 8)
        out.append(bytes(chunk))
    return out


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_a_valid_vector_is_what_the_spec_computes_and_opens(vector: dict[str, Any]) -> None:
    key = bytes.fromhex(vector["key_hex"])
    chunks = spec_encrypt(key, plaintext(vector["plaintext_size"]))
    assert [hashlib.sha256(c).hexdigest() for c in chunks] == vector["chunks_sha256"]
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == vector["manifest"]["ciphertext_sha256"]
    assert sum(map(len, chunks)) == vector["ciphertext_size"]
    if "ciphertext" in vector:
        assert unb64(vector["ciphertext"]) == b"".join(chunks)
    assert [bytes.fromhex(n)[:11] for n in vector["nonces_hex"]] == [
        i.to_bytes(11, "big") for i in range(len(chunks))
    ]
    manifest = AttachmentManifest.model_validate(vector["manifest"])
    assert b"".join(open_chunks(manifest, chunks)) == plaintext(vector["plaintext_size"])
    assert spec_open(vector["manifest"], chunks) == plaintext(vector["plaintext_size"])


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v["name"])
def test_an_invalid_vector_is_refused_where_it_says(vector: dict[str, Any]) -> None:
    chunks = build(vector)
    assert spec_open(vector["manifest"], chunks) == vector["fails_at_chunk"]
    manifest = AttachmentManifest.model_validate(vector["manifest"])
    opened = 0
    with pytest.raises(AttachmentError) as err:
        for _ in open_chunks(manifest, chunks):
            opened += 1
    assert err.value.fault is AttachmentFault.CORRUPT
    assert vector["expect"] == {"reason": err.value.fault.value}
    # the reference stops at the same chunk (or after the last one it was given)
    assert opened == (len(chunks) if vector["fails_at_chunk"] is None else vector["fails_at_chunk"])


def test_the_vectors_cover_every_damage_the_spec_names() -> None:
    names = {v["name"] for v in INVALID}
    for kind in ("truncated", "reordered", "duplicated", "flipped", "wrong-key"):
        assert any(n.startswith(kind) for n in names), kind

"""Build envelopes byte by byte, for the vectors: what a sender that breaks one rule would send.

``seal`` refuses to build a header or body a receiver would refuse, so the invalid vectors are
built here from the primitives. Each forged envelope is correct in every other respect (the body
encrypted under the header as AAD, the content key wrapped with the right ``info``, every
declared signature valid), so a receiver that skips the one rule it breaks would open it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.core.encoding import b64u, unb64u
from services.core.envelope import _SUITE, signature_input, wrap_info
from services.core.keys import EncryptionPublicKey, SigningKey


def compact(obj: Any) -> bytes:
    """JSON as the reference implementation writes it: no whitespace, UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def header_of(env: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(unb64u(env["protected"])))


def forge(
    protected: bytes,
    body: bytes,
    *,
    msg_id: str,
    signer: SigningKey,
    recipients: Sequence[EncryptionPublicKey],
    algs: Sequence[str] = ("Ed25519",),
    mldsa_key: mldsa.MLDSA65PrivateKey | None = None,
) -> dict[str, Any]:
    """An envelope (as a JSON object) carrying exactly ``protected`` and ``body`` bytes."""
    cek, iv = AESGCM.generate_key(256), os.urandom(12)
    ciphertext = AESGCM(cek).encrypt(iv, body, protected)
    stanzas = [
        (
            r.party,
            r.kid,
            _SUITE.encrypt(cek, r.hpke_key(), info=wrap_info(msg_id, r.party, r.kid, protected)),
        )
        for r in recipients
    ]
    to_sign = signature_input(protected, iv, ciphertext, stanzas)
    signatures = []
    for alg in algs:
        if alg == "Ed25519":
            sig = signer.ed25519.sign(to_sign)
        else:
            pq = mldsa_key or signer.mldsa65
            assert pq is not None, "an ML-DSA-65 signature needs an ML-DSA-65 key"
            sig = pq.sign(to_sign)
        signatures.append({"alg": alg, "sig": b64u(sig)})
    return {
        "v": 1,
        "protected": b64u(protected),
        "iv": b64u(iv),
        "ciphertext": b64u(ciphertext),
        "recipients": [{"party": p, "kid": k, "enc": b64u(w)} for p, k, w in stanzas],
        "signatures": signatures,
    }


def resign(
    env: dict[str, Any], signer: SigningKey, algs: Sequence[str] = ("Ed25519",)
) -> dict[str, Any]:
    """The envelope with fresh signatures over its current content (a sender's own mistake)."""
    stanzas = [(s["party"], s["kid"], unb64u(s["enc"])) for s in env["recipients"]]
    to_sign = signature_input(
        unb64u(env["protected"]), unb64u(env["iv"]), unb64u(env["ciphertext"]), stanzas
    )
    signatures = []
    for alg in algs:
        key = signer.ed25519 if alg == "Ed25519" else signer.mldsa65
        assert key is not None
        signatures.append({"alg": alg, "sig": b64u(key.sign(to_sign))})
    return env | {"signatures": signatures}


def flip(b64: str, index: int) -> str:
    """One bit of the decoded bytes flipped."""
    raw = bytearray(unb64u(b64))
    raw[index] ^= 0x01
    return b64u(bytes(raw))


def non_canonical(b64: str) -> str:
    """The same bytes with a non-zero unused low bit in the last character (RFC 4648 3.5)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(b64) % 4 in (2, 3), "only a length with unused bits has a non-canonical twin"
    last = alphabet.index(b64[-1])
    return b64[:-1] + alphabet[last | 1]

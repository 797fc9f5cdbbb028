"""The signing key id authenticates every public key a signature is checked with.

Officers read the id over the telephone before a key is approved; an ML-DSA-65 key left out of it
could be swapped in the directory unseen.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa

from services.core.encoding import b64u
from services.core.keys import NodeKeys, SigningPublicKey, key_id, signing_key_id


def _spec_kid(raw: bytes) -> str:
    """docs/envelope.md section 9, written out."""
    return hashlib.sha256(b"cifta-kid-v1\x00sig\x00" + raw).hexdigest()[:32]


def test_post_quantum_signing_kid_covers_the_ed25519_and_the_ml_dsa_key() -> None:
    public = NodeKeys.generate("BRA", post_quantum_signature=True).signing.public()
    assert public.mldsa65 is not None
    ed, pq = public.ed25519.public_bytes_raw(), public.mldsa65.public_bytes_raw()
    assert public.kid == _spec_kid(ed + pq) == signing_key_id(ed, pq)
    assert public.kid != key_id("sig", ed)


def test_ed25519_only_signing_kid_is_unchanged() -> None:
    public = NodeKeys.generate("MEX").signing.public()
    assert public.kid == _spec_kid(public.ed25519.public_bytes_raw())


def test_published_key_whose_ml_dsa_key_was_swapped_no_longer_matches_its_kid() -> None:
    published = NodeKeys.generate("BRA", post_quantum_signature=True).signing.public().to_json()
    other = mldsa.MLDSA65PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(ValueError, match="kid"):
        SigningPublicKey.from_json(published | {"mldsa65": b64u(other)})


def test_published_key_whose_ml_dsa_key_was_removed_no_longer_matches_its_kid() -> None:
    published = NodeKeys.generate("BRA", post_quantum_signature=True).signing.public().to_json()
    with pytest.raises(ValueError, match="kid"):
        SigningPublicKey.from_json({k: v for k, v in published.items() if k != "mldsa65"})

"""The oblivious PRF of blind record lookup: RFC 9497, VOPRF mode, ristretto255-SHA512.

A small API over the ``voprf`` package (checked against RFC 9497 Appendix A.1.2 in
``tests/unit/test_oprf_vectors.py``): an answering state's :class:`LookupKeys` evaluates blinded
elements with a proof; an asking node :func:`blind`\\ s an input, then :func:`finalize`\\ s each
state's reply against that state's public key, refusing a proof made under any other key.

``LookupKeys`` also holds the key that seals the state's records register at rest (AES-256-GCM):
the register never holds a serial number in the clear.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from voprf import ristretto

from services.core.encoding import b64u, unb64u

#: RFC 9497 section 3.2.1 ``DeriveKeyPair`` info: binds keys to this use.
KEY_INFO = b"cifta-exchange lookup oprf key v1"
ELEMENT_BYTES = 32
PROOF_BYTES = 64
OUTPUT_BYTES = 64


class LookupCryptoError(Exception):
    """A reply that does not verify: a bad element, or a proof under another key."""


def oprf_kid(public: bytes) -> str:
    """The OPRF key id, computed like every other key id (``services.core.keys.key_id``)."""
    from services.core.keys import key_id  # keys imports this module for NodeKeys

    return key_id("oprf", public)


@dataclass(frozen=True)
class OprfPublicKey:
    """An answering state's OPRF public key (``pkS``, a ristretto255 element)."""

    raw: bytes

    @cached_property
    def kid(self) -> str:
        return oprf_kid(self.raw)

    @cached_property
    def _key(self) -> ristretto.PublicKey:
        try:
            return ristretto.PublicKey.deserialize(self.raw)
        except ValueError as exc:
            raise LookupCryptoError("not a ristretto255 public key") from exc

    def to_text(self) -> str:
        return b64u(self.raw)

    @classmethod
    def from_text(cls, text: str) -> OprfPublicKey:
        try:
            raw = unb64u(text)
        except ValueError as exc:
            raise LookupCryptoError("an OPRF public key is base64url") from exc
        if len(raw) != ELEMENT_BYTES:
            raise LookupCryptoError("an OPRF public key is 32 bytes")
        key = cls(raw)
        _ = key._key  # refuse a non-canonical or identity encoding now, not at first use
        return key


@dataclass(frozen=True)
class LookupKeys:
    """Private: the OPRF seed (``DeriveKeyPair`` input) and the records register's sealing key."""

    oprf_seed: bytes
    register_key: bytes

    @classmethod
    def generate(cls) -> LookupKeys:
        return cls(os.urandom(32), os.urandom(32))

    def with_new_oprf_key(self) -> LookupKeys:
        """Rotate the OPRF key (the filter must be rebuilt); the register key stays."""
        return replace(self, oprf_seed=os.urandom(32))

    @cached_property
    def _evaluator(self) -> ristretto.Evaluator:
        return ristretto.Evaluator.from_seed(self.oprf_seed, KEY_INFO)

    def public(self) -> OprfPublicKey:
        return OprfPublicKey(self._evaluator.public_key.serialize())

    def evaluate(self, blinded: bytes) -> tuple[bytes, bytes]:
        """``BlindEvaluate``: (evaluated element, proof) for one blinded element."""
        try:
            element = ristretto.BlindedInput.deserialize(blinded)
        except ValueError as exc:
            raise LookupCryptoError("not a ristretto255 element") from exc
        out = self._evaluator.evaluate(element).serialize()
        # voprf serialises a VerifiableOutput as proof (c || s) then the evaluated element
        return out[PROOF_BYTES:], out[:PROOF_BYTES]

    def output(self, data: bytes) -> bytes:
        """``Evaluate``: the OPRF output of an input this state holds (to build its filter)."""
        return self._evaluator.evaluate_known_input(data)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.register_key).encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(self.register_key).decrypt(sealed[:12], sealed[12:], aad)
        except InvalidTag:
            raise LookupCryptoError("a register row does not open under this key") from None

    def to_json(self) -> dict[str, str]:
        """Secret: part of the node's key file, never logged."""
        return {"oprf_seed": b64u(self.oprf_seed), "register_key": b64u(self.register_key)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LookupKeys:
        seed, key = unb64u(data["oprf_seed"]), unb64u(data["register_key"])
        if len(seed) != 32 or len(key) != 32:
            raise ValueError("lookup keys are 32 bytes each")
        return cls(seed, key)


@dataclass(frozen=True)
class Blinded:
    """One blinded input, kept by the asking node until the reply comes back."""

    client: ristretto.Client
    element: bytes


def blind(data: bytes) -> Blinded:
    """``Blind`` with a fresh random scalar: one per state asked, so answers cannot be linked."""
    client, element = ristretto.Client.blind(data)
    return Blinded(client, element.serialize())


def finalize(blinded: Blinded, evaluated: bytes, proof: bytes, key: OprfPublicKey) -> bytes:
    """``Finalize``: the OPRF output, once the proof verifies under ``key``."""
    if len(evaluated) != ELEMENT_BYTES or len(proof) != PROOF_BYTES:
        raise LookupCryptoError("wrong element or proof length")
    try:
        output = ristretto.VerifiableOutput.deserialize(proof + evaluated)
        return blinded.client.finalize(output, key._key)
    except ValueError as exc:
        raise LookupCryptoError("the proof does not verify under the state's OPRF key") from exc

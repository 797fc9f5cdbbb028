"""A software authenticator (ES256, "none" attestation) answering WebAuthn ceremonies the way a
browser passes a security key's answers on: the JSON of ``PublicKeyCredential.toJSON()``."""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url

_UP, _UV, _AT = 0x01, 0x04, 0x40


def _b64(data: bytes) -> str:
    return bytes_to_base64url(data)


@dataclass
class SoftAuthenticator:
    """One credential, made at the first :meth:`create`; ``counter`` goes up at each use."""

    origin: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    counter: int = 0

    def _client_data(self, ceremony: str, challenge: str) -> bytes:
        data = {
            "type": ceremony,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": False,
        }
        return json.dumps(data).encode()

    def _cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})  # fmt: skip

    def create(self, options: str | dict[str, Any]) -> str:
        """The answer to ``navigator.credentials.create(options)``."""
        opts = json.loads(options) if isinstance(options, str) else options
        rp_hash = hashlib.sha256(opts["rp"]["id"].encode()).digest()
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id
        auth_data = rp_hash + bytes([_UP | _UV | _AT]) + struct.pack(">I", self.counter)
        auth_data += attested + self._cose()
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", opts["challenge"])
        return json.dumps({
            "id": _b64(self.credential_id), "rawId": _b64(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": _b64(client_data),
                         "attestationObject": _b64(attestation), "transports": ["usb"]},
            "clientExtensionResults": {},
        })  # fmt: skip

    def get(self, options: str | dict[str, Any], *, rp_id: str | None = None) -> str:
        """The answer to ``navigator.credentials.get(options)``, the counter one step on."""
        opts = json.loads(options) if isinstance(options, str) else options
        self.counter += 1
        rp_hash = hashlib.sha256((rp_id or opts["rpId"]).encode()).digest()
        auth_data = rp_hash + bytes([_UP | _UV]) + struct.pack(">I", self.counter)
        client_data = self._client_data("webauthn.get", opts["challenge"])
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return json.dumps({
            "id": _b64(self.credential_id), "rawId": _b64(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": _b64(client_data), "authenticatorData": _b64(auth_data),
                         "signature": _b64(signature), "userHandle": None},
            "clientExtensionResults": {},
        })  # fmt: skip

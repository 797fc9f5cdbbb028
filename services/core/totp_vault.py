"""TOTP secrets sealed at rest: what an officers' table keeps instead of the base32 secret.

A copied store (a backup, a stolen disk image) must not hand over every officer's second factor.
Each secret is sealed with AES-256-GCM (NIST SP 800-38D) under a key of its own, and the login is
the associated data, so a sealed secret moved onto another officer's row does not open.

Where the key lives, and why: a 32-byte random key in a file of its own (mode 0600) beside the
store it protects, created on first use. It is not derived from the node's keys: ``keys.json``
may be protected by a passphrase that an unattended console cannot ask for, and a key derived from
the signing key would tie the console's secrets to a key the node rotates. A backup that copies
the store without this file holds no usable second factor; the operator restores both together.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.core.files import write_new

#: A sealed secret: this prefix, then base64url(nonce || ciphertext || tag).
PREFIX: Final = "aesgcm1:"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12


class VaultError(Exception):
    """A sealed secret that does not open under this key (another store's, or altered)."""


class TotpVault:
    """Seals and opens TOTP secrets with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("an AES-256 key is 32 bytes")
        self._aead = AESGCM(key)
        self._key = key

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` alone (RFC 5869 HKDF-SHA256, ``purpose`` as its info)."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
        return hkdf.derive(self._key)

    @classmethod
    def at(cls, path: Path) -> TotpVault:
        """The vault whose key is in ``path``, the key made (0600) if there is none yet (the
        caller first makes sure no secret sealed under a lost key is waiting for it)."""
        with contextlib.suppress(FileExistsError):  # made by an earlier start: kept
            write_new(path, secrets.token_bytes(KEY_BYTES))
        key = path.read_bytes()
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)  # a key readable by others is tightened, not trusted as is
        return cls(key)

    @classmethod
    def ephemeral(cls) -> TotpVault:
        """A vault whose key lives only in memory (a store that is itself temporary)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    def seal(self, secret: str, login: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), login.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, login: str) -> str:
        """The secret of ``stored`` (sealed for ``login``)."""
        if not is_sealed(stored):
            raise VaultError("not a sealed secret")
        raw = base64.urlsafe_b64decode(stored[len(PREFIX) :])
        try:
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], login.encode()).decode()
        except InvalidTag:
            raise VaultError("the secret does not open under this store's key") from None


def is_sealed(stored: str | None) -> bool:
    return stored is not None and stored.startswith(PREFIX)

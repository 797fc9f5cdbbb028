"""TOTP secrets sealed at rest: what an officers' table keeps instead of the base32 secret.

A copied store (a backup, a stolen disk image) must not hand over every officer's second factor.
Each secret is sealed with AES-256-GCM (NIST SP 800-38D) under a key of its own, and the login is
the associated data, so a sealed secret moved onto another officer's row does not open.

Where the key lives, and why: a 32-byte random key in a file of its own (mode 0600) beside the
store it protects, created on first use. Two processes starting together (the console and a
``cifta officer`` command) agree on one key: it is written whole to a file of the process's own
and published under its name with ``link(2)``, which fails when the name exists, so the one that
comes second reads the first one's key, never a half-written or an overwritten one. A key file
that others may read, or that another user owns, is refused rather than used: someone may have
copied it, or may replace it. It is not derived from the node's keys: ``keys.json``
may be protected by a passphrase that an unattended console cannot ask for, and a key derived from
the signing key would tie the console's secrets to a key the node rotates. A backup that copies
the store without this file holds no usable second factor; the operator restores both together.
"""

from __future__ import annotations

import base64
import errno
import os
import secrets
import stat
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


class KeyFileRefused(Exception):
    """A key file that must not be used: ``code`` and ``params`` for
    :func:`services.i18n.translate` (``accounts.totp_key_exposed``, ``..._foreign``,
    ``..._damaged``)."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


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
        caller first makes sure no secret sealed under a lost key is waiting for it);
        :class:`KeyFileRefused` for a key file others may read, another user's, or damaged."""
        key = _read_key(path)
        return cls(key if key is not None else _create_key(path))

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


def _read_key(path: Path) -> bytes | None:
    """The key in ``path``, None when there is no such file; checked on the file opened, not on
    its name (it may be replaced in between): a regular file, this user's, 0600 or stricter."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link: it may point anywhere
            raise KeyFileRefused("accounts.totp_key_damaged", file=str(path)) from None
        raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileRefused("accounts.totp_key_damaged", file=str(path))
        if st.st_uid != os.geteuid():
            raise KeyFileRefused("accounts.totp_key_foreign", file=str(path), owner=st.st_uid)
        if st.st_mode & 0o077:
            mode = f"{stat.S_IMODE(st.st_mode):04o}"
            raise KeyFileRefused("accounts.totp_key_exposed", file=str(path), mode=mode)
        key = fh.read(KEY_BYTES + 1)
    if len(key) != KEY_BYTES:
        raise KeyFileRefused("accounts.totp_key_damaged", file=str(path))
    return key


def _create_key(path: Path) -> bytes:
    """Make the key of ``path`` unless another process makes it first; returns the key that
    is there. Written whole (0600, synced) under a name of this process's own, then linked to
    ``path``: created with O_EXCL under ``path`` itself, the key would exist empty until written,
    and a process starting meanwhile would read nothing; link(2) publishes it whole or fails
    with EEXIST, and the loser reads the winner's key."""
    own = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    write_new(own, secrets.token_bytes(KEY_BYTES))  # O_CREAT|O_EXCL, 0600, written, fsynced
    try:
        os.link(own, path)
    except FileExistsError:
        pass  # made first by another process: its key is the one
    finally:
        own.unlink()
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)  # the name too survives a crash
    finally:
        os.close(directory)
    key = _read_key(path)
    if key is None:  # removed between link and read: nothing sealed under it yet
        raise KeyFileRefused("accounts.totp_key_damaged", file=str(path))
    return key

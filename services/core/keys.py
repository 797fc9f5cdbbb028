"""A node's keys: generation, key ids, private key files (0600, optionally passphrase-sealed), and
the public form the directory publishes.

Each party holds one *signing* key (Ed25519, with an optional ML-DSA-65 co-signing key) and one or
more *encryption* keys (ML-KEM-768 + X25519 for HPKE ``MLKEM768_X25519``): more than one only
during a rotation overlap, when messages sealed to the previous key must still open.

It also keeps its *key history*: the public halves of the signing keys it signed with before a
rotation, and the encryption keys it no longer publishes. A node's store holds what it sent and
received under those keys for years; without them its own messages stop opening after a rotation.
Replaced signing keys keep their public half only: verifying what the node signed needs no more,
and a private key that is never used again is one less to leak.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from services.core.encoding import b64u, unb64u
from services.core.files import write_secret
from services.core.oprf import LookupKeys

ED25519 = "Ed25519"
MLDSA65 = "ML-DSA-65"
KEM_ALG = "MLKEM768-X25519"
KEYFILE_FORMAT = "cifta-keys-v1"
SEALED_KEYFILE_FORMAT = "cifta-keys-v1+scrypt-aes256gcm"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1


class KeyFileError(Exception):
    """A key file could not be read: wrong passphrase, wrong format, unsafe permissions.

    ``reason`` says which for a front end that words it itself: ``missing``, ``unreadable`` (the
    system refused to read it), ``exposed`` (with ``mode``), ``passphrase_required``,
    ``wrong_passphrase`` or ``damaged``; the message is English."""

    def __init__(self, message: str, reason: str = "damaged", **params: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.params = params


def key_id(purpose: str, public_bytes: bytes) -> str:
    """The key id: 32 hex characters of SHA-256 over a purpose label and the raw public key."""
    digest = hashlib.sha256(b"cifta-kid-v1\x00" + purpose.encode() + b"\x00" + public_bytes)
    return digest.hexdigest()[:32]


def signing_key_id(ed25519_raw: bytes, mldsa65_raw: bytes | None = None) -> str:
    """The id of a signing key: over the Ed25519 key and, when there is one, the ML-DSA-65 key.

    Officers compare this id over the telephone before a key is approved, so it must
    authenticate every public key a signature is checked with: a post-quantum key left out of it
    could be swapped unseen. Both keys have fixed lengths (32 and 1952 bytes), so the plain
    concatenation is unambiguous, and an Ed25519-only key keeps the id it always had.
    """
    return key_id("sig", ed25519_raw + (mldsa65_raw or b""))


@dataclass(frozen=True)
class SigningPublicKey:
    """A party's public signing key as the directory publishes it."""

    party: str
    ed25519: ed25519.Ed25519PublicKey
    mldsa65: mldsa.MLDSA65PublicKey | None = None

    @cached_property
    def kid(self) -> str:
        pq = None if self.mldsa65 is None else self.mldsa65.public_bytes_raw()
        return signing_key_id(self.ed25519.public_bytes_raw(), pq)

    def to_json(self) -> dict[str, str]:
        out = {
            "party": self.party,
            "kid": self.kid,
            "ed25519": b64u(self.ed25519.public_bytes_raw()),
        }
        if self.mldsa65 is not None:
            out["mldsa65"] = b64u(self.mldsa65.public_bytes_raw())
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SigningPublicKey:
        pq = data.get("mldsa65")
        key = cls(
            party=str(data["party"]),
            ed25519=ed25519.Ed25519PublicKey.from_public_bytes(unb64u(data["ed25519"])),
            mldsa65=None if pq is None else mldsa.MLDSA65PublicKey.from_public_bytes(unb64u(pq)),
        )
        if "kid" in data and data["kid"] != key.kid:
            raise ValueError("kid does not match the public key")
        return key


@dataclass(frozen=True)
class EncryptionPublicKey:
    """A party's public HPKE key (ML-KEM-768 + X25519), published as its two raw parts."""

    party: str
    mlkem768: mlkem.MLKEM768PublicKey
    x25519: x25519.X25519PublicKey

    def raw(self) -> bytes:
        return self.mlkem768.public_bytes_raw() + self.x25519.public_bytes_raw()

    @cached_property
    def kid(self) -> str:
        return key_id("enc", self.raw())

    def hpke_key(self) -> hpke.MLKEM768X25519PublicKey:
        return self._hpke

    @cached_property
    def _hpke(self) -> hpke.MLKEM768X25519PublicKey:
        return hpke.MLKEM768X25519PublicKey(self.mlkem768, self.x25519)

    def to_json(self) -> dict[str, str]:
        return {
            "party": self.party,
            "kid": self.kid,
            "alg": KEM_ALG,
            "mlkem768": b64u(self.mlkem768.public_bytes_raw()),
            "x25519": b64u(self.x25519.public_bytes_raw()),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EncryptionPublicKey:
        if data.get("alg", KEM_ALG) != KEM_ALG:
            raise ValueError(f"unsupported KEM {data.get('alg')!r}")
        key = cls(
            party=str(data["party"]),
            mlkem768=mlkem.MLKEM768PublicKey.from_public_bytes(unb64u(data["mlkem768"])),
            x25519=x25519.X25519PublicKey.from_public_bytes(unb64u(data["x25519"])),
        )
        if "kid" in data and data["kid"] != key.kid:
            raise ValueError("kid does not match the public key")
        return key


@dataclass(frozen=True)
class SigningKey:
    """A party's private signing key: Ed25519, optionally with an ML-DSA-65 co-signing key."""

    party: str
    ed25519: ed25519.Ed25519PrivateKey
    mldsa65: mldsa.MLDSA65PrivateKey | None = None

    @classmethod
    def generate(cls, party: str, *, post_quantum: bool = False) -> SigningKey:
        pq = mldsa.MLDSA65PrivateKey.generate() if post_quantum else None
        return cls(party, ed25519.Ed25519PrivateKey.generate(), pq)

    def public(self) -> SigningPublicKey:
        return self._public

    @cached_property
    def _public(self) -> SigningPublicKey:
        pq = None if self.mldsa65 is None else self.mldsa65.public_key()
        return SigningPublicKey(self.party, self.ed25519.public_key(), pq)


@dataclass(frozen=True)
class EncryptionKey:
    """A party's private HPKE key (ML-KEM-768 + X25519)."""

    party: str
    mlkem768: mlkem.MLKEM768PrivateKey
    x25519: x25519.X25519PrivateKey

    @classmethod
    def generate(cls, party: str) -> EncryptionKey:
        return cls(party, mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate())

    def public(self) -> EncryptionPublicKey:
        return self._public

    @cached_property
    def _public(self) -> EncryptionPublicKey:
        return EncryptionPublicKey(self.party, self.mlkem768.public_key(), self.x25519.public_key())

    def hpke_key(self) -> hpke.MLKEM768X25519PrivateKey:
        return self._hpke

    @cached_property
    def _hpke(self) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(self.mlkem768, self.x25519)


@dataclass(frozen=True)
class NodeKeys:
    """Everything private a party holds: its signing key and its encryption keys, newest first."""

    party: str
    signing: SigningKey
    encryption: tuple[EncryptionKey, ...]
    created_at: datetime | None = None
    #: A new signing key asked for in a rotation, used once the directory publishes it.
    pending_signing: SigningKey | None = None
    #: The public halves of the signing keys replaced by a rotation, newest first.
    previous_signing: tuple[SigningPublicKey, ...] = ()
    #: Encryption keys no longer published, kept to open the messages stored under them.
    retired_encryption: tuple[EncryptionKey, ...] = ()
    #: The blind record lookup's OPRF key and records-register key (docs/lookup.md).
    lookup: LookupKeys | None = None
    _by_kid: dict[str, EncryptionKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.encryption:
            raise ValueError("a party needs at least one encryption key")
        held = (*self.retired_encryption, *self.encryption)  # a current key wins a kid clash
        object.__setattr__(self, "_by_kid", {k.public().kid: k for k in held})

    @classmethod
    def generate(cls, party: str, *, post_quantum_signature: bool = False) -> NodeKeys:
        return cls(
            party,
            SigningKey.generate(party, post_quantum=post_quantum_signature),
            (EncryptionKey.generate(party),),
            lookup=LookupKeys.generate(),
        )

    @property
    def current_encryption(self) -> EncryptionKey:
        return self.encryption[0]

    def encryption_key(self, kid: str) -> EncryptionKey | None:
        """The private encryption key with this id, if this party still holds it (published or
        retired)."""
        return self._by_kid.get(kid)

    def signing_public_key(self, kid: str) -> SigningPublicKey | None:
        """The public signing key with this id: the current one or one this party signed with
        before a rotation; None if it never held it."""
        for key in (self.signing.public(), *self.previous_signing):
            if key.kid == kid:
                return key
        return None

    def with_new_encryption_key(self, keep_previous: bool = True) -> NodeKeys:
        """Rotate: a fresh encryption key becomes current; the old ones stay for the overlap."""
        fresh = EncryptionKey.generate(self.party)
        rest = self.encryption if keep_previous else ()
        return replace(self, encryption=(fresh, *rest))

    def without_encryption_key(self, kid: str) -> NodeKeys:
        """Destroy an encryption key for good (published or retired): what was sealed to it no
        longer opens here. To end an overlap, :meth:`retire_encryption_key` instead."""
        kept = tuple(k for k in self.encryption if k.public().kid != kid)
        retired = tuple(k for k in self.retired_encryption if k.public().kid != kid)
        return replace(self, encryption=kept, retired_encryption=retired)

    def retire_encryption_key(self, kid: str) -> NodeKeys:
        """End an overlap: stop publishing an encryption key, and keep it in the history so that
        the messages stored under it still open."""
        gone = tuple(k for k in self.encryption if k.public().kid == kid)
        kept = tuple(k for k in self.encryption if k.public().kid != kid)
        return replace(self, encryption=kept, retired_encryption=(*gone, *self.retired_encryption))

    def with_pending_signing_key(self) -> NodeKeys:
        """Rotate the signing key: a new one waits until the directory publishes it."""
        post_quantum = self.signing.mldsa65 is not None
        return replace(
            self, pending_signing=SigningKey.generate(self.party, post_quantum=post_quantum)
        )

    def promote_pending_signing_key(self) -> NodeKeys:
        """The directory now lists the pending signing key: sign with it from now on, and keep
        the replaced key's public half to verify what was signed with it."""
        if self.pending_signing is None:
            return self
        previous = (self.signing.public(), *self.previous_signing)
        return replace(
            self, signing=self.pending_signing, pending_signing=None, previous_signing=previous
        )

    def public_bundle(self) -> dict[str, Any]:
        """The public keys in the form the directory publishes."""
        return {
            "party": self.party,
            "signing": self.signing.public().to_json(),
            "encryption": [k.public().to_json() for k in self.encryption],
        }

    # -- private key files ------------------------------------------------------------------

    def private_json(self) -> dict[str, Any]:
        """The key file's content (docs/envelope.md, "Key files"). Secret: never log it."""
        sig = _signing_json(self.signing)
        out: dict[str, Any] = {
            "format": KEYFILE_FORMAT,
            "party": self.party,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "signing": sig,
            "encryption": [_encryption_json(k) for k in self.encryption],
        }
        if self.pending_signing is not None:
            out["pending_signing"] = _signing_json(self.pending_signing)
        if self.previous_signing:
            out["previous_signing"] = [_public_signing_json(k) for k in self.previous_signing]
        if self.retired_encryption:
            out["retired_encryption"] = [_encryption_json(k) for k in self.retired_encryption]
        if self.lookup is not None:
            out["lookup"] = self.lookup.to_json()
        return out

    @classmethod
    def from_private_json(cls, data: dict[str, Any]) -> NodeKeys:
        if data.get("format") != KEYFILE_FORMAT:
            raise KeyFileError(f"unknown key file format {data.get('format')!r}")
        party = str(data["party"])
        signing = _signing_from_json(party, data["signing"])
        pending = data.get("pending_signing")
        created = data.get("created_at")
        lookup = data.get("lookup")
        return cls(
            party,
            signing,
            tuple(_encryption_from_json(party, e) for e in data["encryption"]),
            None if created is None else datetime.fromisoformat(created),
            None if pending is None else _signing_from_json(party, pending),
            tuple(_public_signing_from_json(party, k) for k in data.get("previous_signing", [])),
            tuple(_encryption_from_json(party, e) for e in data.get("retired_encryption", [])),
            None if lookup is None else LookupKeys.from_json(lookup),
        )

    def save(self, path: Path, passphrase: bytes | None = None) -> None:
        """Write the private keys to ``path`` with mode 0600, sealed under a passphrase if given."""
        payload = json.dumps(self.private_json()).encode()
        if passphrase is not None:
            payload = json.dumps(_seal_with_passphrase(payload, passphrase)).encode()
        write_secret(path, payload)

    @classmethod
    def load(cls, path: Path, passphrase: bytes | None = None) -> NodeKeys:
        """Read a key file written by :meth:`save`; refuse one others can read."""
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            raise KeyFileError(f"{path.name} is not there", "missing") from None
        except OSError as exc:
            raise KeyFileError(
                f"{path.name} cannot be read ({exc.strerror})", "unreadable"
            ) from None
        if mode & 0o077:
            raise KeyFileError(
                f"{path.name} is readable by others (mode {mode:o}); chmod 600 it",
                "exposed",
                mode=f"{mode:03o}",
            )
        try:
            data = json.loads(path.read_bytes())
        except ValueError as exc:
            raise KeyFileError("key file is not JSON") from exc
        except OSError as exc:
            raise KeyFileError(
                f"{path.name} cannot be read ({exc.strerror})", "unreadable"
            ) from None
        if data.get("format") == SEALED_KEYFILE_FORMAT:
            if passphrase is None:
                raise KeyFileError(
                    "key file is passphrase-protected; a passphrase is required",
                    "passphrase_required",
                )
            data = json.loads(_open_with_passphrase(data, passphrase))
        try:
            return cls.from_private_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyFileError(f"key file is damaged: {type(exc).__name__}") from exc


def _signing_json(key: SigningKey) -> dict[str, Any]:
    sig: dict[str, Any] = {"ed25519": b64u(key.ed25519.private_bytes_raw())}
    if key.mldsa65 is not None:
        sig["mldsa65_seed"] = b64u(key.mldsa65.private_bytes_raw())
    return sig


def _signing_from_json(party: str, sig: dict[str, Any]) -> SigningKey:
    pq_seed = sig.get("mldsa65_seed")
    return SigningKey(
        party,
        ed25519.Ed25519PrivateKey.from_private_bytes(unb64u(sig["ed25519"])),
        None if pq_seed is None else mldsa.MLDSA65PrivateKey.from_seed_bytes(unb64u(pq_seed)),
    )


def _public_signing_json(key: SigningPublicKey) -> dict[str, str]:
    # no kid: it is worked out from the key when read, so a file cannot name a key wrongly
    out = {"ed25519": b64u(key.ed25519.public_bytes_raw())}
    if key.mldsa65 is not None:
        out["mldsa65"] = b64u(key.mldsa65.public_bytes_raw())
    return out


def _public_signing_from_json(party: str, data: dict[str, Any]) -> SigningPublicKey:
    return SigningPublicKey.from_json({"party": party, **data})


def _encryption_json(key: EncryptionKey) -> dict[str, str]:
    return {
        "mlkem768_seed": b64u(key.mlkem768.private_bytes_raw()),
        "x25519": b64u(key.x25519.private_bytes_raw()),
    }


def _encryption_from_json(party: str, data: dict[str, Any]) -> EncryptionKey:
    return EncryptionKey(
        party,
        mlkem.MLKEM768PrivateKey.from_seed_bytes(unb64u(data["mlkem768_seed"])),
        x25519.X25519PrivateKey.from_private_bytes(unb64u(data["x25519"])),
    )


def _kek(passphrase: bytes, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P).derive(passphrase)


def _seal_with_passphrase(payload: bytes, passphrase: bytes) -> dict[str, Any]:
    salt, nonce = os.urandom(16), os.urandom(12)
    aad = SEALED_KEYFILE_FORMAT.encode()
    ct = AESGCM(_kek(passphrase, salt)).encrypt(nonce, payload, aad)
    return {
        "format": SEALED_KEYFILE_FORMAT,
        "scrypt": {"n": _SCRYPT_N, "r": _SCRYPT_R, "p": _SCRYPT_P, "salt": b64u(salt)},
        "nonce": b64u(nonce),
        "ciphertext": b64u(ct),
    }


def _open_with_passphrase(data: dict[str, Any], passphrase: bytes) -> bytes:
    try:
        params = data["scrypt"]
        kdf = Scrypt(
            salt=unb64u(params["salt"]), length=32, n=params["n"], r=params["r"], p=params["p"]
        )
        aead = AESGCM(kdf.derive(passphrase))
        return aead.decrypt(
            unb64u(data["nonce"]), unb64u(data["ciphertext"]), SEALED_KEYFILE_FORMAT.encode()
        )
    except InvalidTag:
        raise KeyFileError("wrong passphrase or damaged key file", "wrong_passphrase") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"sealed key file is damaged: {type(exc).__name__}") from exc

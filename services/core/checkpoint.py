"""Signed tree heads in the C2SP ``tlog-checkpoint`` form, as C2SP ``signed-note`` text.

A checkpoint's body is three lines: the log's origin, the tree size in decimal, the root hash in
standard base64. A note is its body, a blank line, and one signature line per signer:
``— <key name> <base64(4-byte key hash || signature)>``, where the key hash of an Ed25519 key is
the first four bytes of SHA-256(name || "\\n" || 0x01 || public key). The log signs; each witness
adds its own signature line over the same body (a cosignature) once it has checked consistency.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

SIGNATURE_PREFIX = "\u2014 "  # em dash, space
ED25519_ALG = b"\x01"


class NoteError(Exception):
    """A note or checkpoint that does not parse or is not signed by the expected key."""


def key_hash(name: str, public: ed25519.Ed25519PublicKey) -> bytes:
    data = name.encode() + b"\n" + ED25519_ALG + public.public_bytes_raw()
    return hashlib.sha256(data).digest()[:4]


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    if "\n" in origin or not origin:
        raise NoteError("an origin is one non-empty line")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    note: str  # the whole signed-note text


@dataclass(frozen=True)
class Signature:
    name: str
    key_hash: bytes
    signature: bytes


def signature_line(body: str, name: str, key: ed25519.Ed25519PrivateKey) -> str:
    sig = key.sign(body.encode())
    blob = base64.b64encode(key_hash(name, key.public_key()) + sig).decode()
    return f"{SIGNATURE_PREFIX}{name} {blob}\n"


def sign_checkpoint(
    origin: str, size: int, root: bytes, name: str, key: ed25519.Ed25519PrivateKey
) -> Checkpoint:
    body = checkpoint_body(origin, size, root)
    return Checkpoint(origin, size, root, body + "\n" + signature_line(body, name, key))


def split_note(text: str) -> tuple[str, list[Signature]]:
    """The body and the signature lines of a note (not verified)."""
    if "\n\n" not in text:
        raise NoteError("no signature block")
    body, block = text.split("\n\n", 1)
    body += "\n"
    signatures = []
    for line in block.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a line of the signature block is not a signature")
        try:
            name, blob = line[len(SIGNATURE_PREFIX) :].rsplit(" ", 1)
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            raise NoteError("a signature line does not parse") from None
        if len(raw) != 4 + 64:
            raise NoteError("not an Ed25519 note signature")
        signatures.append(Signature(name, raw[:4], raw[4:]))
    return body, signatures


def signed_by(text: str, name: str, public: ed25519.Ed25519PublicKey) -> bool:
    """Whether the note carries a valid signature by ``name``'s key ``public``."""
    body, signatures = split_note(text)
    expected = key_hash(name, public)
    for s in signatures:
        if s.name == name and s.key_hash == expected:
            try:
                public.verify(s.signature, body.encode())
                return True
            except InvalidSignature:
                return False
    return False


def parse_checkpoint(text: str) -> Checkpoint:
    body, _ = split_note(text)
    lines = body.split("\n")
    try:
        origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    except (IndexError, ValueError):
        raise NoteError("not a checkpoint body") from None
    if len(root) != 32 or size < 0:
        raise NoteError("not a checkpoint body")
    return Checkpoint(origin, size, root, text)


def verify_checkpoint(text: str, name: str, public: ed25519.Ed25519PublicKey) -> Checkpoint:
    """The checkpoint, if ``name``'s key signed it."""
    if not signed_by(text, name, public):
        raise NoteError(f"not signed by {name}")
    return parse_checkpoint(text)


def cosign(text: str, name: str, key: ed25519.Ed25519PrivateKey) -> str:
    """The note with one more signature line: a witness's cosignature over the same body."""
    body, _ = split_note(text)
    return text + signature_line(body, name, key)

"""Attachments, version 1: a file encrypted in chunks beside its envelope (docs/envelope.md s. 13).

The file is encrypted with a fresh random 32-byte key in fixed-size chunks of 64 KiB, each with
AES-256-GCM under a STREAM nonce (Hoang, Reyhanitabar, Rogaway, Vizar, "Online
Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015; the construction the
age format uses): an 11-byte big-endian chunk counter followed by a flag byte, 0x01 on the last
chunk and 0x00 on every other. So truncation (no chunk carries the last flag where one should),
reordering and duplication (a chunk opened under another counter) and bit flips (the tag) are all
detected chunk by chunk, with bounded memory. The key and the SHA-256 of the whole ciphertext go
into the manifest, inside the encrypted, signed body; the digest commits the sender to the exact
bytes (AES-GCM alone is not key-committing) and is what the recipient's receipt repeats.

Like ``envelope``, this module is the only place that touches the primitives for attachments.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.attachment import ATTACHMENT_ENC, CHUNK_SIZE, AttachmentManifest
from services.core.encoding import b64u, unb64u

__all__ = [
    "CHUNK_SIZE",
    "KEY_LEN",
    "TAG_LEN",
    "AttachmentError",
    "AttachmentFault",
    "ChunkOpener",
    "SealedFile",
    "chunk_count",
    "ciphertext_size",
    "encrypt_chunks",
    "manifest_key",
    "new_key",
    "nonce",
    "open_chunks",
    "read_chunks",
    "seal_stream",
    "split_ciphertext",
]

KEY_LEN, TAG_LEN, NONCE_LEN = 32, 16, 12
LAST, NOT_LAST = b"\x01", b"\x00"
#: 2^88 chunks would exhaust the counter; the format's size bound keeps far below it.
_MAX_COUNTER = 2**88 - 1


class AttachmentFault(StrEnum):
    """Why an attachment could not be accepted (the reason codes of the same names)."""

    MISSING = "attachment_missing"
    CORRUPT = "attachment_corrupt"
    TOO_LARGE = "attachment_too_large"


class AttachmentError(Exception):
    """An attachment was refused; ``fault`` is its reason code, ``detail`` one line for people
    (never content: chunk numbers and sizes only)."""

    def __init__(self, fault: AttachmentFault, detail: str) -> None:
        self.fault = fault
        self.detail = detail
        super().__init__(f"{fault.value}: {detail}")


def new_key() -> bytes:
    """A fresh random attachment key: never reused for another file."""
    return os.urandom(KEY_LEN)


def manifest_key(manifest: AttachmentManifest) -> bytes:
    """The 32-byte key a manifest carries."""
    return unb64u(manifest.key)


def nonce(counter: int, last: bool) -> bytes:
    """The STREAM nonce of chunk ``counter``: 11-byte big-endian counter, then the last flag."""
    if not 0 <= counter <= _MAX_COUNTER:
        raise ValueError("chunk counter out of range")
    return counter.to_bytes(11, "big") + (LAST if last else NOT_LAST)


def chunk_count(size: int) -> int:
    """How many chunks a file of ``size`` plaintext bytes has: at least one (an empty file is
    one empty last chunk), and a file of exactly n chunks' size has n, the last one full."""
    return max(1, -(-size // CHUNK_SIZE))


def ciphertext_size(size: int) -> int:
    """The ciphertext's length for ``size`` plaintext bytes: one tag per chunk."""
    return size + TAG_LEN * chunk_count(size)


def _chunk_plain_len(index: int, size: int) -> int:
    count = chunk_count(size)
    return CHUNK_SIZE if index < count - 1 else size - CHUNK_SIZE * (count - 1)


def encrypt_chunks(key: bytes, source: BinaryIO, size: int) -> Iterator[bytes]:
    """Encrypt ``size`` bytes read from ``source``, one ciphertext chunk at a time.

    Raises ValueError if ``source`` ends early or holds more than ``size`` bytes: the manifest's
    size is signed, so it must be the file's.
    """
    aead = AESGCM(key)
    count = chunk_count(size)
    for index in range(count):
        want = _chunk_plain_len(index, size)
        plain = source.read(want)
        if len(plain) != want:
            raise ValueError(f"the file is shorter than {size} bytes")
        last = index == count - 1
        if last and source.read(1):
            raise ValueError(f"the file is longer than {size} bytes")
        yield aead.encrypt(nonce(index, last), plain, None)


@dataclass(frozen=True)
class SealedFile:
    """What sealing a file produced: its manifest and the ciphertext's length."""

    manifest: AttachmentManifest
    ciphertext_size: int


def seal_stream(
    source: BinaryIO,
    size: int,
    sink: BinaryIO,
    *,
    name: str,
    media_type: str,
    key: bytes | None = None,
) -> SealedFile:
    """Encrypt ``size`` bytes of ``source`` into ``sink`` (chunk by chunk: memory stays bounded)
    and return the manifest, digest included. ``key`` is for test vectors only: a sender never
    chooses one."""
    key = key if key is not None else new_key()
    digest, written = hashlib.sha256(), 0
    for chunk in encrypt_chunks(key, source, size):
        digest.update(chunk)
        sink.write(chunk)
        written += len(chunk)
    manifest = AttachmentManifest(
        name=name,
        media_type=media_type,
        size=size,
        chunk_size=CHUNK_SIZE,
        enc=ATTACHMENT_ENC,
        key=b64u(key),
        ciphertext_sha256=digest.hexdigest(),
    )
    return SealedFile(manifest, written)


class ChunkOpener:
    """Opens one attachment's ciphertext chunk by chunk, in order, and checks the whole.

    Feed it every chunk with :meth:`open` (it returns the plaintext), then call :meth:`finish`:
    it raises ``AttachmentError(CORRUPT)`` for a chunk of the wrong length, a tag that does not
    verify (a flipped bit, a chunk moved, repeated or from another file, the wrong key), too many
    or too few chunks, or a digest other than the manifest's.
    """

    def __init__(self, manifest: AttachmentManifest) -> None:
        self._aead = AESGCM(manifest_key(manifest))
        self._size = manifest.size
        self._count = chunk_count(manifest.size)
        self._expected = manifest.ciphertext_sha256
        self._digest = hashlib.sha256()
        self.next_index = 0

    @property
    def count(self) -> int:
        """How many chunks the manifest's size means."""
        return self._count

    def chunk_length(self, index: int) -> int:
        """The ciphertext length chunk ``index`` must have."""
        return _chunk_plain_len(index, self._size) + TAG_LEN

    def open(self, chunk: bytes) -> bytes:
        """Verify and decrypt the next chunk."""
        index = self.next_index
        if index >= self._count:
            raise AttachmentError(AttachmentFault.CORRUPT, f"more than {self._count} chunks")
        if len(chunk) != self.chunk_length(index):
            raise AttachmentError(
                AttachmentFault.CORRUPT,
                f"chunk {index} is {len(chunk)} bytes, expected {self.chunk_length(index)}",
            )
        try:
            plain = self._aead.decrypt(nonce(index, index == self._count - 1), chunk, None)
        except InvalidTag:
            raise AttachmentError(
                AttachmentFault.CORRUPT, f"chunk {index} does not decrypt"
            ) from None
        self._digest.update(chunk)
        self.next_index += 1
        return plain

    def finish(self) -> None:
        """Check that every chunk came and that the bytes are those the manifest names."""
        if self.next_index != self._count:
            raise AttachmentError(
                AttachmentFault.CORRUPT, f"{self.next_index} of {self._count} chunks"
            )
        if self._digest.hexdigest() != self._expected:
            raise AttachmentError(AttachmentFault.CORRUPT, "ciphertext digest differs")


def split_ciphertext(data: bytes, size: int) -> list[bytes]:
    """Cut a whole ciphertext held in memory into the chunks ``size`` means (vectors, tests)."""
    lengths = [_chunk_plain_len(i, size) + TAG_LEN for i in range(chunk_count(size))]
    out, at = [], 0
    for n in lengths:
        out.append(data[at : at + n])
        at += n
    if at < len(data):
        out.append(data[at:])
    return [c for c in out if c]


def open_chunks(manifest: AttachmentManifest, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The plaintext of ``chunks``, chunk by chunk; raises AttachmentError at the first fault
    (the caller must discard what it wrote so far), and after the last chunk if the whole is
    not the manifest's."""
    opener = ChunkOpener(manifest)
    for chunk in chunks:
        yield opener.open(chunk)
    opener.finish()


def read_chunks(source: BinaryIO, manifest: AttachmentManifest) -> Iterator[bytes]:
    """The ciphertext chunks of a stored attachment file, as the manifest's size cuts them."""
    for index in range(chunk_count(manifest.size)):
        want = _chunk_plain_len(index, manifest.size) + TAG_LEN
        chunk = source.read(want)
        if not chunk:
            return
        yield chunk
    extra = source.read(1)
    if extra:
        yield extra + source.read(CHUNK_SIZE + TAG_LEN - 1)

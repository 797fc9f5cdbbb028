"""Byte encodings and identifiers used on the wire: base64url without padding, UUIDv7."""

from __future__ import annotations

import binascii
import os
import time

import pybase64  # SIMD base64: CPython's binascii decodes a 1 KB ciphertext six times slower


def b64u_bytes(data: bytes) -> bytes:
    """Base64url without padding (RFC 4648 section 5), as ASCII bytes."""
    return pybase64.b64encode(data, altchars=b"-_").rstrip(b"=")


def b64u(data: bytes) -> str:
    """Encode bytes as base64url without padding (RFC 4648 section 5)."""
    return b64u_bytes(data).decode("ascii")


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_PADDING = ("", "", "==", "=")
#: The value of each base64url character (the last one's unused low bits must be zero).
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_UNUSED_BITS = (0, 0, 0x0F, 0x03)


def unb64u(text: str) -> bytes:
    """Decode unpadded base64url; raise ValueError on anything else (padding, other alphabets).

    Canonical only: the unused low bits of the last character must be zero, so every byte string
    has exactly one encoding.
    """
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not unpadded base64url")
    tail = len(text) % 4
    if tail == 1:
        raise ValueError("impossible base64url length")
    # With ``-_`` as its alternative characters the decoder still takes ``+`` and ``/``, and the
    # padding it needs is added here, so the standard alphabet and any ``=`` are refused first.
    if "+" in text or "/" in text or "=" in text:
        raise ValueError("not base64url")
    try:
        raw = pybase64.b64decode(text + _PADDING[tail], altchars=b"-_", validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    if tail and _VALUE[text[-1]] & _UNUSED_BITS[tail]:
        raise ValueError("non-canonical base64url")
    return raw


def uuid7(unix_ms: int | None = None) -> str:
    """A new UUIDv7 (RFC 9562 section 5.7): 48-bit Unix milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    b = bytearray((ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big") + os.urandom(10))
    b[6] = 0x70 | (b[6] & 0x0F)  # version 7, then 12 random bits (rand_a)
    b[8] = 0x80 | (b[8] & 0x3F)  # variant 10, then 62 random bits (rand_b)
    h = b.hex()  # str(uuid.UUID(bytes=b)), without building the object
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

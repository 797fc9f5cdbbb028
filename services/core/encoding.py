"""Byte encodings and identifiers used on the wire: base64url without padding, UUIDv7."""

from __future__ import annotations

import base64
import binascii
import os
import time


def b64u(data: bytes) -> str:
    """Encode bytes as base64url without padding (RFC 4648 section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: base64url to standard base64; the standard alphabet's own ``+`` and ``/`` and any ``=`` become
#: ``*``, which no alphabet has, so the strict decoder refuses them in the same pass.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
_PADDING = (b"", b"", b"==", b"=")
#: The value of each base64url character (the last one's unused low bits must be zero).
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_UNUSED_BITS = (0, 0, 0x0F, 0x03)


def unb64u(text: str) -> bytes:
    """Decode unpadded base64url; raise ValueError on anything else (padding, other alphabets).

    Canonical only: the unused low bits of the last character must be zero, so every byte string
    has exactly one encoding.
    """
    if not isinstance(text, str):
        raise ValueError("not unpadded base64url")
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("not unpadded base64url") from None
    tail = len(data) % 4
    if tail == 1:
        raise ValueError("impossible base64url length")
    try:
        raw = binascii.a2b_base64(data.translate(_TO_STANDARD) + _PADDING[tail], strict_mode=True)
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    if tail and _VALUE[data[-1]] & _UNUSED_BITS[tail]:
        raise ValueError("non-canonical base64url")
    return raw


def uuid7(unix_ms: int | None = None) -> str:
    """A new UUIDv7 (RFC 9562 section 5.7): 48-bit Unix milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    h = f"{value:032x}"  # str(uuid.UUID(int=value)), without building the object
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

"""A state's published lookup filter: a Bloom filter of OPRF outputs, signed by the state.

Format (docs/lookup.md, section 4): ``m_bits`` bits, bit ``j`` is bit ``j % 8`` (least significant
first) of byte ``j // 8``. An OPRF output ``y`` (64 bytes) sets or tests the ``k`` bits
``(h1 + i * h2) mod m`` for ``i`` in ``0 .. k-1``, where ``h1`` is ``y[0:8]`` and ``h2`` is
``y[8:16] | 1`` read as big-endian unsigned integers (Kirsch and Mitzenmacher's double hashing:
the output is already pseudorandom, so no further hash is needed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from pydantic import ValidationError

from schemas.lookup import (
    FILTER_FORMAT,
    MAX_FILTER_BYTES,
    OPRF_SUITE,
    LookupFilter,
    SignedLookupFilter,
)
from services.core.encoding import b64u, unb64u
from services.core.keys import SigningKey, SigningPublicKey
from services.core.oprf import LookupCryptoError, OprfPublicKey

FILTER_DOMAIN = b"CIFTA-Exchange lookup filter v1\x00"
#: The false-positive rate a state builds for unless it says otherwise: across 35 states, about
#: one lookup in 30,000 shows a state that holds nothing.
DEFAULT_FP_RATE = 1e-6
MIN_BITS = 64


class FilterError(Exception):
    """A published filter that does not parse, is not signed by its state, or is inconsistent."""


#: Double hashing draws each output's probes from the pair ``(h1 mod m, h2 mod m)``, and the
#: optimal size alone lets that pass the stated rate: an output whose pair is a record's is a hit
#: whatever else the filter holds (about ``2 n / m^2``: two records in 64 bits, 4e-3 measured, not
#: 1e-6), and where ``h2`` shares a factor with ``m`` its probes cycle over a few bits (1.7e-3
#: measured for 100 records at 1e-3 in 1,440 bits). So ``m`` is a power of two, which an odd
#: ``h2`` never shares a factor with, and at least ``sqrt(PAIRS_MARGIN * n / p)``, which holds
#: the pairs to a tenth of ``p`` (past about 24,000 records at 1e-6 the optimal size is larger).
PAIRS_MARGIN = 20


def parameters(records: int, fp_rate: float) -> tuple[int, int]:
    """(m_bits, k) of the Bloom filter for ``records`` entries at ``fp_rate``: the optimal size,
    or the floor double hashing needs to keep to that rate, rounded up to a power of two."""
    if records == 0:
        return MIN_BITS, 1
    optimal = math.ceil(-records * math.log(fp_rate) / math.log(2) ** 2)
    pairs = math.ceil(math.sqrt(PAIRS_MARGIN * records / fp_rate))
    m = max(MIN_BITS, 1 << (max(optimal, pairs) - 1).bit_length())
    k = max(1, round(m / records * math.log(2)))
    return m, min(k, 64)


def _positions(output: bytes, m: int, k: int) -> list[int]:
    h1 = int.from_bytes(output[0:8], "big")
    h2 = int.from_bytes(output[8:16], "big") | 1
    return [(h1 + i * h2) % m for i in range(k)]


@dataclass(frozen=True)
class BloomFilter:
    m_bits: int
    k: int
    bits: bytes

    @classmethod
    def build(cls, outputs: Iterable[bytes], records: int, fp_rate: float) -> BloomFilter:
        m, k = parameters(records, fp_rate)
        if m // 8 > MAX_FILTER_BYTES:
            raise FilterError(f"{records} records need a filter above {MAX_FILTER_BYTES} bytes")
        bits = bytearray(m // 8)
        for output in outputs:
            for j in _positions(output, m, k):
                bits[j >> 3] |= 1 << (j & 7)
        return cls(m, k, bytes(bits))

    def __contains__(self, output: object) -> bool:
        if not isinstance(output, bytes):
            return False
        bits = self.bits
        return all(bits[j >> 3] >> (j & 7) & 1 for j in _positions(output, self.m_bits, self.k))


@dataclass(frozen=True)
class PublishedFilter:
    """A verified filter: whose, under which OPRF key, and the Bloom filter itself."""

    party: str
    oprf_key: OprfPublicKey
    built_at: datetime
    records: int
    fp_rate: float
    bloom: BloomFilter


def sign_filter(
    party: str,
    key: SigningKey,
    oprf_key: OprfPublicKey,
    bloom: BloomFilter,
    *,
    records: int,
    fp_rate: float,
    built_at: datetime,
) -> bytes:
    """The bucket value: the filter's JSON, signed with the state's directory signing key."""
    doc = LookupFilter(
        format=FILTER_FORMAT,
        party=party,
        suite=OPRF_SUITE,
        oprf_key=oprf_key.to_text(),
        oprf_kid=oprf_key.kid,
        built_at=built_at,
        records=records,
        fp_rate=fp_rate,
        m_bits=bloom.m_bits,
        k=bloom.k,
        bits=b64u(bloom.bits),
    )
    data = doc.model_dump_json().encode()
    sig = key.ed25519.sign(FILTER_DOMAIN + data)
    signed = SignedLookupFilter(filter=b64u(data), kid=key.public().kid, sig=b64u(sig))
    return signed.model_dump_json().encode()


def open_filter(
    value: bytes, party: str, signing_key: Callable[[str], SigningPublicKey | None]
) -> PublishedFilter:
    """The filter ``party`` published, if the signing key the directory lists for ``party`` under
    the filter's kid (``signing_key(kid)``, None when unknown or revoked) signed it and it is
    consistent; raise :class:`FilterError` otherwise."""
    try:
        signed = SignedLookupFilter.model_validate_json(value)
        data = unb64u(signed.filter)
        doc = LookupFilter.model_validate_json(data)
        bits = unb64u(doc.bits)
        oprf_key = OprfPublicKey.from_text(doc.oprf_key)
    except (ValidationError, ValueError, LookupCryptoError) as exc:
        raise FilterError(f"{party}'s filter does not parse: {type(exc).__name__}") from None
    key = signing_key(signed.kid)
    if key is None or key.kid != signed.kid:
        raise FilterError(f"{party}'s filter is signed by a key the directory does not list")
    try:
        key.ed25519.verify(unb64u(signed.sig), FILTER_DOMAIN + data)
    except (InvalidSignature, ValueError):
        raise FilterError(f"{party}'s filter signature does not verify") from None
    if doc.party != party or doc.oprf_kid != oprf_key.kid or len(bits) * 8 != doc.m_bits:
        raise FilterError(f"{party}'s filter is inconsistent (party, key id or size)")
    return PublishedFilter(
        party,
        oprf_key,
        doc.built_at,
        doc.records,
        doc.fp_rate,
        BloomFilter(doc.m_bits, doc.k, bits),
    )

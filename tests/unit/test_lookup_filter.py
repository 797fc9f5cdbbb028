"""The published filter: Bloom parameters, membership, its false-positive rate measured, and its
signature (docs/lookup.md, section 4)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from services.core.keys import NodeKeys
from services.core.lookup_filter import (
    BloomFilter,
    FilterError,
    _positions,
    open_filter,
    parameters,
    sign_filter,
)
from services.core.normalise import firearm
from services.core.oprf import LookupKeys

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


#: Fixed keys and queries: the measured rates below are the same on every run (no flaky test).
FIXED = LookupKeys(bytes(range(32)), bytes(32))


def unknown(i: int) -> bytes:
    return firearm("Beretta", "", "", f"QZ{i:07d}").lookup_input()


def outputs(keys: LookupKeys, n: int) -> list[bytes]:
    return [keys.output(firearm("Glock", "", "", f"AX{i:06d}").lookup_input()) for i in range(n)]


def test_parameters_are_the_optimal_ones_rounded_up_to_a_power_of_two() -> None:
    m, k = parameters(100_000, 1e-6)
    assert m == 2**22 and k == 29  # the optimal 2,875,520 bits rounded up; 29 probes
    assert parameters(0, 1e-6) == (64, 1)


def test_a_small_register_gets_the_bits_double_hashing_needs() -> None:
    # optimal would be 64 bits for two records at 1e-6, where a pair (h1, h2) of a record's
    # comes up about once in 500 outputs: at least sqrt(20 n / p) bits
    m, k = parameters(2, 1e-6)
    assert m == 8192 and k == 64


def test_every_record_is_in_its_filter() -> None:
    keys = LookupKeys.generate()
    held = outputs(keys, 500)
    bloom = BloomFilter.build(held, len(held), 1e-6)
    assert all(y in bloom for y in held)


@pytest.mark.parametrize(
    ("records", "fp_rate"), [(2_000, 0.01), (2_000, 0.001), (2, 0.001), (10, 0.001), (100, 0.001)]
)
def test_false_positive_rate_over_10000_unknown_firearms_is_at_most_the_stated_one(
    records: int, fp_rate: float
) -> None:
    # small registers included: sized for the optimum alone, two records read 4e-3 at 1e-3
    held = outputs(FIXED, records)
    bloom = BloomFilter.build(held, len(held), fp_rate)
    queries = 10_000
    false = sum(FIXED.output(unknown(i)) in bloom for i in range(queries))
    # at most binomial(10000, p): within four standard deviations above its mean
    mean, sd = queries * fp_rate, math.sqrt(queries * fp_rate * (1 - fp_rate))
    assert false <= mean + 4 * sd + 1, (false, mean)


def test_no_false_positive_in_10000_unknown_firearms_at_the_default_rate() -> None:
    held = outputs(FIXED, 2_000)
    bloom = BloomFilter.build(held, len(held), 1e-6)
    # 0.01 false positives expected: none, for these fixed keys and queries
    assert sum(FIXED.output(unknown(i)) in bloom for i in range(10_000)) == 0


def _signed(keys: NodeKeys) -> bytes:
    assert keys.lookup is not None
    bloom = BloomFilter.build(outputs(keys.lookup, 3), 3, 1e-6)
    return sign_filter(keys.party, keys.signing, keys.lookup.public(), bloom,
                       records=3, fp_rate=1e-6, built_at=NOW)  # fmt: skip


def test_a_signed_filter_opens_with_its_states_key() -> None:
    keys = NodeKeys.generate("MEX")
    published = open_filter(_signed(keys), "MEX", lambda kid: keys.signing.public())
    assert keys.lookup is not None
    assert published.oprf_key == keys.lookup.public() and published.records == 3


def test_a_filter_signed_by_another_state_is_refused() -> None:
    mex, usa = NodeKeys.generate("MEX"), NodeKeys.generate("USA")
    with pytest.raises(FilterError, match="does not list"):
        open_filter(_signed(usa), "MEX", lambda kid: mex.signing.public())
    with pytest.raises(FilterError, match="inconsistent"):  # USA's filter, filed under MEX
        open_filter(_signed(usa), "MEX", lambda kid: usa.signing.public())


def test_a_tampered_filter_is_refused() -> None:
    keys = NodeKeys.generate("MEX")
    value = bytearray(_signed(keys))
    value[40] ^= 1
    with pytest.raises(FilterError):
        open_filter(bytes(value), "MEX", lambda kid: keys.signing.public())


def test_the_specs_vector() -> None:
    """docs/lookup.md, section 8: marks, lookup input, OPRF output, Bloom positions and bits."""
    keys = LookupKeys(bytes.fromhex("a3" * 32), bytes(32))
    assert keys.public().raw.hex() == (
        "ca1bec44a7d2fe867a59cbc9d4c1a2d1b05567151817a4bca76e93aece0b0950"
    )
    assert keys.public().kid == "52fc1352db494ca5ce6fa9b1fad6614f"
    data = firearm("Glock Ges.m.b.H.", "G19 Gen5", "9x19mm", "bxkm-417").lookup_input()
    assert data.hex() == "63696674612d6c6f6f6b75702d763100474c4f434b0038584b4d343137"
    y = keys.output(data)
    assert y.hex() == (
        "dfc872eacfa6377df45e96ae75929943599cb6e2a942c4af204183384da3260b"
        "e375f73324b94d882cc4765af2554507eba07e82bc30e9fbe8f5155a60b2eee4"
    )
    # h1 = 16125264818631751549, h2 = 17608677269106235715: with m = 64 and k = 3, bits 61, 0, 3
    assert _positions(y, 64, 3) == [61, 0, 3]
    assert y in BloomFilter(64, 3, bytes.fromhex("0900000000000020"))
    assert y not in BloomFilter(64, 3, bytes.fromhex("0900000000000000"))

"""Wire encodings: canonical base64url and UUIDv7."""

from __future__ import annotations

import base64
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.wirejson import WireJSONError, loads_strict
from services.core.encoding import b64u, unb64u, uuid7


@given(st.binary(max_size=200))
def test_base64url_round_trips_any_bytes(data: bytes) -> None:
    assert unb64u(b64u(data)) == data


def _reference_unb64u(text: str) -> bytes | None:
    """What unpadded canonical base64url means, written the slow and obvious way: only the
    URL-safe alphabet, no length of 1 mod 4, and the one encoding of the bytes it decodes to."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return raw if b64u(raw) == text else None


@given(st.text(alphabet="AQgwBZ09az-_+/= \n\x00é", max_size=12))
def test_base64url_decoding_accepts_exactly_the_canonical_encodings(text: str) -> None:
    expected = _reference_unb64u(text)
    if expected is None:
        with pytest.raises(ValueError):
            unb64u(text)
    else:
        assert unb64u(text) == expected


@pytest.mark.parametrize(
    "text", ["AA==", "A", "AB+/", "AB", "Zm9v\n", "Zg==", "Zh", "Zm9v=", "Zm=9", "Zé"]
)
def test_padded_or_non_canonical_base64url_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        unb64u(text)


def test_uuid7_has_version_7_variant_10_and_the_given_time() -> None:
    value = uuid7(unix_ms=1_764_000_000_000)
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value
    )
    assert parsed.int >> 80 == 1_764_000_000_000


def test_uuid7_values_differ_within_one_millisecond() -> None:
    assert len({uuid7(unix_ms=1) for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'\xef\xbb\xbf{"a":1}', "byte order mark"),
        (b'{"a":1,"a":1}', "duplicate"),
        (b'{"a":[{"b":1,"b":2}]}', "duplicate"),
        (b'{"a":NaN}', "NaN"),
        (b'{"a":"\xff"}', "UTF-8"),
        (b'{"a":1} {"a":1}', "not JSON"),
        (b'{"a":"\\ud800"}', "unpaired surrogate"),
        (b'{"a":"\xed\xa0\x80"}', "UTF-8"),  # a surrogate's bytes are not UTF-8 either
        (b"[" * 202 + b"]" * 202, "deeper than 200"),
        (b"[" + b"9" * 5000 + b"e-4990]", "number too long"),  # 1e10, in 5,000 digits
        (b"[" * 5000 + b"]" * 5000, "not JSON"),  # Python's own parser refuses it too
    ],
    ids=[
        "bom",
        "duplicate",
        "nested-duplicate",
        "nan",
        "not-utf8",
        "two-texts",
        "lone-surrogate-escape",
        "surrogate-bytes",
        "deep",
        "long-number",
        "very-deep",
    ],
)
def test_received_json_is_parsed_strictly(data: bytes, why: str) -> None:
    with pytest.raises(WireJSONError, match=why):
        loads_strict(data)


def test_strict_json_reads_ordinary_json() -> None:
    assert loads_strict('{"a":[1,{"b":"é"}]}'.encode()) == {"a": [1, {"b": "é"}]}
    # a pair of surrogate escapes is one character; 200 levels are allowed below the top one
    assert loads_strict(b'{"a":"\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    assert loads_strict(b"[" * 201 + b"]" * 201) is not None


def test_a_refusal_never_quotes_the_content() -> None:
    with pytest.raises(WireJSONError) as caught:
        loads_strict(b'{"secret-name":1,"secret-name":2}')
    assert "secret" not in str(caught.value)

"""The envelope read to the letter: what the spec refuses, the node refuses, with the spec's code.

The vectors (test_vectors.py) pin one envelope per rule; these tests pin the rules on envelopes
sealed here, through the public API, so a change to sealing cannot drift from opening.
"""

from __future__ import annotations

import json
import re
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from schemas import HandlingCode, ReasonCode
from services.core.encoding import b64u, unb64u
from services.core.envelope import EnvelopeError, peek_header, verify_sender
from services.core.envelope_format import HEADER_TIME_PATTERN
from tests.builders import (
    NOW,
    as_json,
    directory_of,
    opened,
    party,
    resign,
    sealed,
    to_bytes,
    with_header,
)

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def refused(data: bytes, **kwargs: Any) -> ReasonCode:
    with pytest.raises(EnvelopeError) as info:
        opened(data, **kwargs)
    return info.value.reason


@pytest.mark.parametrize("value", [1, 0, "true", "yes", "off"])
def test_confidential_other_than_a_json_boolean_is_malformed(value: Any) -> None:
    assert refused(with_header(sealed(), confidential=value)) is ReasonCode.MALFORMED


@pytest.mark.parametrize(
    ("where", "value", "reason"),
    [
        ("outer", True, ReasonCode.MALFORMED),
        ("outer", 1.0, ReasonCode.MALFORMED),
        ("outer", "1", ReasonCode.MALFORMED),
        ("outer", None, ReasonCode.MALFORMED),
        ("outer", 3, ReasonCode.UNSUPPORTED_VERSION),
        ("header", True, ReasonCode.MALFORMED),
        ("header", 1.0, ReasonCode.MALFORMED),
        ("header", "1", ReasonCode.MALFORMED),
        ("header", 2, ReasonCode.UNSUPPORTED_VERSION),
    ],
)
def test_version_is_the_json_integer_one_or_its_code_says_why_not(
    where: str, value: Any, reason: ReasonCode
) -> None:
    data = sealed()
    if where == "header":
        data = with_header(data, v=value)
    else:
        env = as_json(data)
        data = to_bytes(
            {k: x for k, x in env.items() if k != "v"} | ({"v": value} if value is not None else {})
        )
    assert refused(data) is reason


@pytest.mark.parametrize(
    "value",
    [
        1795532280,
        1795532280000,
        "2026-11-24 14:58:00.000Z",
        "2026-11-24T15:58:00.000+0100",
        "2026-11-24T15:58:00.000+01:00",
        "2026-11-24T14:58:00Z",
        "2026-11-24T14:58:00.000000Z",
        "2026-11-24t14:58:00.000z",
        "2026-06-30T23:59:60.000Z",
        "2026-02-30T14:58:00.000Z",
        "\uff12026-11-24T14:58:00.000Z",  # a fullwidth digit: digits are ASCII only
        "2026-11-24T14:58:00.000Z\n",
    ],
)
def test_header_timestamp_in_any_other_form_is_malformed(value: Any) -> None:
    assert refused(with_header(sealed(), created_at=value)) is ReasonCode.MALFORMED


def test_sealing_writes_the_one_header_timestamp_form_whatever_clock_it_is_given() -> None:
    offset_clock = datetime(2026, 11, 24, 10, 58, 0, 123456, tzinfo=timezone(timedelta(hours=-4)))
    header = json.loads(unb64u(as_json(sealed(now=offset_clock))["protected"]))
    assert re.fullmatch(HEADER_TIME_PATTERN, header["created_at"])
    assert header["created_at"] == "2026-11-24T14:58:00.123Z"


def test_a_read_header_writes_its_times_back_as_the_instants_it_read() -> None:
    header = peek_header(sealed(now=NOW, expires_at=NOW + timedelta(days=1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a serializer expecting another type warns
        written = json.loads(header.model_dump_json())
    assert datetime.fromisoformat(written["created_at"]) == header.created_at == NOW
    assert datetime.fromisoformat(written["expires_at"]) == NOW + timedelta(days=1)


def test_byte_order_mark_before_the_envelope_or_the_header_is_malformed() -> None:
    data = sealed()
    assert refused(b"\xef\xbb\xbf" + data) is ReasonCode.MALFORMED
    env = as_json(data)
    bom_header = b"\xef\xbb\xbf" + unb64u(env["protected"])
    assert refused(to_bytes(env | {"protected": b64u(bom_header)})) is ReasonCode.MALFORMED


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('{"v":1,', '{"v":2,"v":1,'),
        ('{"party":"USA"', '{"party":"USA","party":"USA"'),
        ('{"alg":"Ed25519"', '{"alg":"Ed25519","alg":"Ed25519"'),
    ],
    ids=["outer", "stanza", "signature"],
)
def test_duplicate_member_anywhere_in_the_envelope_is_malformed(old: str, new: str) -> None:
    text = sealed().decode()
    assert old in text
    assert refused(text.replace(old, new, 1).encode()) is ReasonCode.MALFORMED


def test_h3_without_its_note_is_refused_on_opening_not_only_on_sealing() -> None:
    assert refused(with_header(sealed(), handling="H3")) is ReasonCode.MALFORMED


def test_a_note_with_h0_to_h2_is_refused_on_sealing_and_on_opening() -> None:
    with pytest.raises(ValueError, match="H3"):
        sealed(handling=HandlingCode.H1, handling_note="not for customs")
    assert refused(with_header(sealed(), handling_note="x")) is ReasonCode.MALFORMED


def test_changing_the_note_of_an_h3_message_breaks_its_signature() -> None:
    data = sealed(handling=HandlingCode.H3, handling_note="Not to be shared with customs brokers")
    assert refused(with_header(data, handling_note="No restriction")) is ReasonCode.BAD_SIGNATURE


def test_signature_algorithm_named_twice_in_sigs_is_malformed() -> None:
    assert refused(with_header(sealed(), sigs=["Ed25519", "Ed25519"])) is ReasonCode.MALFORMED


def test_unknown_signature_algorithm_is_unsupported_and_missing_enc_malformed() -> None:
    data = sealed()
    assert refused(with_header(data, sigs=["Ed25519", "Falcon-512"])) is (
        ReasonCode.UNSUPPORTED_ALGORITHM
    )
    env = as_json(data)
    other = {"alg": "RSA-PSS", "sig": env["signatures"][0]["sig"]}
    assert refused(to_bytes(env | {"signatures": [*env["signatures"], other]})) is (
        ReasonCode.UNSUPPORTED_ALGORITHM
    )
    header = json.loads(unb64u(env["protected"]))
    del header["enc"]
    no_enc = env | {"protected": b64u(json.dumps(header).encode())}
    assert refused(to_bytes(no_enc)) is ReasonCode.MALFORMED


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s + "==",
        lambda s: s[:-1] + _ALPHABET[_ALPHABET.index(s[-1]) | 1],  # an unused bit set
        lambda s: b64u(unb64u(s)[:-1]),
        lambda s: b64u(unb64u(s) + b"\x00"),
    ],
    ids=["padded", "non-canonical", "short", "long"],
)
def test_badly_encoded_signature_is_malformed_not_bad_signature(mangle: Any) -> None:
    env = as_json(sealed())
    sig = env["signatures"][0]["sig"]
    mangled = to_bytes(env | {"signatures": [{"alg": "Ed25519", "sig": mangle(sig)}]})
    assert refused(mangled) is ReasonCode.MALFORMED


def test_envelope_exactly_at_the_size_limit_opens_and_one_byte_more_is_oversized() -> None:
    from services.core.envelope import MAX_ENVELOPE_BYTES

    data = sealed()
    assert opened(data + b" " * (MAX_ENVELOPE_BYTES - len(data))).header.kind
    assert refused(data + b" " * (MAX_ENVELOPE_BYTES + 1 - len(data))) is ReasonCode.OVERSIZED


def test_expiry_is_refused_at_the_instant_of_expires_at_not_after() -> None:
    expires = NOW + timedelta(days=1)
    data = sealed(expires_at=expires)
    assert opened(data, now=expires - timedelta(milliseconds=1)).header.expires_at == expires
    assert refused(data, now=expires) is ReasonCode.EXPIRED


# --- post-quantum downgrade ---------------------------------------------------------------------


def _downgraded() -> tuple[bytes, Any]:
    """An envelope of a sender whose directory key has ML-DSA-65, declaring Ed25519 alone."""
    sender = party("BRA", post_quantum=True)
    data = with_header(sealed(sender=sender), sigs=["Ed25519"])
    return to_bytes(resign(as_json(data), sender)), directory_of(sender)


def test_ed25519_only_envelope_from_a_post_quantum_sender_is_refused() -> None:
    data, directory = _downgraded()
    assert refused(data, directory=directory) is ReasonCode.MISSING_SIGNATURE


def test_the_audit_path_refuses_the_downgrade_too() -> None:
    data, directory = _downgraded()
    with pytest.raises(EnvelopeError) as info:
        verify_sender(data, directory=directory)
    assert info.value.reason is ReasonCode.MISSING_SIGNATURE


def test_post_quantum_sender_seals_with_both_signatures_and_opens() -> None:
    sender = party("BRA", post_quantum=True)
    data = sealed(sender=sender)
    assert peek_header(data).sigs == ["Ed25519", "ML-DSA-65"]
    assert opened(data, directory=directory_of(sender)).header.sender == "BRA"


def test_peek_header_refuses_what_opening_refuses_in_check_one() -> None:
    with pytest.raises(EnvelopeError) as info:
        peek_header(with_header(sealed(), confidential="yes"))
    assert info.value.reason is ReasonCode.MALFORMED


# Each header member, with values of every JSON type it does not have: none may be coerced.
_REPLY_TO = "0193a0b2-7c1e-7a4b-8f00-000000000002"
_STRING_FIELDS = ("msg_id", "kind", "sender", "sender_kid", "created_at", "expires_at",
                  "handling", "case_id", "in_reply_to", "enc")  # fmt: skip
_WRONG_TYPES: dict[str, list[Any]] = {
    **{f: [1, 1.5, True, ["x"], {"x": 1}] for f in _STRING_FIELDS},
    "v": [True, 1.0, "1", [1], {"v": 1}],
    "confidential": [1, 0, "true", "false", [True], {"x": True}],
    "recipients": ["USA", 1, True, {"USA": 1}, [1], [["USA"]]],
    "sigs": ["Ed25519", 1, True, {"Ed25519": 1}, [1]],
}


@pytest.mark.parametrize(
    ("member", "value"), [(m, v) for m, vs in _WRONG_TYPES.items() for v in vs], ids=repr
)
def test_no_header_member_is_coerced_from_another_json_type(member: str, value: Any) -> None:
    data = sealed(case_id="MX-1", expires_at=NOW + timedelta(days=1), in_reply_to=_REPLY_TO)
    assert refused(with_header(data, **{member: value})) is ReasonCode.MALFORMED

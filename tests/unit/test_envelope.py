"""The envelope: round trips, every tamper and every refusal with its own reason code."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar, Literal

import pytest

from schemas import BODY_MODELS, Body, HandlingCode, ReasonCode
from schemas.reasons import NODE_REASONS
from services.core.encoding import b64u, unb64u
from services.core.envelope import (
    MAX_ENVELOPE_BYTES,
    EnvelopeError,
    open_envelope,
    peek_header,
)
from services.core.events import signature_digest
from services.core.keys import NodeKeys
from tests.builders import (
    KEY_VALID_FROM,
    NOW,
    InMemoryDirectory,
    as_json,
    directory_of,
    example_body,
    flip_byte,
    later,
    opened,
    party,
    resign,
    sealed,
    to_bytes,
    with_header,
)


def refused(data: bytes, **kwargs: Any) -> ReasonCode:
    with pytest.raises(EnvelopeError) as info:
        opened(data, **kwargs)
    return info.value.reason


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BODY_MODELS))
def test_every_kind_round_trips_through_seal_and_open(kind: str) -> None:
    body = example_body(kind)
    result = opened(sealed(body))
    assert result.body == body
    assert result.header.kind == kind


def test_an_opened_envelope_names_the_digests_audit_events_carry() -> None:
    data = sealed()
    result = opened(data)
    assert result.envelope_hash == hashlib.sha256(data).hexdigest()
    assert result.signature_sha256 == signature_digest(data)


def test_every_recipient_of_a_multi_recipient_envelope_opens_the_same_body() -> None:
    usa, col, mex = party("USA"), party("COL"), party("MEX")
    data = sealed(to=[usa, col], case_id="MX-FGR-2026-0117", confidential=True)
    at_usa, at_col = opened(data, at=usa), opened(data, at=col)
    assert at_usa.body == at_col.body
    assert at_usa.header.recipients == ["USA", "COL"]
    assert at_usa.header.confidential is True
    assert at_usa.header.case_id == "MX-FGR-2026-0117"
    assert at_usa.header.sender == mex.party


@pytest.mark.parametrize("post_quantum", [False, True], ids=["ed25519", "with-ml-dsa-65"])
def test_a_sealed_envelope_is_the_compact_json_of_its_own_members(post_quantum: bool) -> None:
    # seal writes the envelope's bytes by hand; they must be what a JSON library writes for the
    # same members, in the spec's order, with several stanzas and both signatures.
    data = sealed(sender=party("MEX", post_quantum), to=[party("USA"), party("COL"), party("ARG")])
    members = json.loads(data)
    assert list(members) == ["v", "protected", "iv", "ciphertext", "recipients", "signatures"]
    assert [s["party"] for s in members["recipients"]] == ["USA", "COL", "ARG"]
    assert [s["alg"] for s in members["signatures"]] == ["Ed25519"] + ["ML-DSA-65"] * post_quantum
    assert [list(s) for s in members["recipients"]] == [["party", "kid", "enc"]] * 3
    assert [list(s) for s in members["signatures"]] == [["alg", "sig"]] * (1 + post_quantum)
    assert data == json.dumps(members, separators=(",", ":"), ensure_ascii=False).encode()


def test_header_carries_handling_and_threading_metadata_in_the_clear() -> None:
    first = opened(sealed()).header
    data = sealed(
        handling=HandlingCode.H3,
        handling_note="Not to be shared with customs brokers",
        in_reply_to=first.msg_id,
        expires_at=later(days=30),
    )
    header = peek_header(data)
    assert header.handling is HandlingCode.H3
    assert header.handling_note == "Not to be shared with customs brokers"
    assert header.in_reply_to == first.msg_id
    assert header.expires_at == later(days=30)
    assert b"Sinaloa" not in unb64u(as_json(data)["protected"])  # body text is not in the header


def test_post_quantum_co_signature_is_verified_and_can_be_required() -> None:
    pq_sender = party("MEX", post_quantum=True)
    directory = directory_of(pq_sender)
    data = sealed(sender=pq_sender)
    assert [s["alg"] for s in as_json(data)["signatures"]] == ["Ed25519", "ML-DSA-65"]
    assert opened(data, directory=directory, require_pq_signature=True).header.sigs == [
        "Ed25519",
        "ML-DSA-65",
    ]
    classic = sealed()
    assert refused(classic, require_pq_signature=True) is ReasonCode.MISSING_SIGNATURE


def test_h3_without_a_stated_restriction_is_refused_at_sealing() -> None:
    with pytest.raises(ValueError, match="H3"):
        sealed(handling=HandlingCode.H3)


def test_message_sealed_to_a_previous_key_opens_during_rotation_overlap() -> None:
    usa = party("USA")
    data = sealed(to=[usa])
    rotated = usa.with_new_encryption_key()
    assert opened(data, at=rotated).body == example_body("info.trafficking_routes")
    retired = rotated.without_encryption_key(usa.current_encryption.public().kid)
    assert refused(data, at=retired) is ReasonCode.DECRYPTION_FAILED


# --- check 1: structure and version -----------------------------------------------------------


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: b"not json at all",
        lambda d: b"[1, 2, 3]",
        lambda d: d[: len(d) // 2],
        lambda d: to_bytes({k: v for k, v in as_json(d).items() if k != "iv"}),
        lambda d: to_bytes({**as_json(d), "extra": 1}),
        lambda d: to_bytes({**as_json(d), "iv": as_json(d)["iv"] + "=="}),
        lambda d: to_bytes({**as_json(d), "iv": b64u(b"short")}),
        lambda d: to_bytes({**as_json(d), "protected": b64u(b"{not json")}),
        lambda d: to_bytes({**as_json(d), "recipients": []}),
        lambda d: with_header(d, msg_id="not-a-uuid"),
        lambda d: with_header(d, created_at="2026-11-24T15:00:00"),  # naive time
    ],
    ids=[
        "not-json",
        "json-array",
        "truncated",
        "missing-field",
        "unknown-field",
        "padded-base64",
        "short-iv",
        "header-not-json",
        "no-stanzas",
        "bad-msg-id",
        "naive-created-at",
    ],
)
def test_malformed_envelope_is_refused_as_malformed(mangle: Callable[[bytes], bytes]) -> None:
    assert refused(mangle(sealed())) is ReasonCode.MALFORMED


def test_unknown_envelope_version_is_refused() -> None:
    data = to_bytes({**as_json(sealed()), "v": 2})
    assert refused(data) is ReasonCode.UNSUPPORTED_VERSION


def test_oversized_envelope_is_refused_before_parsing() -> None:
    data = b" " * (MAX_ENVELOPE_BYTES + 1)
    assert refused(data) is ReasonCode.OVERSIZED


# --- tampering: every header field, ciphertext, stanzas, signatures ---------------------------

HEADER_TAMPERS: list[tuple[str, Any, ReasonCode]] = [
    ("v", 2, ReasonCode.UNSUPPORTED_VERSION),
    ("msg_id", "0193a0b2-7c1e-7a4b-8f00-000000000001", ReasonCode.BAD_SIGNATURE),
    ("kind", "info.concealment_methods", ReasonCode.BAD_SIGNATURE),
    ("sender", "COL", ReasonCode.UNKNOWN_SENDER_KEY),
    ("sender_kid", "0" * 32, ReasonCode.UNKNOWN_SENDER_KEY),
    ("recipients", ["COL"], ReasonCode.MALFORMED),
    ("created_at", "2026-11-24T14:00:00.000Z", ReasonCode.BAD_SIGNATURE),
    ("expires_at", "2027-11-24T14:00:00.000Z", ReasonCode.BAD_SIGNATURE),
    ("handling", "H0", ReasonCode.BAD_SIGNATURE),
    (
        "handling_note",
        "relaxed",
        ReasonCode.MALFORMED,
    ),  # a note without H3 (see test_envelope_strict)
    ("confidential", False, ReasonCode.BAD_SIGNATURE),
    ("case_id", "OTHER-CASE", ReasonCode.BAD_SIGNATURE),
    ("in_reply_to", "0193a0b2-7c1e-7a4b-8f00-000000000002", ReasonCode.BAD_SIGNATURE),
    ("enc", "HPKE-Base-X25519-HKDFSHA256-A128GCM", ReasonCode.UNSUPPORTED_ALGORITHM),
    ("sigs", ["Ed25519", "ML-DSA-65"], ReasonCode.MISSING_SIGNATURE),
]


@pytest.mark.parametrize(
    ("field", "value", "reason"), HEADER_TAMPERS, ids=[t[0] for t in HEADER_TAMPERS]
)
def test_tampered_header_field_is_refused(field: str, value: Any, reason: ReasonCode) -> None:
    data = sealed(to=[party("USA")], confidential=True, case_id="MX-1", expires_at=later(days=1))
    assert refused(with_header(data, **{field: value})) is reason


def test_every_header_field_has_a_tamper_test() -> None:
    from services.core.envelope import ProtectedHeader

    assert {t[0] for t in HEADER_TAMPERS} == set(ProtectedHeader.model_fields)


def test_flipped_ciphertext_byte_is_refused_as_bad_signature() -> None:
    env = as_json(sealed())
    env["ciphertext"] = flip_byte(env["ciphertext"], 5)
    assert refused(to_bytes(env)) is ReasonCode.BAD_SIGNATURE


def test_flipped_iv_byte_is_refused_as_bad_signature() -> None:
    env = as_json(sealed())
    env["iv"] = flip_byte(env["iv"])
    assert refused(to_bytes(env)) is ReasonCode.BAD_SIGNATURE


def test_flipped_recipient_stanza_byte_is_refused_as_bad_signature() -> None:
    env = as_json(sealed())
    env["recipients"][0]["enc"] = flip_byte(env["recipients"][0]["enc"], 100)
    assert refused(to_bytes(env)) is ReasonCode.BAD_SIGNATURE


def test_recipient_stanza_swapped_in_from_another_message_is_refused() -> None:
    env = as_json(sealed())
    other = as_json(sealed())
    env["recipients"] = other["recipients"]
    assert refused(to_bytes(env)) is ReasonCode.BAD_SIGNATURE


def test_stanza_from_another_message_resigned_by_sender_still_fails_to_unwrap() -> None:
    # HPKE info binds msg_id and the header hash: a stanza cannot be reused even by its sender.
    env = as_json(sealed())
    env["recipients"] = as_json(sealed())["recipients"]
    assert refused(to_bytes(resign(env, party("MEX")))) is ReasonCode.DECRYPTION_FAILED


def test_ciphertext_altered_and_resigned_by_sender_fails_to_decrypt() -> None:
    env = as_json(sealed())
    env["ciphertext"] = flip_byte(env["ciphertext"], 3)
    assert refused(to_bytes(resign(env, party("MEX")))) is ReasonCode.DECRYPTION_FAILED


def test_flipped_signature_byte_is_refused_as_bad_signature() -> None:
    env = as_json(sealed())
    env["signatures"][0]["sig"] = flip_byte(env["signatures"][0]["sig"], 7)
    assert refused(to_bytes(env)) is ReasonCode.BAD_SIGNATURE


def test_signature_by_another_party_is_refused_as_bad_signature() -> None:
    env = as_json(sealed())
    forged = as_json(sealed(sender=party("COL")))
    env["signatures"] = forged["signatures"]
    assert refused(to_bytes(env)) is ReasonCode.BAD_SIGNATURE


def test_missing_signature_is_refused() -> None:
    env = as_json(sealed())
    env["signatures"] = []
    assert refused(to_bytes(env)) is ReasonCode.MISSING_SIGNATURE


def test_stripped_post_quantum_co_signature_is_refused() -> None:
    pq_sender = party("MEX", post_quantum=True)
    env = as_json(sealed(sender=pq_sender))
    env["signatures"] = env["signatures"][:1]
    assert refused(to_bytes(env), directory=directory_of(pq_sender)) is ReasonCode.MISSING_SIGNATURE


# --- check 2: the sender key ------------------------------------------------------------------


def test_unknown_sender_key_is_refused() -> None:
    stranger = NodeKeys.generate("MEX")
    assert refused(sealed(sender=stranger)) is ReasonCode.UNKNOWN_SENDER_KEY


def test_sender_key_not_yet_valid_at_created_at_is_refused() -> None:
    directory = InMemoryDirectory().add(party("MEX"), valid_from=later(hours=1))
    assert refused(sealed(), directory=directory) is ReasonCode.SENDER_KEY_NOT_VALID


def test_sender_key_past_its_validity_at_created_at_is_refused() -> None:
    directory = InMemoryDirectory().add(party("MEX"), valid_until=later(hours=-1))
    assert refused(sealed(), directory=directory) is ReasonCode.SENDER_KEY_NOT_VALID


def test_envelope_signed_after_revocation_is_refused() -> None:
    directory = InMemoryDirectory().add(party("MEX"), revoked_at=later(minutes=-10))
    assert refused(sealed(), directory=directory) is ReasonCode.REVOKED_SENDER_KEY


def test_backdated_envelope_stored_by_the_broker_after_revocation_is_refused() -> None:
    directory = InMemoryDirectory().add(party("MEX"), revoked_at=later(minutes=10))
    data = sealed()  # claims NOW, before revocation
    assert opened(data, directory=directory, stored_at=later(minutes=5)).header.sender == "MEX"
    assert refused(data, directory=directory, stored_at=later(minutes=11)) is (
        ReasonCode.REVOKED_SENDER_KEY
    )


# --- checks 4-6: addressing, time, replay -----------------------------------------------------


def test_envelope_for_another_state_is_refused_as_not_a_recipient() -> None:
    data = sealed(to=[party("COL")])
    assert refused(data, at=party("USA")) is ReasonCode.NOT_A_RECIPIENT


def test_expired_envelope_is_refused() -> None:
    data = sealed(expires_at=later(hours=1))
    assert opened(data, now=later(minutes=59)).header.expires_at == later(hours=1)
    assert refused(data, now=later(hours=1)) is ReasonCode.EXPIRED


def test_envelope_dated_beyond_clock_skew_is_refused() -> None:
    data = sealed(now=later(minutes=6))
    assert refused(data, now=NOW) is ReasonCode.FUTURE_DATED
    assert opened(sealed(now=later(minutes=4)), now=NOW).header.sender == "MEX"


def test_replayed_msg_id_is_refused() -> None:
    data = sealed()
    stored: set[str] = set()
    first = opened(data, is_replay=stored.__contains__)
    stored.add(first.header.msg_id)
    assert refused(data, is_replay=stored.__contains__) is ReasonCode.REPLAY


# --- check 8: the body ------------------------------------------------------------------------


def test_body_of_a_kind_the_receiver_does_not_know_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = sealed()
    monkeypatch.delitem(BODY_MODELS, "info.trafficking_routes")
    assert refused(data) is ReasonCode.UNKNOWN_KIND


def test_body_failing_its_schema_is_refused() -> None:
    bad = example_body("info.trafficking_routes").model_copy(update={"schema_version": 99})
    assert refused(sealed(bad)) is ReasonCode.SCHEMA_INVALID


def test_refusal_after_signature_check_names_a_verified_sender() -> None:
    with pytest.raises(EnvelopeError) as info:
        opened(sealed(to=[party("COL")]))
    assert info.value.sender_verified is True
    assert info.value.header is not None and info.value.header.sender == "MEX"
    with pytest.raises(EnvelopeError) as unverified:
        opened(sealed(sender=NodeKeys.generate("MEX")))
    assert unverified.value.sender_verified is False


class _UnheardOf(Body):
    KIND: ClassVar[str] = "info.unheard_of"
    kind: Literal["info.unheard_of"] = "info.unheard_of"


def _with(data: bytes, **kwargs: Any) -> tuple[bytes, dict[str, Any]]:
    return data, kwargs


#: One way to provoke each reason code; the test below fails for a code that has none.
REASON_CASES: dict[ReasonCode, Callable[[], tuple[bytes, dict[str, Any]]]] = {
    ReasonCode.OVERSIZED: lambda: _with(b"{" * (MAX_ENVELOPE_BYTES + 1)),
    ReasonCode.MALFORMED: lambda: _with(b"{}"),
    ReasonCode.UNSUPPORTED_VERSION: lambda: _with(with_header(sealed(), v=2)),
    ReasonCode.UNSUPPORTED_ALGORITHM: lambda: _with(with_header(sealed(), enc="RSA-OAEP")),
    ReasonCode.UNKNOWN_SENDER_KEY: lambda: _with(sealed(sender=NodeKeys.generate("MEX"))),
    ReasonCode.SENDER_KEY_NOT_VALID: lambda: _with(
        sealed(now=KEY_VALID_FROM - timedelta(days=1)), now=KEY_VALID_FROM
    ),
    ReasonCode.REVOKED_SENDER_KEY: lambda: _with(
        sealed(), directory=InMemoryDirectory().add(party("MEX"), revoked_at=NOW)
    ),
    ReasonCode.MISSING_SIGNATURE: lambda: _with(to_bytes({**as_json(sealed()), "signatures": []})),
    ReasonCode.BAD_SIGNATURE: lambda: _with(with_header(sealed(), handling="H0")),
    ReasonCode.NOT_A_RECIPIENT: lambda: _with(sealed(to=[party("COL")])),
    ReasonCode.EXPIRED: lambda: _with(sealed(expires_at=NOW), now=NOW),
    ReasonCode.FUTURE_DATED: lambda: _with(sealed(now=later(hours=1)), now=NOW),
    ReasonCode.REPLAY: lambda: _with(sealed(), is_replay=lambda _msg_id: True),
    ReasonCode.DECRYPTION_FAILED: lambda: _with(
        sealed(), at=party("USA").with_new_encryption_key(keep_previous=False)
    ),
    ReasonCode.UNKNOWN_KIND: lambda: _with(sealed(_UnheardOf())),
    ReasonCode.SCHEMA_INVALID: lambda: _with(
        sealed(example_body("info.trafficking_routes").model_copy(update={"schema_version": 99}))
    ),
}


@pytest.mark.parametrize("reason", sorted(set(ReasonCode) - NODE_REASONS), ids=str)
def test_each_envelope_reason_code_is_produced_by_its_own_failure(reason: ReasonCode) -> None:
    assert reason in REASON_CASES, f"no failure produces {reason}"
    data, kwargs = REASON_CASES[reason]()
    assert refused(data, **kwargs) is reason


def test_opening_uses_the_clock_it_is_given() -> None:
    data = sealed(now=KEY_VALID_FROM, expires_at=KEY_VALID_FROM + timedelta(hours=1))
    result = open_envelope(
        data, keys=party("USA"), directory=directory_of(party("MEX")), now=KEY_VALID_FROM
    )
    assert result.header.created_at == KEY_VALID_FROM
    assert json.loads(result.plaintext)["kind"] == "info.trafficking_routes"


def test_sender_reads_what_it_sent_with_its_own_key_copy() -> None:
    from services.core.envelope import open_sender_copy, seal_message

    mex = party("MEX")
    s = seal_message(
        example_body("info.trafficking_routes"),
        sender=mex,
        recipients=[party("USA").current_encryption.public()],
        handling=HandlingCode.H2,
        now=NOW,
        keep_sender_copy=True,
    )
    assert s.sender_copy is not None and s.header.recipients == ["USA"]
    kid, wrapped = s.sender_copy
    mine = open_sender_copy(s.envelope, kid, wrapped, keys=mex)
    assert mine.body == example_body("info.trafficking_routes")
    # no stanza for MEX travels (a look at the text would also find "MEX" in random base64url)
    assert [r["party"] for r in json.loads(s.envelope)["recipients"]] == ["USA"]
    with pytest.raises(EnvelopeError) as refused:  # the copy is MEX's alone
        open_sender_copy(s.envelope, kid, wrapped, keys=party("USA"))
    assert refused.value.reason is ReasonCode.NOT_A_RECIPIENT
    tampered = with_header(s.envelope, handling="H0")
    with pytest.raises(EnvelopeError) as refused:
        open_sender_copy(tampered, kid, wrapped, keys=mex)
    assert refused.value.reason is ReasonCode.BAD_SIGNATURE

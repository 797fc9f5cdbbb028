"""Vectors for checks 2 to 8 of docs/envelope.md: keys, signatures, time, replay, bodies."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import mldsa
from forge import compact, flip, header_of, resign
from vector_world import BOM, Forger, Sink, World, envelope_json

from schemas import HandlingCode
from schemas.registry import example_body
from services.core.encoding import b64u, unb64u
from services.core.envelope import seal
from services.core.keys import NodeKeys, key_id


def signatures(v: Sink, w: World) -> None:
    """Check 3: declared signatures present and valid, no post-quantum downgrade."""
    f = Forger(w)
    env, pq = envelope_json(w.base), envelope_json(w.receipt)
    bra_header = header_of(pq)
    receipt_body = example_body("protocol.receipt").model_dump_json().encode()
    other_pq = mldsa.MLDSA65PrivateKey.generate()
    ed_only_kid = key_id("sig", w.bra.signing.ed25519.public_key().public_bytes_raw())
    cases: list[tuple[str, str, bytes, str]] = [
        (
            "ciphertext-byte",
            "one ciphertext bit flipped",
            compact(env | {"ciphertext": flip(env["ciphertext"], 5)}),
            "bad_signature",
        ),
        (
            "iv-byte",
            "one IV bit flipped",
            compact(env | {"iv": flip(env["iv"], 0)}),
            "bad_signature",
        ),
        (
            "stanza-byte",
            "one bit of USA's wrapped key flipped",
            compact(
                env
                | {
                    "recipients": [
                        env["recipients"][0] | {"enc": flip(env["recipients"][0]["enc"], 100)}
                    ]
                }
            ),
            "bad_signature",
        ),
        (
            "signature-byte",
            "one signature bit flipped",
            compact(
                env
                | {"signatures": [{"alg": "Ed25519", "sig": flip(env["signatures"][0]["sig"], 3)}]}
            ),
            "bad_signature",
        ),
        (
            "signature-wrong-key",
            "signed by COL's key in a header naming MEX",
            f(signer=w.col),
            "bad_signature",
        ),
        (
            "signature-missing",
            "signatures removed",
            compact(env | {"signatures": []}),
            "missing_signature",
        ),
        (
            "signature-undeclared",
            "an ML-DSA-65 signature the header's sigs does not declare",
            f(algs=("Ed25519", "ML-DSA-65"), mldsa_key=other_pq),
            "missing_signature",
        ),
        (
            "mldsa-signature-byte",
            "one bit of BRA's ML-DSA-65 signature flipped",
            compact(
                pq
                | {
                    "signatures": [
                        pq["signatures"][0],
                        {"alg": "ML-DSA-65", "sig": flip(pq["signatures"][1]["sig"], 7)},
                    ]
                }
            ),
            "bad_signature",
        ),
        (
            "mldsa-stripped",
            "BRA's ML-DSA-65 signature removed; the header still declares it",
            compact(pq | {"signatures": pq["signatures"][:1]}),
            "missing_signature",
        ),
        (
            "sigs-without-ed25519",
            'BRA declares sigs ["ML-DSA-65"] and signs with ML-DSA-65 alone',
            f(
                header=bra_header,
                sigs=["ML-DSA-65"],
                algs=("ML-DSA-65",),
                signer=w.bra,
                body=receipt_body,
            ),
            "missing_signature",
        ),
        (
            "pq-downgrade",
            'BRA, with an ML-DSA-65 key in the directory, sends sigs ["Ed25519"], validly signed',
            f(header=bra_header, sigs=["Ed25519"], signer=w.bra, body=receipt_body),
            "missing_signature",
        ),
        (
            "pq-downgrade-ed25519-kid",
            "BRA's sender_kid computed over its Ed25519 key alone, Ed25519 only",
            f(
                header=bra_header,
                sigs=["Ed25519"],
                sender_kid=ed_only_kid,
                signer=w.bra,
                body=receipt_body,
            ),
            "unknown_sender_key",
        ),
        (
            "mldsa-not-in-directory",
            "MEX declares and adds ML-DSA-65, but its directory key has none",
            f(sigs=["Ed25519", "ML-DSA-65"], algs=("Ed25519", "ML-DSA-65"), mldsa_key=other_pq),
            "bad_signature",
        ),
    ]
    for name, description, data, reason in cases:
        v.refused(name, description, data, reason)
    reversed_sigs = f(
        header=bra_header,
        sigs=["ML-DSA-65", "Ed25519"],
        algs=("ML-DSA-65", "Ed25519"),
        signer=w.bra,
        body=receipt_body,
    )
    v.valid(
        "sigs-any-order",
        'BRA with sigs ["ML-DSA-65","Ed25519"]: the order is free',
        reversed_sigs,
        "USA",
    )
    other = seal(
        example_body("tracing.request"),
        sender=w.mex,
        recipients=[w.usa.current_encryption.public()],
        handling=HandlingCode.H1,
        now=w.created,
    )
    v.refused(
        "stanza-swapped",
        "USA's stanza replaced by the one from another message",
        compact(env | {"recipients": envelope_json(other)["recipients"]}),
        "bad_signature",
    )
    swapped = resign(env | {"recipients": envelope_json(other)["recipients"]}, w.mex.signing)
    v.refused(
        "stanza-swapped-resigned",
        "stanza from another message, re-signed by the sender: the HPKE info binds msg_id",
        compact(swapped),
        "decryption_failed",
    )
    for field, value in (
        ("kind", "tracing.response"),
        ("handling", "H0"),
        ("confidential", True),
        ("created_at", w.iso(w.created - timedelta(seconds=1))),
        ("case_id", "OTHER-1"),
    ):
        changed = header_of(env) | {field: value}
        v.refused(
            f"header-{field.replace('_', '-')}",
            f"header {field} changed after signing",
            compact(env | {"protected": b64u(compact(changed))}),
            "bad_signature",
        )
    dropped = {k: x for k, x in header_of(env).items() if k != "expires_at"}
    v.refused(
        "header-expires-removed",
        "expires_at removed after signing",
        compact(env | {"protected": b64u(compact(dropped))}),
        "bad_signature",
    )
    nulled = header_of(env) | {"expires_at": None}
    v.refused(
        "header-null-member",
        "expires_at set to null (optional members are omitted, never null)",
        compact(env | {"protected": b64u(compact(nulled))}),
        "malformed",
    )
    dup = unb64u(env["protected"]).replace(b'"handling":"H1"', b'"handling":"H1","handling":"H0"')
    v.refused(
        "header-duplicate-member",
        "protected header names handling twice",
        compact(env | {"protected": b64u(dup)}),
        "malformed",
    )


def keys_and_time(v: Sink, w: World) -> None:
    """Checks 2, 4, 5 and 6, and key rotation, at their boundaries."""
    base, mex_kid = w.base, w.mex.signing.public().kid
    expires = datetime.fromisoformat(header_of(envelope_json(base))["expires_at"])
    usa = [w.usa.current_encryption.public()]

    def tracing(sender: NodeKeys, at: datetime, recipients: list[Any] = usa) -> bytes:
        return seal(
            example_body("tracing.request"),
            sender=sender,
            recipients=recipients,
            handling=HandlingCode.H1,
            now=at,
        )

    after = w.rotated + timedelta(seconds=30)
    v.valid(
        "signing-key-rotation-new-key",
        "MEX signs with its new key, valid from the rotation",
        tracing(w.mex_next, after),
        "USA",
    )
    v.valid(
        "signing-key-rotation-valid-from",
        "MEX's new key at exactly its valid_from",
        tracing(w.mex_next, w.rotated),
        "USA",
    )
    v.refused(
        "signing-key-rotation-old-key",
        "MEX's previous key used after its valid_until",
        tracing(w.mex, after),
        "sender_key_not_valid",
    )
    v.refused(
        "valid-until-boundary",
        "created_at equal to the key's valid_until",
        tracing(w.mex, w.rotated),
        "sender_key_not_valid",
    )
    v.refused(
        "sender-key-not-yet-valid",
        "MEX's key valid only from tomorrow",
        base,
        "sender_key_not_valid",
        directory_changes=(
            {"party": "MEX", "kid": mex_kid, "valid_from": w.iso(w.now + timedelta(days=1))},
        ),
    )
    v.refused(
        "revoked-sender-key",
        "MEX's key revoked an hour before created_at",
        base,
        "revoked_sender_key",
        directory_changes=(
            {"party": "MEX", "kid": mex_kid, "revoked_at": w.iso(w.created - timedelta(hours=1))},
        ),
    )
    v.refused(
        "revoked-boundary",
        "MEX's key revoked at exactly created_at",
        base,
        "revoked_sender_key",
        directory_changes=({"party": "MEX", "kid": mex_kid, "revoked_at": w.iso(w.created)},),
    )
    unknown = tracing(w.arg, w.created)
    v.refused(
        "unknown-sender-key",
        "signed by ARG, whose key the directory does not hold",
        unknown,
        "unknown_sender_key",
    )
    previous = tracing(w.mex, w.created, [w.usa_before.current_encryption.public()])
    v.valid(
        "encryption-key-rotation-previous-key",
        "sealed to USA's previous encryption key, which USA still holds",
        previous,
        "USA",
    )
    v.refused(
        "not-a-recipient",
        "opened at COL, which it is not addressed to",
        base,
        "not_a_recipient",
        open_as="COL",
    )
    v.refused(
        "expired",
        "opened 8 days later, after expires_at",
        base,
        "expired",
        now=w.now + timedelta(days=8),
    )
    v.refused("expires-at-boundary", "opened at exactly expires_at", base, "expired", now=expires)
    v.valid(
        "expires-just-before",
        "opened one millisecond before expires_at",
        base,
        "USA",
        now=expires - timedelta(milliseconds=1),
    )
    v.refused(
        "future-dated",
        "created_at 10 minutes ahead of the receiver's clock",
        base,
        "future_dated",
        now=w.created - timedelta(minutes=10),
    )
    v.refused(
        "future-dated-boundary",
        "created_at 5 minutes and 1 ms ahead",
        base,
        "future_dated",
        now=w.created - timedelta(minutes=5, milliseconds=1),
    )
    v.valid(
        "clock-skew-limit",
        "created_at exactly 5 minutes ahead of the receiver's clock: opens",
        base,
        "USA",
        now=w.created - timedelta(minutes=5),
    )
    msg_id = header_of(envelope_json(base))["msg_id"]
    v.refused("replay", "msg_id already stored", base, "replay", seen=(msg_id,))


def bodies(v: Sink, w: World) -> None:
    """Check 8: the body's kind is known; the body validates against the published schema."""
    f = Forger(w)
    tracing = json.loads(f.body)
    receipt = example_body("protocol.receipt").model_dump(mode="json")
    notice = example_body("transfer.notice").model_dump(mode="json")
    as_receipt = {"kind": "protocol.receipt"}
    duplicate_lines = notice | {"items": [notice["items"][0], notice["items"][0]]}
    seizure = tracing["seizure"]
    nested_dup = compact(tracing).replace(b'"country":"MEX"', b'"country":"MEX","country":"COL"', 1)
    no = lambda member: {k: x for k, x in tracing.items() if k != member}  # noqa: E731
    cases: list[tuple[str, str, bytes, str]] = [
        (
            "unknown-kind",
            "a kind the contract does not define",
            seal(
                w.unheard_of,
                sender=w.mex,
                recipients=[w.usa.current_encryption.public()],
                handling=HandlingCode.H0,
                now=w.created,
            ),
            "unknown_kind",
        ),
        (
            "schema-invalid",
            "a tracing request with schema_version 99",
            f(body=compact(tracing | {"schema_version": 99})),
            "schema_invalid",
        ),
        (
            "body-without-kind",
            "a tracing request without kind",
            f(body=compact(no("kind"))),
            "schema_invalid",
        ),
        (
            "body-without-schema-version",
            "a tracing request without schema_version",
            f(body=compact(no("schema_version"))),
            "schema_invalid",
        ),
        (
            "body-schema-version-true",
            "schema_version true",
            f(body=compact(tracing | {"schema_version": True})),
            "schema_invalid",
        ),
        (
            "body-schema-version-float",
            "schema_version 1.0",
            f(body=compact(tracing | {"schema_version": 1.0})),
            "schema_invalid",
        ),
        (
            "body-kind-mismatch",
            "a trafficking-routes body under a tracing.request header",
            f(body=example_body("info.trafficking_routes").model_dump_json().encode()),
            "schema_invalid",
        ),
        (
            "body-duplicate-member",
            "seizure.country named twice in the body",
            f(body=nested_dup),
            "schema_invalid",
        ),
        (
            "body-bom",
            "a byte order mark before the body JSON",
            f(body=BOM.encode() + f.body),
            "schema_invalid",
        ),
        ("body-not-object", "the body is a JSON array", f(body=b"[]"), "schema_invalid"),
        (
            "body-unknown-country",
            "seizure.country XXX, not an ISO 3166-1 alpha-3 code",
            f(body=compact(tracing | {"seizure": seizure | {"country": "XXX"}})),
            "schema_invalid",
        ),
        (
            "body-date-time",
            "a date given as a date-time",
            f(body=compact(tracing | {"seizure": seizure | {"date": "2026-11-20T00:00:00Z"}})),
            "schema_invalid",
        ),
        (
            "receipt-stored-at-integer",
            "a receipt whose stored_at is an integer",
            f(**as_receipt, body=compact(receipt | {"stored_at": 1795532401})),
            "schema_invalid",
        ),
        (
            "receipt-stored-at-space",
            "a receipt whose stored_at has a space for T",
            f(
                **as_receipt,
                body=compact(receipt | {"stored_at": receipt["stored_at"].replace("T", " ")}),
            ),
            "schema_invalid",
        ),
        (
            "receipt-stored-at-naive",
            "a receipt whose stored_at has no timezone",
            f(
                **as_receipt,
                body=compact(receipt | {"stored_at": receipt["stored_at"].rstrip("Z")}),
            ),
            "schema_invalid",
        ),
        (
            "receipt-stored-at-newline",
            "a receipt whose stored_at ends with a line break",
            f(**as_receipt, body=compact(receipt | {"stored_at": receipt["stored_at"] + "\n"})),
            "schema_invalid",
        ),
        (
            "notice-duplicate-lines",
            "a transfer notice with two items on line 1",
            f(kind="transfer.notice", body=compact(duplicate_lines)),
            "schema_invalid",
        ),
    ]
    for name, description, data, reason in cases:
        v.refused(name, description, data, reason)
    v.valid(
        "receipt-forged-control",
        "a receipt built byte by byte, no rule broken: opens",
        f(**as_receipt, body=compact(receipt)),
        "USA",
    )

"""The vectors beyond the five valid messages: one rule of docs/envelope.md broken in each.

Grouped by the check of section 11 that must refuse them. Most are *forged* (``forge.forge``):
correct in every respect but the one rule, so a receiver that skips that rule would open them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import mldsa
from forge import compact, flip, forge, header_of, non_canonical, resign

from schemas import Body, HandlingCode
from schemas.registry import example_body
from services.core.encoding import b64u, unb64u
from services.core.envelope import MAX_ENVELOPE_BYTES, seal
from services.core.keys import NodeKeys, key_id

_BOM = "\ufeff"


class Sink(Protocol):
    def valid(self, name: str, description: str, data: bytes, open_as: str, **kw: Any) -> None: ...
    def refused(self, name: str, description: str, data: bytes, reason: str, **kw: Any) -> None: ...


@dataclass(frozen=True)
class World:
    """The parties, instants and sealed messages every case is built from."""

    mex: NodeKeys
    mex_next: NodeKeys
    usa: NodeKeys
    usa_before: NodeKeys
    col: NodeKeys
    bra: NodeKeys
    arg: NodeKeys
    now: datetime
    created: datetime
    rotated: datetime
    base: bytes
    routes: bytes
    receipt: bytes
    h3: bytes
    unheard_of: Body
    iso: Callable[[datetime], str]


def add_all(v: Sink, w: World) -> None:
    """Every case, in the order of the checks."""
    for group in (outer, encodings, header_types, algorithms, signatures, keys_and_time, bodies):
        group(v, w)


def _env(data: bytes) -> dict[str, Any]:
    return dict(json.loads(data))


class _Forger:
    """Forged variants of the base tracing request (MEX to USA, H1, expiring)."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.header = header_of(_env(w.base))
        self.body = example_body("tracing.request").model_dump_json().encode()

    def __call__(
        self,
        drop: tuple[str, ...] = (),
        *,
        protected: bytes | None = None,
        body: bytes | None = None,
        header: dict[str, Any] | None = None,
        signer: NodeKeys | None = None,
        algs: tuple[str, ...] = ("Ed25519",),
        mldsa_key: mldsa.MLDSA65PrivateKey | None = None,
        to: list[Any] | None = None,
        **changes: Any,
    ) -> bytes:
        fields = {k: v for k, v in (header or self.header).items() if k not in drop} | changes
        return compact(
            forge(
                compact(fields) if protected is None else protected,
                self.body if body is None else body,
                msg_id=self.header["msg_id"],
                signer=(signer or self.w.mex).signing,
                recipients=to or [self.w.usa.current_encryption.public()],
                algs=algs,
                mldsa_key=mldsa_key,
            )
        )


def outer(v: Sink, w: World) -> None:
    """Checks 1a-1c on the outer object: size, strict JSON, integer version."""
    base, env = w.base, _env(w.base)
    text = base.decode()
    limit = MAX_ENVELOPE_BYTES
    v.refused(
        "oversized",
        "the base envelope padded with spaces to 8 MiB + 1 byte",
        base,
        "oversized",
        pad_to=limit + 1,
    )
    v.valid(
        "size-limit",
        "the base envelope padded with spaces to exactly 8 MiB: opens",
        base,
        "USA",
        pad_to=limit,
    )
    v.refused("not-json", "not JSON at all", b"CIFTA?", "malformed")
    v.refused("outer-array", "a JSON array, not an object", b"[1]", "malformed")
    v.refused(
        "outer-bom",
        "a UTF-8 byte order mark before the envelope",
        (_BOM + text).encode(),
        "malformed",
    )
    v.refused(
        "outer-nan",
        "a non-JSON constant in the outer object",
        text.replace('{"v":1,', '{"v":1,"n":NaN,', 1).encode(),
        "malformed",
    )
    v.refused(
        "outer-duplicate-v",
        'outer object {"v":2,"v":1,...}: duplicate member',
        text.replace('{"v":1,', '{"v":2,"v":1,', 1).encode(),
        "malformed",
    )
    v.refused(
        "outer-duplicate-iv",
        "outer object names iv twice",
        text.replace('"iv":', '"iv":"AAAAAAAAAAAAAAAA","iv":', 1).encode(),
        "malformed",
    )
    v.refused(
        "stanza-duplicate-member",
        "a recipient stanza names party twice",
        text.replace('{"party":"USA"', '{"party":"USA","party":"USA"', 1).encode(),
        "malformed",
    )
    v.refused(
        "signature-duplicate-member",
        "a signature object names alg twice",
        text.replace('{"alg":"Ed25519"', '{"alg":"Ed25519","alg":"Ed25519"', 1).encode(),
        "malformed",
    )
    for name, value in (("true", True), ("string", "1"), ("float", 1.0)):
        v.refused(
            f"outer-v-{name}",
            f"outer v is {json.dumps(value)}, not the integer 1",
            compact(env | {"v": value}),
            "malformed",
        )
    v.refused(
        "outer-v-missing",
        "outer object without v",
        compact({k: x for k, x in env.items() if k != "v"}),
        "malformed",
    )
    v.refused("version-2", "envelope version 2", compact(env | {"v": 2}), "unsupported_version")
    v.refused(
        "extra-member", "unknown member in the envelope", compact(env | {"note": "hi"}), "malformed"
    )
    v.refused(
        "missing-member",
        "envelope without iv",
        compact({k: x for k, x in env.items() if k != "iv"}),
        "malformed",
    )


def encodings(v: Sink, w: World) -> None:
    """Check 1e: canonical unpadded base64url everywhere, byte strings of their lengths."""
    env = _env(w.base)
    stanza, sig = env["recipients"][0], env["signatures"][0]
    pq = _env(w.receipt)

    def with_stanza(**changes: Any) -> bytes:
        return compact(env | {"recipients": [stanza | changes]})

    def with_sig(s: str) -> bytes:
        return compact(env | {"signatures": [{"alg": "Ed25519", "sig": s}]})

    cases = [
        (
            "protected-padded",
            "protected with a padding character",
            compact(env | {"protected": env["protected"] + "="}),
        ),
        (
            "ciphertext-padded",
            "ciphertext with a padding character",
            compact(env | {"ciphertext": env["ciphertext"] + "="}),
        ),
        (
            "ciphertext-standard-alphabet",
            "ciphertext with '+' from the standard alphabet",
            compact(env | {"ciphertext": "+" + env["ciphertext"][1:]}),
        ),
        (
            "iv-whitespace",
            "a line break inside iv",
            compact(env | {"iv": env["iv"][:8] + "\n" + env["iv"][8:]}),
        ),
        ("iv-short", "an 8-byte IV", compact(env | {"iv": b64u(bytes(8))})),
        (
            "ciphertext-short",
            "a ciphertext shorter than the 16-byte tag",
            compact(env | {"ciphertext": b64u(bytes(15))}),
        ),
        (
            "stanza-non-canonical",
            "wrapped key whose last character has a non-zero unused bit",
            with_stanza(enc=non_canonical(stanza["enc"])),
        ),
        (
            "stanza-short",
            "a 1167-byte wrapped key",
            with_stanza(enc=b64u(unb64u(stanza["enc"])[:-1])),
        ),
        (
            "stanza-kid-uppercase",
            "stanza kid in uppercase hex",
            with_stanza(kid=stanza["kid"].upper()),
        ),
        (
            "stanza-without-kid",
            "stanza without kid",
            compact(env | {"recipients": [{"party": "USA", "enc": stanza["enc"]}]}),
        ),
        (
            "signature-non-canonical",
            "Ed25519 signature whose last character has a non-zero unused bit",
            with_sig(non_canonical(sig["sig"])),
        ),
        ("signature-padded", "Ed25519 signature with padding", with_sig(sig["sig"] + "==")),
        ("signature-short", "a 63-byte Ed25519 signature", with_sig(b64u(unb64u(sig["sig"])[:-1]))),
        (
            "signature-long",
            "a 65-byte Ed25519 signature",
            with_sig(b64u(unb64u(sig["sig"]) + b"\x00")),
        ),
        (
            "mldsa-signature-short",
            "a 3308-byte ML-DSA-65 signature",
            compact(
                pq
                | {
                    "signatures": [
                        pq["signatures"][0],
                        {"alg": "ML-DSA-65", "sig": b64u(unb64u(pq["signatures"][1]["sig"])[:-1])},
                    ]
                }
            ),
        ),
        (
            "signature-alg-twice",
            "two Ed25519 signatures",
            compact(env | {"signatures": [sig, sig]}),
        ),
        (
            "stanza-order",
            "stanzas in another order than the header's recipients",
            compact(_env(w.routes) | {"recipients": _env(w.routes)["recipients"][::-1]}),
        ),
    ]
    for name, description, data in cases:
        v.refused(name, description, data, "malformed")


def header_types(v: Sink, w: World) -> None:
    """Checks 1b-1e on the header: strict JSON, no coercion, one timestamp form, H3 rules."""
    f = _Forger(w)
    h = f.header
    v.valid(
        "forged-control",
        "built byte by byte like the forged vectors, no rule broken: opens",
        f(),
        "USA",
    )
    refusals: list[tuple[str, str, bytes, str]] = [
        (
            "header-bom",
            "a byte order mark before the header JSON",
            f(protected=_BOM.encode() + compact(h)),
            "malformed",
        ),
        ("header-not-object", "the header is a JSON array", f(protected=b"[1]"), "malformed"),
        ("header-v-true", "header v is true", f(v=True), "malformed"),
        ("header-v-float", "header v is 1.0", f(v=1.0), "malformed"),
        ("header-v-string", 'header v is "1"', f(v="1"), "malformed"),
        ("header-v-missing", "header without v", f(("v",)), "malformed"),
        ("header-v-2", "header v is 2", f(v=2), "unsupported_version"),
        ("header-extra-member", "an unknown header member", f(note="hi"), "malformed"),
        (
            "header-duplicate-member-forged",
            "handling named twice (H1 then H0), signed",
            f(protected=compact(h).replace(b'"handling":"H1"', b'"handling":"H1","handling":"H0"')),
            "malformed",
        ),
        ("enc-missing", "header without enc", f(("enc",)), "malformed"),
        (
            "sigs-duplicate",
            'sigs ["Ed25519","Ed25519"]',
            f(sigs=["Ed25519", "Ed25519"]),
            "malformed",
        ),
        ("sigs-empty", "sigs []", f(sigs=[]), "malformed"),
        ("h3-without-note", "handling H3 without handling_note", f(handling="H3"), "malformed"),
        (
            "h3-empty-note",
            "handling H3 with an empty handling_note",
            f(handling="H3", handling_note=""),
            "malformed",
        ),
        (
            "note-with-h1",
            "handling_note with handling H1",
            f(handling_note="not for customs"),
            "malformed",
        ),
        ("handling-lowercase", 'handling "h1"', f(handling="h1"), "malformed"),
        ("recipients-string", 'recipients "USA", not an array', f(recipients="USA"), "malformed"),
        ("msg-id-uppercase", "msg_id in uppercase", f(msg_id=h["msg_id"].upper()), "malformed"),
        ("sender-not-a-party", "sender ZZZ, not an ISO 3166-1 code", f(sender="ZZZ"), "malformed"),
        (
            "recipient-not-a-party",
            "recipients USA and XXA (not an ISO 3166-1 code)",
            f(
                recipients=["USA", "XXA"],
                to=[
                    w.usa.current_encryption.public(),
                    replace(w.col.current_encryption.public(), party="XXA"),
                ],
            ),
            "malformed",
        ),
        (
            "recipient-duplicate",
            "recipients USA twice, with two stanzas",
            f(recipients=["USA", "USA"], to=[w.usa.current_encryption.public()] * 2),
            "malformed",
        ),
    ]
    for value in (1, 0, "true", "yes", "off"):
        refusals.append(
            (
                f"confidential-{json.dumps(value).strip(chr(34))}",
                f"confidential is {json.dumps(value)}",
                f(confidential=value),
                "malformed",
            )
        )
    created = w.created
    seconds = int(created.timestamp())
    for name, value in (
        ("seconds", seconds),
        ("milliseconds", seconds * 1000),
        ("space", w.iso(created).replace("T", " ")),
        ("offset-compact", (created + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0100")),
        ("offset", (created + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+01:00")),
        ("no-fraction", created.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("microseconds", created.strftime("%Y-%m-%dT%H:%M:%S.000000Z")),
        ("lowercase", w.iso(created).replace("T", "t").replace("Z", "z")),
        ("leap-second", "2026-06-30T23:59:60.000Z"),
        ("february-30", "2026-02-30T10:00:00.000Z"),
    ):
        refusals.append(
            (
                f"created-at-{name}",
                f"created_at {json.dumps(value)}",
                f(created_at=value),
                "malformed",
            )
        )
    refusals.append(
        (
            "expires-at-offset",
            "expires_at with +00:00 instead of Z",
            f(expires_at=h["expires_at"].replace("Z", "+00:00")),
            "malformed",
        )
    )
    for name, description, data, reason in refusals:
        v.refused(name, description, data, reason)


def algorithms(v: Sink, w: World) -> None:
    """Check 1d: every algorithm named is one version 1 defines."""
    f = _Forger(w)
    env = _env(w.base)
    v.refused(
        "enc-unknown",
        "header names another key-wrap algorithm",
        f(enc="HPKE-Base-X25519-HKDFSHA256-A256GCM"),
        "unsupported_algorithm",
    )
    v.refused(
        "sigs-unknown",
        'sigs ["Ed25519","SLH-DSA-SHA2-128s"]',
        f(sigs=["Ed25519", "SLH-DSA-SHA2-128s"]),
        "unsupported_algorithm",
    )
    unknown = {"alg": "RSA-PSS", "sig": env["signatures"][0]["sig"]}
    v.refused(
        "signature-alg-unknown",
        "a signature object with alg RSA-PSS",
        compact(env | {"signatures": [*env["signatures"], unknown]}),
        "unsupported_algorithm",
    )


def signatures(v: Sink, w: World) -> None:
    """Check 3: declared signatures present and valid, no post-quantum downgrade."""
    f = _Forger(w)
    env, pq = _env(w.base), _env(w.receipt)
    bra_header = header_of(pq)
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
            "pq-downgrade",
            'BRA, with an ML-DSA-65 key in the directory, sends sigs ["Ed25519"], validly signed',
            f(header=bra_header, sigs=["Ed25519"], signer=w.bra),
            "missing_signature",
        ),
        (
            "pq-downgrade-ed25519-kid",
            "BRA's sender_kid computed over its Ed25519 key alone, Ed25519 only",
            f(header=bra_header, sigs=["Ed25519"], sender_kid=ed_only_kid, signer=w.bra),
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
        compact(env | {"recipients": _env(other)["recipients"]}),
        "bad_signature",
    )
    swapped = resign(env | {"recipients": _env(other)["recipients"]}, w.mex.signing)
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
    expires = datetime.fromisoformat(header_of(_env(base))["expires_at"])
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
    msg_id = header_of(_env(base))["msg_id"]
    v.refused("replay", "msg_id already stored", base, "replay", seen=(msg_id,))


def bodies(v: Sink, w: World) -> None:
    """Check 8: the body's kind is known; the body validates against the published schema."""
    f = _Forger(w)
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
            f(body=_BOM.encode() + f.body),
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

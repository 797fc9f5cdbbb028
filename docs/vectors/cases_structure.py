"""Vectors for check 1 of docs/envelope.md: size, JSON, version, algorithms, every member."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

from forge import compact, non_canonical
from vector_world import BOM, Forger, Sink, World, envelope_json

from services.core.encoding import b64u, unb64u
from services.core.envelope import MAX_ENVELOPE_BYTES


def outer(v: Sink, w: World) -> None:
    """Checks 1a-1c on the outer object: size, strict JSON, integer version."""
    base, env = w.base, envelope_json(w.base)
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
        (BOM + text).encode(),
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
    env = envelope_json(w.base)
    stanza, sig = env["recipients"][0], env["signatures"][0]
    pq = envelope_json(w.receipt)

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
            compact(
                envelope_json(w.routes)
                | {"recipients": envelope_json(w.routes)["recipients"][::-1]}
            ),
        ),
    ]
    for name, description, data in cases:
        v.refused(name, description, data, "malformed")


def header_types(v: Sink, w: World) -> None:
    """Checks 1b-1e on the header: strict JSON, no coercion, one timestamp form, H3 rules."""
    f = Forger(w)
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
            f(protected=BOM.encode() + compact(h)),
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
        (
            "msg-id-trailing-newline",
            "msg_id followed by a line break ($ matches only at the very end)",
            f(msg_id=h["msg_id"] + "\n"),
            "malformed",
        ),
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
    f = Forger(w)
    env = envelope_json(w.base)
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

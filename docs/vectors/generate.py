"""Generate ``docs/vectors/envelope-v1.json``: keys, sealed envelopes and what opening must give.

    make vectors

Sealing is randomized (HPKE encapsulation, the content key, the IV), so vectors are checked by
*opening*: an implementation loads the keys and the directory from the file, opens each envelope
as ``open_as`` at ``now`` with ``seen_msg_ids`` already stored, and must get either the expected
header and body (with the intermediate values, to debug each step) or the expected reason code.
Regenerating produces different bytes with the same meaning; the checked-in file is the reference.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from schemas import Body, HandlingCode  # noqa: E402
from schemas.registry import example_body  # noqa: E402
from services.core.encoding import b64u, unb64u  # noqa: E402
from services.core.envelope import _SUITE, seal, signature_input, wrap_info  # noqa: E402
from services.core.keys import NodeKeys  # noqa: E402

OUT = Path(__file__).with_name("envelope-v1.json")
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
CREATED = NOW - timedelta(minutes=2)
VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


example = example_body


class _UnheardOf(Body):
    """A well-formed body of a kind no contract defines (for the unknown_kind vector)."""

    KIND: ClassVar[str] = "info.unheard_of"


def env_json(data: bytes) -> dict[str, Any]:
    return dict(json.loads(data))


def dump(env: dict[str, Any]) -> bytes:
    return json.dumps(env, separators=(",", ":")).encode()


def header_of(env: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(unb64u(env["protected"])))


def set_header(env: dict[str, Any], *drop: str, **changes: Any) -> dict[str, Any]:
    header = {k: v for k, v in header_of(env).items() if k not in drop} | changes
    env = dict(env)
    env["protected"] = b64u(json.dumps(header, separators=(",", ":")).encode())
    return env


def flip(b64: str, index: int) -> str:
    raw = bytearray(unb64u(b64))
    raw[index] ^= 0x01
    return b64u(bytes(raw))


def resign(env: dict[str, Any], sender: NodeKeys) -> dict[str, Any]:
    stanzas = [(s["party"], s["kid"], unb64u(s["enc"])) for s in env["recipients"]]
    to_sign = signature_input(
        unb64u(env["protected"]), unb64u(env["iv"]), unb64u(env["ciphertext"]), stanzas
    )
    env = dict(env)
    env["signatures"] = [{"alg": "Ed25519", "sig": b64u(sender.signing.ed25519.sign(to_sign))}]
    return env


def intermediates(data: bytes, me: NodeKeys) -> dict[str, Any]:
    """What an implementation computes on the way to the plaintext, to debug step by step."""
    env = env_json(data)
    protected = unb64u(env["protected"])
    header = json.loads(protected)
    stanzas = [(s["party"], s["kid"], unb64u(s["enc"])) for s in env["recipients"]]
    to_sign = signature_input(protected, unb64u(env["iv"]), unb64u(env["ciphertext"]), stanzas)
    _, kid, wrapped = next(s for s in stanzas if s[0] == me.party)
    info = wrap_info(header["msg_id"], me.party, kid, protected)
    key = me.encryption_key(kid)
    assert key is not None
    cek = _SUITE.decrypt(wrapped, key.hpke_key(), info=info)
    plaintext = AESGCM(cek).decrypt(unb64u(env["iv"]), unb64u(env["ciphertext"]), protected)
    return {
        "envelope_sha256": hashlib.sha256(data).hexdigest(),
        "signature_input_sha256": hashlib.sha256(to_sign).hexdigest(),
        "signature_input_length": len(to_sign),
        "wrap_info_hex": info.hex(),
        "content_key_hex": cek.hex(),
        "plaintext": plaintext.decode(),
    }


def main() -> int:
    mex, usa, col = NodeKeys.generate("MEX"), NodeKeys.generate("USA"), NodeKeys.generate("COL")
    bra = NodeKeys.generate("BRA", post_quantum_signature=True)
    arg = NodeKeys.generate("ARG")  # not in the directory
    parties = {p.party: p for p in (mex, usa, col, bra, arg)}
    directory = [
        {
            "party": p.party,
            "kid": p.signing.public().kid,
            "public": p.signing.public().to_json(),
            "valid_from": iso(VALID_FROM),
            "valid_until": None,
            "revoked_at": None,
        }
        for p in (mex, usa, col, bra)
    ]

    def to(*rs: NodeKeys) -> list[Any]:
        return [r.current_encryption.public() for r in rs]

    routes = seal(
        example("info.trafficking_routes"),
        sender=mex,
        recipients=to(usa, col),
        handling=HandlingCode.H2,
        confidential=True,
        case_id="MEX-FGR-2026-0412",
        now=CREATED,
    )
    base = seal(
        example("tracing.request"),
        sender=mex,
        recipients=to(usa),
        handling=HandlingCode.H1,
        case_id="FGR/SIN/2026/1187",
        expires_at=NOW + timedelta(days=7),
        now=CREATED,
    )
    other = seal(
        example("tracing.request"),
        sender=mex,
        recipients=to(usa),
        handling=HandlingCode.H1,
        now=CREATED,
    )
    base_env, msg_id = env_json(base), header_of(env_json(base))["msg_id"]
    receipt = seal(
        example("protocol.receipt"),
        sender=bra,
        recipients=to(usa),
        handling=HandlingCode.H0,
        in_reply_to=msg_id,
        now=CREATED,
    )
    h3 = seal(
        example("delivery.proposal"),
        sender=usa,
        recipients=to(mex),
        handling=HandlingCode.H3,
        handling_note="Not to be shared with customs brokers",
        case_id="CD-MEX-2026-019",
        now=CREATED,
    )

    vectors: list[dict[str, Any]] = []

    def valid(name: str, description: str, data: bytes, open_as: NodeKeys) -> None:
        env = env_json(data)
        plaintext_info = intermediates(data, open_as)
        vectors.append(
            {
                "name": name,
                "description": description,
                "envelope": data.decode(),
                "open_as": open_as.party,
                "now": iso(NOW),
                "expect": {
                    "header": header_of(env),
                    "body": json.loads(plaintext_info["plaintext"]),
                    **plaintext_info,
                },
            }
        )

    def refused(
        name: str,
        description: str,
        data: bytes,
        reason: str,
        *,
        open_as: str = "USA",
        now: datetime = NOW,
        seen: tuple[str, ...] = (),
        directory_changes: tuple[dict[str, Any], ...] = (),
    ) -> None:
        vectors.append(
            {
                "name": name,
                "description": description,
                "envelope": data.decode("utf-8", errors="strict"),
                "open_as": open_as,
                "now": iso(now),
                "seen_msg_ids": list(seen),
                "directory_changes": list(directory_changes),
                "expect": {"reason": reason},
            }
        )

    valid(
        "routes-usa",
        "XIII.1.c report, MEX to USA and COL, H2, confidential; opened at USA",
        routes,
        usa,
    )
    valid("routes-col", "the same envelope opened at COL", routes, col)
    valid("tracing-expiring", "tracing request MEX to USA, H1, expires in 7 days", base, usa)
    valid("receipt-pq", "delivery receipt BRA to USA with an ML-DSA-65 co-signature", receipt, usa)
    valid("proposal-h3", "controlled-delivery proposal USA to MEX, H3 with its note", h3, mex)

    m = lambda mutate: dump(mutate(dict(base_env)))  # noqa: E731
    tamper: list[tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]], str]] = [
        (
            "header-kind",
            "header kind changed after signing",
            lambda e: set_header(e, kind="tracing.response"),
            "bad_signature",
        ),
        (
            "header-handling",
            "handling code lowered from H1 to H0",
            lambda e: set_header(e, handling="H0"),
            "bad_signature",
        ),
        (
            "header-confidential",
            "confidential flag flipped",
            lambda e: set_header(e, confidential=True),
            "bad_signature",
        ),
        (
            "header-created-at",
            "created_at moved",
            lambda e: set_header(e, created_at=iso(CREATED - timedelta(seconds=1))),
            "bad_signature",
        ),
        (
            "header-case-id",
            "case_id added",
            lambda e: set_header(e, case_id="OTHER-1"),
            "bad_signature",
        ),
        (
            "header-expires-removed",
            "expires_at removed",
            lambda e: set_header(e, "expires_at"),
            "bad_signature",
        ),
        (
            "header-null-member",
            "expires_at set to null (optional members are omitted, never null)",
            lambda e: set_header(e, expires_at=None),
            "malformed",
        ),
        (
            "ciphertext-byte",
            "one ciphertext bit flipped",
            lambda e: e | {"ciphertext": flip(e["ciphertext"], 5)},
            "bad_signature",
        ),
        (
            "iv-byte",
            "one IV bit flipped",
            lambda e: e | {"iv": flip(e["iv"], 0)},
            "bad_signature",
        ),
        (
            "stanza-byte",
            "one bit of USA's wrapped key flipped",
            lambda e: (
                e
                | {
                    "recipients": [
                        e["recipients"][0] | {"enc": flip(e["recipients"][0]["enc"], 100)}
                    ]
                }
            ),
            "bad_signature",
        ),
        (
            "stanza-swapped",
            "USA's stanza replaced by the one from another message",
            lambda e: e | {"recipients": env_json(other)["recipients"]},
            "bad_signature",
        ),
        (
            "stanza-swapped-resigned",
            "stanza from another message, re-signed by the sender: the HPKE info binds msg_id",
            lambda e: resign(e | {"recipients": env_json(other)["recipients"]}, mex),
            "decryption_failed",
        ),
        (
            "signature-byte",
            "one signature bit flipped",
            lambda e: (
                e | {"signatures": [{"alg": "Ed25519", "sig": flip(e["signatures"][0]["sig"], 3)}]}
            ),
            "bad_signature",
        ),
        (
            "signature-missing",
            "signatures removed",
            lambda e: e | {"signatures": []},
            "missing_signature",
        ),
        ("version-2", "envelope version 2", lambda e: e | {"v": 2}, "unsupported_version"),
        (
            "enc-unknown",
            "header names another key-wrap algorithm",
            lambda e: set_header(e, enc="HPKE-Base-X25519-HKDFSHA256-A256GCM"),
            "unsupported_algorithm",
        ),
        (
            "extra-member",
            "unknown member in the envelope",
            lambda e: e | {"note": "hi"},
            "malformed",
        ),
    ]
    for name, description, mutate, reason in tamper:
        refused(name, description, m(mutate), reason)

    dup = unb64u(base_env["protected"]).replace(
        b'"handling":"H1"', b'"handling":"H1","handling":"H0"'
    )
    refused(
        "header-duplicate-member",
        "protected header names handling twice",
        dump(base_env | {"protected": b64u(dup)}),
        "malformed",
    )
    refused("not-json", "not JSON at all", b"CIFTA?", "malformed")
    refused(
        "not-a-recipient",
        "opened at COL, which it is not addressed to",
        base,
        "not_a_recipient",
        open_as="COL",
    )
    refused(
        "expired",
        "opened 8 days later, after expires_at",
        base,
        "expired",
        now=NOW + timedelta(days=8),
    )
    refused(
        "future-dated",
        "created_at 10 minutes ahead of the receiver's clock",
        base,
        "future_dated",
        now=CREATED - timedelta(minutes=10),
    )
    refused("replay", "msg_id already stored", base, "replay", seen=(msg_id,))
    refused(
        "unknown-sender-key",
        "signed by ARG, whose key the directory does not hold",
        seal(
            example("tracing.request"),
            sender=arg,
            recipients=to(usa),
            handling=HandlingCode.H1,
            now=CREATED,
        ),
        "unknown_sender_key",
    )
    mex_kid = mex.signing.public().kid
    refused(
        "revoked-sender-key",
        "MEX's key revoked an hour before created_at",
        base,
        "revoked_sender_key",
        directory_changes=(
            {"party": "MEX", "kid": mex_kid, "revoked_at": iso(CREATED - timedelta(hours=1))},
        ),
    )
    refused(
        "sender-key-not-yet-valid",
        "MEX's key valid only from tomorrow",
        base,
        "sender_key_not_valid",
        directory_changes=(
            {"party": "MEX", "kid": mex_kid, "valid_from": iso(NOW + timedelta(days=1))},
        ),
    )
    refused(
        "unknown-kind",
        "a kind the contract does not define",
        seal(_UnheardOf(), sender=mex, recipients=to(usa), handling=HandlingCode.H0, now=CREATED),
        "unknown_kind",
    )
    bad_body = example("tracing.request").model_copy(update={"schema_version": 99})
    refused(
        "schema-invalid",
        "a tracing request with schema_version 99",
        seal(bad_body, sender=mex, recipients=to(usa), handling=HandlingCode.H1, now=CREATED),
        "schema_invalid",
    )

    doc = {
        "format": "cifta-exchange-envelope-vectors",
        "envelope_version": 1,
        "generated_at": iso(datetime.now(UTC)),
        "how_to_use": __doc__.strip().splitlines()[2:],
        "keys": {p: k.private_json() for p, k in parties.items()},
        "public_keys": {p: k.public_bundle() for p, k in parties.items()},
        "directory": directory,
        "vectors": vectors,
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(vectors)} vectors to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

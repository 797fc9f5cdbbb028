"""A second implementation of opening an envelope, written from docs/envelope.md alone.

What an agency writing its own receiver would do: the standard library's JSON, the primitives
(Ed25519, ML-DSA-65, HPKE, AES-GCM), the published JSON Schemas in ``schemas/json/`` validated
with a generic JSON Schema validator, and nothing from ``services/`` or the ``schemas`` package.
``open_from_spec`` returns the header, body and intermediate values, or raises ``Refused`` with
the reason code section 11 gives for the first failed check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"
INDEX = json.loads((SCHEMAS / "index.json").read_text(encoding="utf-8"))
PARTIES = frozenset(INDEX["party_codes"])
ENC = "HPKE-Base-MLKEM768X25519-HKDFSHA256-A256GCM"
SIG_LEN = {"Ed25519": 64, "ML-DSA-65": 3309}
MSG_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
KID = re.compile(r"[0-9a-f]{32}")
KIND = re.compile(r"[a-z_]+\.[a-z_]+")
CASE_ID = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
B64U = re.compile(r"[A-Za-z0-9_-]*")
REQUIRED = {"v", "msg_id", "kind", "sender", "sender_kid", "recipients", "created_at", "handling",
            "confidential", "enc", "sigs"}  # fmt: skip
OPTIONAL = {"expires_at", "handling_note", "case_id", "in_reply_to"}


class Refused(Exception):
    def __init__(self, reason: str, why: str = "") -> None:
        super().__init__(f"{reason}: {why}")
        self.reason = reason


def _dup(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member")
    return dict(pairs)


def _const(name: str) -> Any:
    raise ValueError(name)


def strict_json(data: bytes, reason: str) -> Any:
    """Section 3: RFC 8259 JSON, UTF-8, no BOM; section 4/5: no member name twice."""
    if data[:3] == b"\xef\xbb\xbf":
        raise Refused(reason, "BOM")
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_dup, parse_constant=_const)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise Refused(reason, str(exc)) from None


def b64(text: Any, length: int | None = None, minimum: int = 0) -> bytes:
    """Section 3: unpadded base64url, and its only encoding (re-encoding gives the same text)."""
    if not isinstance(text, str) or not B64U.fullmatch(text) or len(text) % 4 == 1:
        raise Refused("malformed", "base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
        raise Refused("malformed", "non-canonical base64url")
    if (length is not None and len(raw) != length) or len(raw) < minimum:
        raise Refused("malformed", "length")
    return raw


def kid_of(purpose: str, raw: bytes) -> str:
    return hashlib.sha256(b"cifta-kid-v1\x00" + purpose.encode() + b"\x00" + raw).hexdigest()[:32]


def lp(data: bytes) -> bytes:
    return struct.pack(">Q", len(data)) + data


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _header_time(value: Any) -> datetime:
    if not isinstance(value, str) or not TIME.fullmatch(value):
        raise Refused("malformed", "timestamp form")
    try:
        return when(value)
    except ValueError:
        raise Refused("malformed", "timestamp out of range") from None


def _check(ok: bool, why: str) -> None:
    if not ok:
        raise Refused("malformed", why)


@dataclass
class Opening:
    """What a receiver knows: its party and private keys, the directory, its clock, its store."""

    me: str
    keys: dict[str, Any]  # the private key file (section 9)
    directory: list[dict[str, Any]]
    now: datetime
    seen: set[str] = field(default_factory=set)


def open_from_spec(data: bytes, r: Opening) -> dict[str, Any]:
    """Section 11, in order."""
    if len(data) > 8 * 1024 * 1024:
        raise Refused("oversized")
    outer = _versioned(data)
    protected = b64(outer.get("protected"))
    h = _versioned(protected)
    _algorithms(outer, h)
    _check_header(h)
    iv, ct, stanzas, sigs = _check_outer(outer, h)
    to_sign = (
        b"CIFTA-Exchange envelope v1 signature\x00" + lp(protected) + lp(iv) + lp(ct)
        + struct.pack(">Q", len(stanzas))
        + b"".join(lp(p.encode()) + lp(k.encode()) + lp(w) for p, k, w in stanzas)
    )  # fmt: skip
    _check_signatures(h, sigs, to_sign, r)
    created = _header_time(h["created_at"])
    if r.me not in h["recipients"]:
        raise Refused("not_a_recipient")
    if "expires_at" in h and r.now >= _header_time(h["expires_at"]):
        raise Refused("expired")
    if created > r.now + timedelta(minutes=5):
        raise Refused("future_dated")
    if h["msg_id"] in r.seen:
        raise Refused("replay")
    _, kid, wrapped = next(s for s in stanzas if s[0] == r.me)
    info = (
        b"CIFTA-Exchange envelope v1 key wrap\x00" + lp(h["msg_id"].encode()) + lp(r.me.encode())
        + lp(kid.encode()) + hashlib.sha256(protected).digest()
    )  # fmt: skip
    cek, plaintext = _decrypt(r.keys, kid, wrapped, info, iv, ct, protected)
    body = _check_body(h["kind"], plaintext)
    return {"header": h, "body": body, "plaintext": plaintext.decode(), "signature_input": to_sign,
            "wrap_info_hex": info.hex(), "content_key_hex": cek.hex()}  # fmt: skip


def _versioned(data: bytes) -> dict[str, Any]:
    """Checks 1b/1c: a strict JSON object with the JSON integer 1 as ``v``."""
    obj = strict_json(data, "malformed")
    if not isinstance(obj, dict) or type(obj.get("v")) is not int:
        raise Refused("malformed", "no integer v")
    if obj["v"] != 1:
        raise Refused("unsupported_version")
    return obj


def _algorithms(outer: dict[str, Any], h: dict[str, Any]) -> None:
    """Check 1d."""
    if isinstance(h.get("enc"), str) and h["enc"] != ENC:
        raise Refused("unsupported_algorithm")
    names = list(h["sigs"]) if isinstance(h.get("sigs"), list) else []
    if isinstance(outer.get("signatures"), list):
        names += [s.get("alg") for s in outer["signatures"] if isinstance(s, dict)]
    if any(isinstance(n, str) and n not in SIG_LEN for n in names):
        raise Refused("unsupported_algorithm")


def _check_header(h: dict[str, Any]) -> None:
    """Check 1e on the header (section 5)."""
    _check(REQUIRED <= set(h) <= REQUIRED | OPTIONAL, "members")
    _check(None not in h.values(), "null")
    text = lambda k: isinstance(h[k], str)  # noqa: E731
    _check(text("msg_id") and bool(MSG_ID.fullmatch(h["msg_id"])), "msg_id")
    _check(text("kind") and bool(KIND.fullmatch(h["kind"])) and len(h["kind"]) <= 64, "kind")
    _check(text("sender") and h["sender"] in PARTIES, "sender")
    _check(text("sender_kid") and bool(KID.fullmatch(h["sender_kid"])), "sender_kid")
    rs = h["recipients"]
    _check(isinstance(rs, list) and 1 <= len(rs) <= 64, "recipients")
    _check(
        all(isinstance(p, str) and p in PARTIES for p in rs) and len(set(rs)) == len(rs),
        "recipients",
    )
    _header_time(h["created_at"])
    if "expires_at" in h:
        _header_time(h["expires_at"])
    _check(h["handling"] in ("H0", "H1", "H2", "H3"), "handling")
    note = h.get("handling_note")
    _check((h["handling"] == "H3") == (note is not None), "handling_note exactly with H3")
    _check(note is None or (isinstance(note, str) and 1 <= len(note) <= 500), "handling_note")
    _check(type(h["confidential"]) is bool, "confidential")
    _check(
        "case_id" not in h or (text("case_id") and bool(CASE_ID.fullmatch(h["case_id"]))), "case_id"
    )
    _check(
        "in_reply_to" not in h
        or (text("in_reply_to") and bool(MSG_ID.fullmatch(h["in_reply_to"]))),
        "in_reply_to",
    )
    _check(h["enc"] == ENC, "enc")
    sigs = h["sigs"]
    _check(isinstance(sigs, list) and 1 <= len(sigs) <= 2, "sigs")
    _check(all(isinstance(a, str) for a in sigs) and len(set(sigs)) == len(sigs), "sigs distinct")


def _check_outer(
    outer: dict[str, Any], h: dict[str, Any]
) -> tuple[bytes, bytes, list[Any], dict[str, bytes]]:
    """Check 1e on the envelope object (section 4)."""
    _check(
        set(outer) == {"v", "protected", "iv", "ciphertext", "recipients", "signatures"}, "members"
    )
    iv, ct = b64(outer["iv"], 12), b64(outer["ciphertext"], minimum=16)
    stanzas = outer["recipients"]
    _check(isinstance(stanzas, list) and 1 <= len(stanzas) <= 64, "stanzas")
    decoded = []
    for s in stanzas:
        _check(isinstance(s, dict) and set(s) == {"party", "kid", "enc"}, "stanza members")
        _check(isinstance(s["kid"], str) and bool(KID.fullmatch(s["kid"])), "stanza kid")
        _check(isinstance(s["party"], str) and s["party"] in PARTIES, "stanza party")
        decoded.append((s["party"], s["kid"], b64(s["enc"], 1168)))
    _check([p for p, _, _ in decoded] == h["recipients"], "stanzas follow recipients")
    signatures = outer["signatures"]
    _check(isinstance(signatures, list) and len(signatures) <= 2, "signatures")
    sigs: dict[str, bytes] = {}
    for s in signatures:
        _check(
            isinstance(s, dict) and set(s) == {"alg", "sig"} and s["alg"] in SIG_LEN, "signature"
        )
        _check(s["alg"] not in sigs, "algorithm twice")
        sigs[s["alg"]] = b64(s["sig"], SIG_LEN[s["alg"]])
    return iv, ct, decoded, sigs


def _check_signatures(
    h: dict[str, Any], sigs: dict[str, bytes], to_sign: bytes, r: Opening
) -> None:
    """Checks 2 and 3."""
    record = next(
        (d for d in r.directory if (d["party"], d["kid"]) == (h["sender"], h["sender_kid"])), None
    )
    if record is None:
        raise Refused("unknown_sender_key")
    pub = record["public"]
    ed_raw = b64(pub["ed25519"])
    pq_raw = b64(pub["mldsa65"]) if "mldsa65" in pub else None
    assert kid_of("sig", ed_raw + (pq_raw or b"")) == record["kid"], "section 9: kid over both keys"
    created = _header_time(h["created_at"])
    until = record.get("valid_until")
    if created < when(record["valid_from"]) or (until is not None and created >= when(until)):
        raise Refused("sender_key_not_valid")
    if record.get("revoked_at") is not None and created >= when(record["revoked_at"]):
        raise Refused("revoked_sender_key")
    declared = set(h["sigs"])
    if "Ed25519" not in declared or (pq_raw is not None and "ML-DSA-65" not in declared):
        raise Refused("missing_signature", "required algorithm not declared")
    if set(sigs) != declared:
        raise Refused("missing_signature", "declared and present differ")
    if "ML-DSA-65" in declared and pq_raw is None:
        raise Refused("bad_signature", "no ML-DSA-65 key in the directory")
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(ed_raw).verify(sigs["Ed25519"], to_sign)
        if pq_raw is not None:
            mldsa.MLDSA65PublicKey.from_public_bytes(pq_raw).verify(sigs["ML-DSA-65"], to_sign)
    except InvalidSignature:
        raise Refused("bad_signature") from None


def _decrypt(
    keys: dict[str, Any], kid: str, wrapped: bytes, info: bytes, iv: bytes, ct: bytes, aad: bytes
) -> tuple[bytes, bytes]:
    """Check 7, with the private key whose recomputed id is the stanza's ``kid``."""
    for e in keys["encryption"]:
        k = mlkem.MLKEM768PrivateKey.from_seed_bytes(b64(e["mlkem768_seed"]))
        x = x25519.X25519PrivateKey.from_private_bytes(b64(e["x25519"]))
        if (
            kid_of("enc", k.public_key().public_bytes_raw() + x.public_key().public_bytes_raw())
            == kid
        ):
            suite = hpke.Suite(
                hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
            )
            try:
                cek = suite.decrypt(wrapped, hpke.MLKEM768X25519PrivateKey(k, x), info=info)
                return cek, AESGCM(cek).decrypt(iv, ct, aad)
            except (InvalidTag, ValueError):
                raise Refused("decryption_failed") from None
    raise Refused("decryption_failed", "no such private key")


def _unique_member(validator: Any, member: str, instance: Any, schema: Any) -> Any:
    """Section 10: ``x-cifta-unique-member`` M on an array: no two items share the value of M."""
    if isinstance(instance, list):
        values = [i.get(member) for i in instance if isinstance(i, dict)]
        if len(set(map(json.dumps, values))) != len(values):
            yield jsonschema.ValidationError(f"{member} repeats")


_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(when(value))


@_FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    return not isinstance(value, str) or bool(
        re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value) and datetime.strptime(value, "%Y-%m-%d")
    )


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """Section 10: ECMA-262 patterns, where ``$`` matches only at the very end of the string
    (Python's ``re``, which the generic validator uses, also matches before a final newline)."""
    if isinstance(instance, str) and not re.search(pattern.replace("$", r"\Z"), instance):
        yield jsonschema.ValidationError(f"does not match {pattern}")


# Section 10: an "integer" has no fraction or exponent (JSON Schema alone would take 1.0).
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _c, i: type(i) is int
)
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {"x-cifta-unique-member": _unique_member, "pattern": _ecma_pattern},
    type_checker=_TYPES,
)


def published_validator(kind: str) -> Any:
    """The published schema of ``kind`` with the validation semantics section 10 states."""
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8"))
    return _Validator(schema, format_checker=_FORMATS)


def _check_body(kind: str, plaintext: bytes) -> Any:
    """Check 8: the header's kind is published; the body validates against its schema."""
    if kind not in INDEX["kinds"]:
        raise Refused("unknown_kind")
    body = strict_json(plaintext, "schema_invalid")
    errors = list(published_validator(kind).iter_errors(body))
    if errors:
        raise Refused("schema_invalid", errors[0].message[:200])
    return body

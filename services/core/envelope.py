"""The CIFTA Exchange envelope, version 1: ``seal`` a body for its recipients, ``open_envelope`` it.

Shaped like COSE_Encrypt + COSE_Sign, serialized as JSON with base64url bytes; the byte-level
specification is ``docs/envelope.md``. In short:

- the *protected header* is UTF-8 JSON, carried and signed as bytes;
- the body is encrypted once with AES-256-GCM under a random content key, AAD = protected header;
- the content key is wrapped for each recipient with HPKE (RFC 9180) base mode,
  ``MLKEM768_X25519`` / HKDF-SHA256 / AES-256-GCM, ``info`` binding msg_id, recipient, key id and
  the header hash;
- Ed25519 (and optionally ML-DSA-65) signs a domain-separated structure over header, IV,
  ciphertext and every recipient stanza. HPKE base mode does not authenticate the sender, so an
  envelope without a valid signature is never accepted.

No service calls a primitive directly: this module and ``keys`` are the only places that do.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol, Required, TypedDict, Unpack

import pydantic_core
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas import Body, HandlingCode, ReasonCode, UnknownKindError
from schemas.registry import open_body
from services.core.encoding import b64u_bytes as _b64u
from services.core.encoding import uuid7
from services.core.envelope_format import (
    ENC_ALG,
    IV_LEN,
    MAX_ENVELOPE_BYTES,
    MAX_RECIPIENTS,
    VERSION,
    EnvelopeError,
    Parsed,
    ProtectedHeader,
    first_error,
    parse,
)
from services.core.keys import (
    ED25519,
    MLDSA65,
    EncryptionPublicKey,
    NodeKeys,
    SigningPublicKey,
)

__all__ = [
    "ENC_ALG",
    "MAX_CLOCK_SKEW",
    "MAX_ENVELOPE_BYTES",
    "MAX_RECIPIENTS",
    "VERSION",
    "EnvelopeError",
    "KeyLookup",
    "OpenedEnvelope",
    "ProtectedHeader",
    "SealOptions",
    "Sealed",
    "SenderKeyRecord",
    "header_time",
    "open_envelope",
    "open_sender_copy",
    "peek_header",
    "seal",
    "seal_message",
    "signature_input",
    "verify_sender",
    "wrap_info",
]

CONTENT_ALG = "A256GCM"
SIG_DOMAIN = b"CIFTA-Exchange envelope v1 signature\x00"
WRAP_DOMAIN = b"CIFTA-Exchange envelope v1 key wrap\x00"
MAX_CLOCK_SKEW = timedelta(minutes=5)

# RFC 9180 section 7 ids: KEM 0x647A (X-Wing, draft-connolly-cfrg-xwing-kem-06), KDF 0x0001
# (HKDF-SHA256), AEAD 0x0002 (AES-256-GCM).
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


@dataclass(frozen=True)
class SenderKeyRecord:
    """What the directory says of a sender's signing key, for the check at ``created_at``."""

    key: SigningPublicKey
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None


class KeyLookup(Protocol):
    """The directory as the envelope sees it."""

    def signing_key(self, party: str, kid: str) -> SenderKeyRecord | None:
        """The record of ``party``'s signing key ``kid``, or None if the directory has none."""
        ...


@dataclass(frozen=True)
class OpenedEnvelope:
    """A verified, decrypted envelope. Its two digests are computed when first asked for: the
    audit events name them, opening does not need them."""

    header: ProtectedHeader
    body: Body
    plaintext: bytes
    envelope: bytes  # as received
    ed25519_signature: bytes

    @cached_property
    def envelope_hash(self) -> str:
        """SHA-256 hex of the envelope bytes as received."""
        return hashlib.sha256(self.envelope).hexdigest()

    @cached_property
    def signature_sha256(self) -> str:
        """SHA-256 hex of its Ed25519 signature (what audit events name)."""
        return hashlib.sha256(self.ed25519_signature).hexdigest()


# --- the byte structures both sides compute ---------------------------------------------------


_LEN = struct.Struct(">Q").pack  # the 8-byte big-endian length before each field


def signature_input(
    protected: bytes, iv: bytes, ciphertext: bytes, stanzas: Sequence[tuple[str, str, bytes]]
) -> bytes:
    """The exact bytes every signature covers (docs/envelope.md, "Signature input").

    ``stanzas`` are (party, kid, wrapped key bytes), in envelope order. Each field is preceded by
    its length; the parts are joined once, without copying a field into a part of its own.
    """
    parts = [SIG_DOMAIN, _LEN(len(protected)), protected, _LEN(len(iv)), iv]
    parts += [_LEN(len(ciphertext)), ciphertext, _LEN(len(stanzas))]
    for party, kid, wrapped in stanzas:
        p, k = party.encode(), kid.encode()
        parts += [_LEN(len(p)), p, _LEN(len(k)), k, _LEN(len(wrapped)), wrapped]
    return b"".join(parts)


def wrap_info(msg_id: str, party: str, kid: str, protected: bytes) -> bytes:
    """The HPKE ``info`` for one recipient's key wrap (docs/envelope.md, "Key wrap")."""
    return _wrap_info(msg_id, party, kid, hashlib.sha256(protected).digest())


def _wrap_info(msg_id: str, party: str, kid: str, header_hash: bytes) -> bytes:
    """``wrap_info`` with the header's hash given: a sender hashes its header once, not once
    per recipient."""
    m, p, k = msg_id.encode(), party.encode(), kid.encode()
    return b"".join([WRAP_DOMAIN, _LEN(len(m)), m, _LEN(len(p)), p, _LEN(len(k)), k, header_hash])


# --- sealing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    """A sealed envelope, its header, and (when asked for) the sender's own copy of the key.

    ``sender_copy`` is the content key wrapped for the sender's own encryption key, exactly like a
    recipient stanza. It never travels: the sender keeps it next to the envelope so that it can
    read what it sent (``open_sender_copy``) without a second envelope.
    """

    envelope: bytes
    header: ProtectedHeader
    sender_copy: tuple[str, bytes] | None = None  # (kid, wrapped content key)


class SealOptions(TypedDict, total=False):
    """What a sender chooses of a message's header besides its body, sender and recipients: the
    one definition of the options :func:`seal`, :func:`seal_message` and the node take."""

    handling: Required[HandlingCode]
    confidential: bool
    handling_note: str | None  # H3 only: the restriction, in words
    case_id: str | None
    in_reply_to: str | None
    expires_at: datetime | None
    now: datetime | None  # the header's created_at; the current time by default
    msg_id: str | None  # a UUIDv7 made from ``now`` by default


def seal(
    body: Body,
    *,
    sender: NodeKeys,
    recipients: Sequence[EncryptionPublicKey],
    **options: Unpack[SealOptions],
) -> bytes:
    """Sign and encrypt ``body`` for ``recipients``; return the envelope's JSON bytes.

    The ML-DSA-65 co-signature is added when the sender's signing key has one.
    """
    return seal_message(body, sender=sender, recipients=recipients, **options).envelope


def seal_message(
    body: Body,
    *,
    sender: NodeKeys,
    recipients: Sequence[EncryptionPublicKey],
    keep_sender_copy: bool = False,
    **options: Unpack[SealOptions],
) -> Sealed:
    """``seal``, returning the parsed header too and, if asked, the sender's own key copy."""
    _check_options(options)
    handling, handling_note = options["handling"], options.get("handling_note")
    expires_at, now = options.get("expires_at"), options.get("now")
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise ValueError(f"between 1 and {MAX_RECIPIENTS} recipients")
    parties = [r.party for r in recipients]
    if len(set(parties)) != len(parties):
        raise ValueError("one encryption key per recipient")
    if handling is HandlingCode.H3 and not handling_note:
        raise ValueError("H3 needs the restriction stated in handling_note")
    if handling is not HandlingCode.H3 and handling_note is not None:
        raise ValueError(f"a handling note goes with H3 only, not with {handling.value}")
    created = (now or datetime.now(UTC)).astimezone(UTC)
    sig_key = sender.signing
    header: dict[str, Any] = {
        "v": VERSION,
        "msg_id": options.get("msg_id") or uuid7(int(created.timestamp() * 1000)),
        "kind": body.KIND,
        "sender": sender.party,
        "sender_kid": sig_key.public().kid,  # cached on the key
        "recipients": parties,
        "created_at": _iso(created),
        "handling": handling.value,
        "confidential": options.get("confidential", False),
        "enc": ENC_ALG,
        "sigs": [ED25519] + ([MLDSA65] if sig_key.mldsa65 is not None else []),
    }
    optional = {
        "expires_at": None if expires_at is None else _iso(expires_at),
        "handling_note": handling_note,
        "case_id": options.get("case_id"),
        "in_reply_to": options.get("in_reply_to"),
    }
    header.update({k: v for k, v in optional.items() if v is not None})
    # Compact UTF-8 JSON, the bytes json.dumps(separators=(",", ":"), ensure_ascii=False) gives.
    protected = pydantic_core.to_json(header)
    # Refuse to seal what a receiver would refuse: the receiver's own check, on the same bytes.
    parsed: ProtectedHeader = ProtectedHeader.__pydantic_validator__.validate_json(
        protected, strict=True
    )

    cek, iv = AESGCM.generate_key(256), os.urandom(IV_LEN)
    plaintext = type(body).__pydantic_serializer__.to_json(body)  # model_dump_json, as bytes
    ciphertext = AESGCM(cek).encrypt(iv, plaintext, protected)

    header_hash = hashlib.sha256(protected).digest()

    def wrap(r: EncryptionPublicKey) -> bytes:
        """The content key for ``r`` (HPKE, bound to this message, party, key and header)."""
        return _SUITE.encrypt(
            cek, r.hpke_key(), info=_wrap_info(header["msg_id"], r.party, r.kid, header_hash)
        )

    stanzas = [(r.party, r.kid, wrap(r)) for r in recipients]
    to_sign = signature_input(protected, iv, ciphertext, stanzas)
    signatures = [(ED25519, _b64u(sig_key.ed25519.sign(to_sign)))]
    if sig_key.mldsa65 is not None:
        signatures.append((MLDSA65, _b64u(sig_key.mldsa65.sign(to_sign))))
    # Every value is base64url, a hex key id, a party code or an algorithm name: none needs JSON
    # escaping, so the envelope is written directly, joined once (the bytes json.dumps gives).
    out = [b'{"v":%d,"protected":"' % VERSION, _b64u(protected), b'","iv":"', _b64u(iv)]
    out += [b'","ciphertext":"', _b64u(ciphertext), b'","recipients":[']
    for i, (party, kid, wrapped) in enumerate(stanzas):
        out += [b',{"party":"' if i else b'{"party":"', party.encode(), b'","kid":"', kid.encode()]
        out += [b'","enc":"', _b64u(wrapped), b'"}']
    out.append(b'],"signatures":[')
    for i, (alg, sig) in enumerate(signatures):
        out += [b',{"alg":"' if i else b'{"alg":"', alg.encode(), b'","sig":"', sig, b'"}']
    out.append(b"]}")
    envelope = b"".join(out)
    copy = None
    if keep_sender_copy:
        own = sender.current_encryption.public()
        copy = (own.kid, wrap(own))
    return Sealed(envelope, parsed, copy)


_SEAL_OPTIONS = SealOptions.__required_keys__ | SealOptions.__optional_keys__


def _check_options(options: SealOptions) -> None:
    """Refuse what the types would have: a misspelt option must not be sealed as a default."""
    if not options.keys() <= _SEAL_OPTIONS:
        unknown = sorted(set(options) - _SEAL_OPTIONS)
        raise TypeError(f"unknown seal option(s): {', '.join(unknown)}")
    if "handling" not in options:
        raise TypeError("seal needs a handling code")


def header_time(t: datetime) -> datetime:
    """``t`` as a header carries it (UTC, to the millisecond)."""
    t = t.astimezone(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _iso(t: datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- opening ----------------------------------------------------------------------------------


def peek_header(data: bytes) -> ProtectedHeader:
    """Parse the envelope's structure and header WITHOUT verifying anything (routing, audit)."""
    return parse(data).header


def _check_sender_key(
    h: ProtectedHeader, keys: KeyLookup, stored_at: datetime | None
) -> SigningPublicKey:
    """Check 2: the sender key is in the directory, valid at created_at, not revoked."""
    record = keys.signing_key(h.sender, h.sender_kid)
    if record is None or record.key.party != h.sender:
        raise EnvelopeError(ReasonCode.UNKNOWN_SENDER_KEY, f"{h.sender}/{h.sender_kid}", header=h)
    if h.created_at < record.valid_from or (
        record.valid_until is not None and h.created_at >= record.valid_until
    ):
        raise EnvelopeError(ReasonCode.SENDER_KEY_NOT_VALID, header=h)
    if record.revoked_at is not None:
        # A sender holding a stolen key can backdate created_at; the broker's own storage time
        # cannot be set by the sender, so it bounds the claim when the caller has it.
        latest_claim = max(h.created_at, stored_at) if stored_at is not None else h.created_at
        if latest_claim >= record.revoked_at:
            raise EnvelopeError(ReasonCode.REVOKED_SENDER_KEY, header=h)
    return record.key


def _check_signatures(p: Parsed, key: SigningPublicKey, require_pq: bool) -> None:
    """Check 3: every signature the header declares is present and verifies, and the
    post-quantum one is declared whenever the sender's directory key has an ML-DSA-65 part."""
    h = p.header
    declared = set(h.sigs)
    # No downgrade: a forger of Ed25519 (the threat ML-DSA-65 is there for) could otherwise
    # declare Ed25519 alone for a sender whose directory record carries an ML-DSA-65 key.
    need_pq = require_pq or key.mldsa65 is not None
    if ED25519 not in declared or (need_pq and MLDSA65 not in declared):
        raise EnvelopeError(
            ReasonCode.MISSING_SIGNATURE, "required algorithm not declared", header=h
        )
    if set(p.signatures) != declared:
        raise EnvelopeError(ReasonCode.MISSING_SIGNATURE, "declared signatures absent", header=h)
    if MLDSA65 in declared and key.mldsa65 is None:
        raise EnvelopeError(ReasonCode.BAD_SIGNATURE, "no ML-DSA-65 key on file", header=h)
    to_verify = signature_input(p.protected, p.iv, p.ciphertext, p.stanzas)
    try:
        key.ed25519.verify(p.signatures[ED25519], to_verify)
        if key.mldsa65 is not None:
            key.mldsa65.verify(p.signatures[MLDSA65], to_verify)
    except InvalidSignature:
        raise EnvelopeError(ReasonCode.BAD_SIGNATURE, header=h) from None


def open_envelope(
    data: bytes,
    *,
    keys: NodeKeys,
    directory: KeyLookup,
    is_replay: Callable[[str], bool] = lambda _msg_id: False,
    now: datetime | None = None,
    stored_at: datetime | None = None,
    require_pq_signature: bool = False,
) -> OpenedEnvelope:
    """Verify and decrypt an envelope addressed to ``keys.party``.

    Checks run in the order of docs/envelope.md and the first failure raises EnvelopeError with
    its reason code: structure and version; sender key; signature; recipient; expiry; replay;
    unwrap and decrypt; body schema.
    """
    now = now or datetime.now(UTC)
    p = parse(data)
    h = p.header
    sender_key = _check_sender_key(h, directory, stored_at)
    _check_signatures(p, sender_key, require_pq_signature)

    def refuse(reason: ReasonCode, detail: str = "") -> EnvelopeError:
        return EnvelopeError(reason, detail, header=h, sender_verified=True)

    if keys.party not in h.recipients:
        raise refuse(ReasonCode.NOT_A_RECIPIENT, f"addressed to {','.join(h.recipients)}")
    if h.expires_at is not None and now >= h.expires_at:
        raise refuse(ReasonCode.EXPIRED, f"expired at {_iso(h.expires_at)}")
    if h.created_at > now + MAX_CLOCK_SKEW:
        raise refuse(ReasonCode.FUTURE_DATED, f"created_at {_iso(h.created_at)}")
    if is_replay(h.msg_id):
        raise refuse(ReasonCode.REPLAY, f"msg_id {h.msg_id}")

    _, kid, wrapped = p.stanzas[h.recipients.index(keys.party)]  # parse matched their order
    plaintext = _decrypt(p, keys, kid, wrapped, refuse)
    try:
        body = open_body(h.kind, plaintext)
    except UnknownKindError:
        raise refuse(ReasonCode.UNKNOWN_KIND, h.kind) from None
    except ValueError as exc:  # ValidationError, WireJSONError
        raise refuse(ReasonCode.SCHEMA_INVALID, first_error(exc)) from None
    return _opened(p, data, body, plaintext)


def _decrypt(
    p: Parsed, keys: NodeKeys, kid: str, wrapped: bytes, refuse: Callable[..., EnvelopeError]
) -> bytes:
    """Unwrap the content key with our key ``kid`` and decrypt the body (check 7)."""
    own = keys.encryption_key(kid)
    if own is None:
        raise refuse(ReasonCode.DECRYPTION_FAILED, f"no private key {kid}")
    try:
        info = wrap_info(p.header.msg_id, keys.party, kid, p.protected)
        cek = _SUITE.decrypt(wrapped, own.hpke_key(), info=info)
        return AESGCM(cek).decrypt(p.iv, p.ciphertext, p.protected)
    except (InvalidTag, ValueError):
        raise refuse(ReasonCode.DECRYPTION_FAILED) from None


def _ed25519_signature(p: Parsed) -> bytes:
    return p.signatures[ED25519]


def _opened(p: Parsed, data: bytes, body: Body, plaintext: bytes) -> OpenedEnvelope:
    return OpenedEnvelope(p.header, body, plaintext, data, _ed25519_signature(p))


def open_sender_copy(
    data: bytes,
    kid: str,
    wrapped: bytes,
    *,
    keys: NodeKeys,
    signer: SigningPublicKey | None = None,
) -> OpenedEnvelope:
    """Read an envelope this party sealed, with the key copy ``seal_message`` kept for it.

    Checks the structure and this party's own signature (no directory needed: the key is ours),
    then unwraps the content key from the sender copy and decrypts. ``signer`` is the signing
    key to verify against when it is not the current one (the key the header names, from the
    party's key history, for a message sent before a rotation).
    """
    p = parse(data)
    h = p.header
    if h.sender != keys.party:
        raise EnvelopeError(ReasonCode.NOT_A_RECIPIENT, "not sealed by this party", header=h)
    _check_signatures(p, signer or keys.signing.public(), require_pq=False)

    def refuse(reason: ReasonCode, detail: str = "") -> EnvelopeError:
        return EnvelopeError(reason, detail, header=h)

    plaintext = _decrypt(p, keys, kid, wrapped, refuse)
    try:
        body = open_body(h.kind, plaintext)
    except ValueError as exc:  # UnknownKindError, ValidationError, WireJSONError
        raise refuse(ReasonCode.SCHEMA_INVALID, first_error(exc)) from None
    return _opened(p, data, body, plaintext)


def sender_key_id(
    header: ProtectedHeader, *, directory: KeyLookup, stored_at: datetime | None = None
) -> str:
    """Check 2 alone, for a header whose envelope verified before: the kid of the sender's key
    on file now (valid at ``created_at``, not revoked), or the check's ``EnvelopeError``."""
    return _check_sender_key(header, directory, stored_at).kid


def verify_sender(
    data: bytes, *, directory: KeyLookup, stored_at: datetime | None = None
) -> tuple[ProtectedHeader, bytes]:
    """Checks 1 to 3 only (structure, sender key, signatures), for a party that cannot decrypt
    (the audit service). Returns the header and the Ed25519 signature bytes."""
    p = parse(data)
    key = _check_sender_key(p.header, directory, stored_at)
    _check_signatures(p, key, require_pq=False)
    return p.header, _ed25519_signature(p)

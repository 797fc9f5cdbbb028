"""The envelope's wire format, read strictly: check 1 of docs/envelope.md (structure and version).

Everything here runs before any key is looked up. It turns envelope bytes into a parsed header and
decoded byte strings, or raises ``EnvelopeError`` with the reason code of the first failed rule
(``oversized``, ``malformed``, ``unsupported_version``, ``unsupported_algorithm``). No value is
coerced: the same signed bytes must mean the same thing to every receiver, in any language.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema
from typing_extensions import TypedDict  # pydantic reads TypedDicts from here before 3.12

from schemas import HandlingCode, ReasonCode
from schemas.base import CaseId, MessageId, PartyCode
from schemas.reasons import REASON_TEXT
from schemas.wirejson import WireJSONError, loads_strict
from services.core.encoding import unb64u

VERSION = 1
ENC_ALG = "HPKE-Base-MLKEM768X25519-HKDFSHA256-A256GCM"
ED25519, MLDSA65 = "Ed25519", "ML-DSA-65"
SIG_LENGTHS = {ED25519: 64, MLDSA65: 3309}  # RFC 8032 section 5.1.6; FIPS 204 table 2
MAX_ENVELOPE_BYTES = 8 * 1024 * 1024
MAX_RECIPIENTS = 64
IV_LEN, WRAPPED_LEN, TAG_LEN = 12, 1168, 16

KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
SigAlg = Literal["Ed25519", "ML-DSA-65"]

#: The one timestamp form a header carries (docs/envelope.md section 3): UTC, milliseconds, "Z".
_HEADER_TIME_FORM = "YYYY-MM-DDTHH:MM:SS.mmmZ"
HEADER_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"


class EnvelopeError(Exception):
    """An envelope was refused. ``reason`` is the machine-readable code of the first failed check.

    ``header`` is the parsed protected header when parsing got that far (so a rejection can be
    addressed), and ``sender_verified`` says whether the signature had been checked by then.
    """

    def __init__(
        self,
        reason: ReasonCode,
        detail: str = "",
        *,
        header: ProtectedHeader | None = None,
        sender_verified: bool = False,
    ) -> None:
        self.reason = reason
        self.detail = detail or REASON_TEXT[reason]
        self.header = header
        self.sender_verified = sender_verified
        super().__init__(f"{reason.value}: {self.detail}")


class _HeaderTimeSchema:
    """One spelling per instant: no offsets, no space separator, no numbers of seconds. The form
    is checked by pydantic-core's own pattern match, then ``datetime.fromisoformat`` reads it
    (a ValueError for a day or time out of range, a second of 60 included): two compiled calls,
    no Python function between them, on every header each side reads. A header is only ever
    read from its JSON bytes: a ``datetime`` given in Python is refused like any non-string."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        form = core_schema.custom_error_schema(
            core_schema.str_schema(pattern=HEADER_TIME_PATTERN),
            custom_error_type="value_error",
            custom_error_context={"error": f"a header timestamp is written {_HEADER_TIME_FORM}"},
        )
        # written back as the datetime it is read into (model_dump, model_dump_json)
        written = core_schema.simple_ser_schema("datetime")
        return core_schema.no_info_after_validator_function(
            datetime.fromisoformat, form, serialization=written
        )


HeaderTime = Annotated[datetime, _HeaderTimeSchema]


def _distinct(algs: list[str]) -> list[str]:
    if len(set(algs)) != len(algs):
        raise ValueError("an algorithm is named twice")
    return algs


class ProtectedHeader(BaseModel):
    """The signed clear header: routing and handling metadata, never content."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    msg_id: MessageId
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z_]+\.[a-z_]+$", max_length=64)]
    sender: PartyCode
    sender_kid: KeyId
    recipients: Annotated[list[PartyCode], Field(min_length=1, max_length=MAX_RECIPIENTS)]
    created_at: HeaderTime
    expires_at: HeaderTime | None = None
    handling: HandlingCode
    handling_note: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    confidential: bool
    case_id: CaseId | None = None
    in_reply_to: MessageId | None = None
    enc: Literal["HPKE-Base-MLKEM768X25519-HKDFSHA256-A256GCM"]
    sigs: Annotated[list[SigAlg], Field(min_length=1, max_length=2), AfterValidator(_distinct)]

    @model_validator(mode="after")
    def _note_exactly_with_h3(self) -> ProtectedHeader:
        # H3 means "other restrictions, stated in the header": without the statement a receiver
        # cannot honour it; with H0-H2 a note would add a restriction the code does not carry.
        if (self.handling is HandlingCode.H3) != (self.handling_note is not None):
            raise ValueError("handling_note is present if and only if handling is H3")
        return self


class _Stanza(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    party: PartyCode
    kid: KeyId
    enc: str


class _Signature(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    alg: SigAlg
    sig: str


class _Envelope(TypedDict):
    """The outer object. Dictionaries, not models: nothing outlives the parse but ``Parsed``."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    v: int
    protected: str
    iv: str
    ciphertext: str
    recipients: Annotated[list[_Stanza], Field(min_length=1, max_length=MAX_RECIPIENTS)]
    signatures: Annotated[list[_Signature], Field(max_length=2)]


_ENVELOPE = TypeAdapter(_Envelope)


class Parsed(NamedTuple):
    """An envelope that passed check 1: its header and every byte string, decoded once."""

    protected: bytes
    header: ProtectedHeader
    iv: bytes
    ciphertext: bytes
    stanzas: list[tuple[str, str, bytes]]  # (party, kid, wrapped key), in envelope order
    signatures: dict[str, bytes]  # algorithm -> signature bytes


def _malformed(detail: str) -> EnvelopeError:
    return EnvelopeError(ReasonCode.MALFORMED, detail)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        raw = loads_strict(data)
    except WireJSONError as exc:
        raise _malformed(f"{what}: {exc}") from None
    if not isinstance(raw, dict):
        raise _malformed(f"{what}: not a JSON object")
    return raw


def _check_version(raw: dict[str, Any], what: str) -> None:
    """Checks 1b/1c: an integer ``v`` (JSON true and 1.0 are not integers), and it is 1."""
    v = raw.get("v")
    if type(v) is not int:
        raise _malformed(f"{what}: no integer member v")
    if v != VERSION:
        raise EnvelopeError(ReasonCode.UNSUPPORTED_VERSION, f"{what} version {v}")


def _check_algorithms(outer: dict[str, Any], header: dict[str, Any]) -> None:
    """Check 1d: every algorithm named is one this version defines."""
    enc = header.get("enc")
    if isinstance(enc, str) and enc != ENC_ALG:
        raise EnvelopeError(ReasonCode.UNSUPPORTED_ALGORITHM, "key wrap algorithm in enc")
    sigs, signatures = header.get("sigs"), outer.get("signatures")
    named = sigs if isinstance(sigs, list) else []
    if isinstance(signatures, list):
        named = named + [s.get("alg") for s in signatures if isinstance(s, dict)]
    for alg in named:
        if isinstance(alg, str) and alg not in SIG_LENGTHS:
            raise EnvelopeError(ReasonCode.UNSUPPORTED_ALGORITHM, "signature algorithm")


def parse(data: bytes) -> Parsed:
    """Check 1, in the order of docs/envelope.md section 11: size, outer JSON and version,
    header JSON and version, algorithms, then every member's type and bounds."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(ReasonCode.OVERSIZED, f"{len(data)} bytes > {MAX_ENVELOPE_BYTES}")
    outer = _json_object(data, "envelope")
    _check_version(outer, "envelope")
    protected_text = outer.get("protected")
    try:
        protected = unb64u(protected_text)  # type: ignore[arg-type]  # unb64u refuses non-str
    except ValueError:
        raise _malformed("protected: not canonical unpadded base64url") from None
    raw_header = _json_object(protected, "header")
    _check_version(raw_header, "header")
    _check_algorithms(outer, raw_header)
    if None in raw_header.values():
        raise _malformed("header: optional members are omitted, not null")
    # The validators themselves: pydantic's wrappers around them cost a tenth of a validation.
    try:
        env = _ENVELOPE.validator.validate_python(outer, strict=True)
    except ValidationError as exc:
        raise _malformed("envelope: " + first_error(exc)) from None
    try:
        header = ProtectedHeader.__pydantic_validator__.validate_json(protected, strict=True)
    except ValidationError as exc:
        raise _malformed("header: " + first_error(exc)) from None
    return _decode(env, header, protected)


def _decode(env: _Envelope, header: ProtectedHeader, protected: bytes) -> Parsed:
    """The rest of check 1e: byte strings canonical and of their lengths, stanzas as the header."""
    iv = _bytes(env["iv"], header, "iv", IV_LEN)
    ciphertext = _bytes(env["ciphertext"], header, "ciphertext")
    if len(ciphertext) < TAG_LEN:
        raise _bad(header, "ciphertext: shorter than the AES-GCM tag")
    if len(set(header.recipients)) != len(header.recipients):
        raise _bad(header, "duplicate recipient in header")
    if [s["party"] for s in env["recipients"]] != header.recipients:
        raise _bad(header, "recipient stanzas do not match the header's recipients, in order")
    stanzas = [
        (s["party"], s["kid"], _bytes(s["enc"], header, "stanza", WRAPPED_LEN, s["party"]))
        for s in env["recipients"]
    ]
    sigs = env["signatures"]
    if len({s["alg"] for s in sigs}) != len(sigs):
        raise _bad(header, "duplicate signature algorithm")
    signatures: dict[str, bytes] = {
        s["alg"]: _bytes(s["sig"], header, "signature", SIG_LENGTHS[s["alg"]], s["alg"])
        for s in sigs
    }
    return Parsed(protected, header, iv, ciphertext, stanzas, signatures)


def _bad(header: ProtectedHeader, detail: str) -> EnvelopeError:
    return EnvelopeError(ReasonCode.MALFORMED, detail, header=header)


def _bytes(
    text: str, header: ProtectedHeader, what: str, length: int | None = None, of: str = ""
) -> bytes:
    """One byte-string member decoded: canonical base64url, and ``length`` bytes when given.
    ``of`` names the stanza's party or the signature's algorithm in the error."""
    try:
        raw = unb64u(text)
    except ValueError:
        raise _bad(header, f"{_name(what, of)}: not canonical unpadded base64url") from None
    if length is not None and len(raw) != length:
        raise _bad(header, f"{_name(what, of)}: must be {length} bytes")
    return raw


def _name(what: str, of: str) -> str:
    if what == "stanza":
        return f"stanza for {of}"
    return f"{of} {what}" if of else what


def first_error(exc: Exception) -> str:
    """The first validation error as one line: where, and what is wrong (never the value)."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        return f"{loc}: {err['msg']}" if loc else str(err["msg"])
    return str(exc)

"""Blind record lookup (docs/lookup.md): the signed filter a state publishes, and the evaluation
request and reply of RFC 9497's VOPRF protocol between an asking and an answering node.

Nothing here names a firearm: a filter holds OPRF outputs hashed into a Bloom filter, a request a
blinded group element, a reply the evaluated element and its DLEQ proof.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from schemas.base import MessageId, PartyCode, Timestamp, WireModel, examples
from schemas.reasons import ReasonCode
from schemas.registry import record

FILTER_FORMAT = "cifta-lookup-filter-v1"
REQUEST_FORMAT = "cifta-lookup-eval-v1"
#: The RFC 9497 suite every state uses (section 4.1), in VOPRF mode (0x01).
OPRF_SUITE = "ristretto255-SHA512"
#: The largest filter a state may publish (bits, before base64url): about 1.1 million records at
#: the default false-positive rate of one in a million.
MAX_FILTER_BYTES = 4 * 1024 * 1024

_KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
#: A ristretto255 element or scalar: 32 bytes, base64url without padding.
Element = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
#: A DLEQ proof (RFC 9497 section 2.2): the scalars c and s, 64 bytes, base64url.
ProofBytes = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]
_B64U = r"^[A-Za-z0-9_-]+$"
_Signature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]
_Bits = Annotated[
    str,
    StringConstraints(min_length=2, max_length=MAX_FILTER_BYTES * 4 // 3 + 4, pattern=_B64U),
]
_EX_ELEMENT = "yAPizGsF_BUGRUm1kgZZykp3ssym8E9rNXAJM1R2rU4"
_EX_PROOF = "3e-TdyaS5TXRpTkD2yQ2c1XMLMeN6Ts75aj_zGmF3QZtQ0ZCHRe_URei0f8PyyqUn1ilOd--hXpAvOTPSexgDQ"


@record("lookup.filter")
class LookupFilter(WireModel):
    """One state's published filter: the Bloom filter of the OPRF outputs of its flagged records
    under the OPRF key it names, with the false-positive rate it was built for."""

    model_config = examples(
        {
            "format": FILTER_FORMAT,
            "party": "MEX",
            "suite": OPRF_SUITE,
            "oprf_key": _EX_ELEMENT,
            "oprf_kid": "4f1c2a9e8b7d6c5f4e3d2c1b0a998877",
            "built_at": "2026-12-02T10:00:00Z",
            "records": 1,
            "fp_rate": 1e-6,
            "m_bits": 64,
            "k": 20,
            "bits": "AAAAAAAAAAA",
        }
    )

    format: Literal["cifta-lookup-filter-v1"]
    party: PartyCode
    suite: Literal["ristretto255-SHA512"]
    oprf_key: Element
    oprf_kid: _KeyId
    built_at: Timestamp
    records: Annotated[int, Field(ge=0)]
    fp_rate: Annotated[float, Field(gt=0, lt=1)]
    m_bits: Annotated[int, Field(ge=64, le=MAX_FILTER_BYTES * 8, multiple_of=8)]
    k: Annotated[int, Field(ge=1, le=64)]
    bits: _Bits


@record("lookup.signed_filter")
class SignedLookupFilter(WireModel):
    """A filter as stored in the ``LOOKUP_FILTERS`` bucket under its state's code: the filter's
    JSON bytes and the state's Ed25519 signature over them (its directory signing key)."""

    model_config = examples(
        {"filter": "eyJmb3JtYXQiOiJjaWZ0YS1sb29rdXAtZmlsdGVyLXYxIn0", "kid": "0" * 32,
         "sig": "A" * 86}
    )  # fmt: skip

    filter: Annotated[str, StringConstraints(min_length=1, max_length=MAX_FILTER_BYTES * 2)]
    kid: _KeyId
    sig: _Signature


@record("lookup.evaluation_request")
class EvaluationRequest(WireModel):
    """``BlindEvaluate`` asked of one state: one blinded element (RFC 9497 section 3.3.2)."""

    model_config = examples(
        {"format": REQUEST_FORMAT, "request_id": "019ad3c1-5d2e-7a10-8b55-6a1f0c2d3e4f",
         "blinded": _EX_ELEMENT}
    )  # fmt: skip

    format: Literal["cifta-lookup-eval-v1"]
    request_id: MessageId
    blinded: Element


@record("lookup.evaluation_reply")
class EvaluationReply(WireModel):
    """The evaluated element and its proof, under the named OPRF key; or a refusal with its
    reason code (``lookup_over_budget``, ``lookup_malformed``, ``lookup_unavailable``)."""

    model_config = examples(
        {"request_id": "019ad3c1-5d2e-7a10-8b55-6a1f0c2d3e4f", "oprf_kid": "4f1c2a9e8b7d6c5f"
         "4e3d2c1b0a998877", "evaluated": _EX_ELEMENT, "proof": _EX_PROOF},
        {"request_id": "019ad3c1-5d2e-7a10-8b55-6a1f0c2d3e4f", "refused": "lookup_over_budget",
         "retry_after_s": 600},
    )  # fmt: skip

    request_id: MessageId | None = None  # None only when the request could not be read
    oprf_kid: _KeyId | None = None
    evaluated: Element | None = None
    proof: ProofBytes | None = None
    refused: ReasonCode | None = None
    retry_after_s: Annotated[int, Field(ge=0, le=7 * 24 * 3600)] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> EvaluationReply:
        answered = None not in (self.oprf_kid, self.evaluated, self.proof)
        if answered == (self.refused is not None):
            raise ValueError("a reply carries either an evaluation and its proof or a refusal")
        if not answered and (self.oprf_kid, self.evaluated, self.proof) != (None, None, None):
            raise ValueError("a refusal carries no evaluation")
        return self

"""Test data builders with realistic defaults: parties with keys, a directory, bodies, envelopes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from schemas import Body, HandlingCode
from schemas.registry import example_body as registry_example_body
from services.core.encoding import b64u, unb64u
from services.core.envelope import SenderKeyRecord, open_envelope, seal, signature_input
from services.core.keys import NodeKeys

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
KEY_VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)


@cache
def party(code: str, post_quantum: bool = False) -> NodeKeys:
    """A party's keys; generated once per test session (ML-KEM key generation is not free)."""
    return NodeKeys.generate(code, post_quantum_signature=post_quantum)


@dataclass
class InMemoryDirectory:
    """The directory's signing-key records, as the envelope's KeyLookup sees them."""

    records: dict[tuple[str, str], SenderKeyRecord] = field(default_factory=dict)

    def add(
        self,
        keys: NodeKeys,
        *,
        valid_from: datetime = KEY_VALID_FROM,
        valid_until: datetime | None = None,
        revoked_at: datetime | None = None,
    ) -> InMemoryDirectory:
        pub = keys.signing.public()
        self.records[(keys.party, pub.kid)] = SenderKeyRecord(
            pub, valid_from, valid_until, revoked_at
        )
        return self

    def signing_key(self, party: str, kid: str) -> SenderKeyRecord | None:
        return self.records.get((party, kid))


def directory_of(*parties: NodeKeys) -> InMemoryDirectory:
    d = InMemoryDirectory()
    for p in parties:
        d.add(p)
    return d


example_body = registry_example_body


def sealed(
    body: Body | None = None,
    *,
    sender: NodeKeys | None = None,
    to: Iterable[NodeKeys] = (),
    handling: HandlingCode = HandlingCode.H2,
    now: datetime = NOW,
    **kwargs: Any,
) -> bytes:
    """An envelope from MEX to USA of a trafficking-routes report, unless told otherwise."""
    recipients = list(to) or [party("USA")]
    return seal(
        body or example_body("info.trafficking_routes"),
        sender=sender or party("MEX"),
        recipients=[r.current_encryption.public() for r in recipients],
        handling=handling,
        now=now,
        **kwargs,
    )


def opened(data: bytes, at: NodeKeys | None = None, **kwargs: Any) -> Any:
    """Open ``data`` at USA with a directory knowing MEX, USA and COL, at NOW."""
    kwargs.setdefault("directory", directory_of(party("MEX"), party("USA"), party("COL")))
    kwargs.setdefault("now", NOW)
    return open_envelope(data, keys=at or party("USA"), **kwargs)


# --- tampering --------------------------------------------------------------------------------


def as_json(data: bytes) -> dict[str, Any]:
    return dict(json.loads(data))


def to_bytes(env: dict[str, Any]) -> bytes:
    return json.dumps(env, separators=(",", ":")).encode()


def header_of(env: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(unb64u(env["protected"])))


def with_header(data: bytes, **changes: Any) -> bytes:
    """The envelope with its protected header changed (signature left as it was)."""
    env = as_json(data)
    header = header_of(env)
    header.update(changes)
    env["protected"] = b64u(json.dumps(header, separators=(",", ":")).encode())
    return to_bytes(env)


def flip_byte(b64: str, index: int = 0) -> str:
    raw = bytearray(unb64u(b64))
    raw[index] ^= 0x01
    return b64u(bytes(raw))


def resign(env: dict[str, Any], sender: NodeKeys) -> dict[str, Any]:
    """Re-sign a hand-modified envelope with the sender's key: a sender that built it wrongly."""

    stanzas = [(s["party"], s["kid"], unb64u(s["enc"])) for s in env["recipients"]]
    to_sign = signature_input(
        unb64u(env["protected"]), unb64u(env["iv"]), unb64u(env["ciphertext"]), stanzas
    )
    env["signatures"] = [{"alg": "Ed25519", "sig": b64u(sender.signing.ed25519.sign(to_sign))}]
    return env


def later(**kwargs: float) -> datetime:
    return NOW + timedelta(**kwargs)

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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from schemas import Body, HandlingCode  # noqa: E402
from schemas.registry import example_body  # noqa: E402
from services.core.encoding import unb64u  # noqa: E402
from services.core.envelope import _SUITE, seal, signature_input, wrap_info  # noqa: E402
from services.core.keys import NodeKeys, SigningKey  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import cases_checks  # noqa: E402
import cases_structure  # noqa: E402
from vector_world import World  # noqa: E402

OUT = Path(__file__).with_name("envelope-v1.json")
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
CREATED = NOW - timedelta(minutes=2)
ROTATED = NOW - timedelta(minutes=1)  # MEX's signing key rotation
VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _UnheardOf(Body):
    """A well-formed body of a kind no contract defines (for the unknown_kind vector)."""

    KIND: ClassVar[str] = "info.unheard_of"


def intermediates(data: bytes, me: NodeKeys) -> dict[str, Any]:
    """What an implementation computes on the way to the plaintext, to debug step by step."""
    env = json.loads(data)
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


class Vectors:
    """The vectors, in the order they are written."""

    def __init__(self, parties: dict[str, NodeKeys]) -> None:
        self.parties = parties
        self.items: list[dict[str, Any]] = []

    def valid(
        self,
        name: str,
        description: str,
        data: bytes,
        open_as: str,
        *,
        now: datetime = NOW,
        pad_to: int | None = None,
    ) -> None:
        me = self.parties[open_as]
        padded = data if pad_to is None else data + b" " * (pad_to - len(data))
        steps = intermediates(data, me) | {"envelope_sha256": hashlib.sha256(padded).hexdigest()}
        self.items.append(
            {
                "name": name,
                "description": description,
                "envelope": data.decode(),
                **({} if pad_to is None else {"pad_to": pad_to}),
                "open_as": open_as,
                "now": iso(now),
                "expect": {
                    "header": json.loads(unb64u(json.loads(data)["protected"])),
                    "body": json.loads(steps["plaintext"]),
                    **steps,
                },
            }
        )

    def refused(
        self,
        name: str,
        description: str,
        data: bytes,
        reason: str,
        *,
        open_as: str = "USA",
        now: datetime = NOW,
        seen: tuple[str, ...] = (),
        directory_changes: tuple[dict[str, Any], ...] = (),
        pad_to: int | None = None,
    ) -> None:
        self.items.append(
            {
                "name": name,
                "description": description,
                "envelope": data.decode("utf-8", errors="strict"),
                **({} if pad_to is None else {"pad_to": pad_to}),
                "open_as": open_as,
                "now": iso(now),
                "seen_msg_ids": list(seen),
                "directory_changes": list(directory_changes),
                "expect": {"reason": reason},
            }
        )


def directory_record(
    keys: NodeKeys, valid_from: datetime, valid_until: datetime | None
) -> dict[str, Any]:
    public = keys.signing.public()
    return {
        "party": keys.party,
        "kid": public.kid,
        "public": public.to_json(),
        "valid_from": iso(valid_from),
        "valid_until": None if valid_until is None else iso(valid_until),
        "revoked_at": None,
    }


def main() -> int:
    mex, col = NodeKeys.generate("MEX"), NodeKeys.generate("COL")
    usa_before = NodeKeys.generate("USA")
    usa = usa_before.with_new_encryption_key()  # rotated: the previous key kept for the overlap
    bra = NodeKeys.generate("BRA", post_quantum_signature=True)
    arg = NodeKeys.generate("ARG")  # not in the directory
    mex_next = replace(mex, signing=SigningKey.generate("MEX"))  # after its rotation
    parties = {p.party: p for p in (mex, usa, col, bra, arg)}
    directory = [
        directory_record(mex, VALID_FROM, ROTATED),
        directory_record(mex_next, ROTATED, None),
        *(directory_record(p, VALID_FROM, None) for p in (usa, col, bra)),
    ]

    def to(*rs: NodeKeys) -> list[Any]:
        return [r.current_encryption.public() for r in rs]

    v = Vectors(parties)
    routes = seal(
        example_body("info.trafficking_routes"),
        sender=mex,
        recipients=to(usa, col),
        handling=HandlingCode.H2,
        confidential=True,
        case_id="MEX-FGR-2026-0412",
        now=CREATED,
    )
    base = seal(
        example_body("tracing.request"),
        sender=mex,
        recipients=to(usa),
        handling=HandlingCode.H1,
        case_id="FGR/SIN/2026/1187",
        expires_at=NOW + timedelta(days=7),
        now=CREATED,
    )
    receipt = seal(
        example_body("protocol.receipt"),
        sender=bra,
        recipients=to(usa),
        handling=HandlingCode.H0,
        in_reply_to=json.loads(unb64u(json.loads(base)["protected"]))["msg_id"],
        now=CREATED,
    )
    h3 = seal(
        example_body("delivery.proposal"),
        sender=usa,
        recipients=to(mex),
        handling=HandlingCode.H3,
        handling_note="Not to be shared with customs brokers",
        case_id="CD-MEX-2026-019",
        now=CREATED,
    )
    v.valid(
        "routes-usa",
        "XIII.1.c report, MEX to USA and COL, H2, confidential; opened at USA",
        routes,
        "USA",
    )
    v.valid("routes-col", "the same envelope opened at COL", routes, "COL")
    v.valid("tracing-expiring", "tracing request MEX to USA, H1, expires in 7 days", base, "USA")
    v.valid(
        "receipt-pq", "delivery receipt BRA to USA with an ML-DSA-65 co-signature", receipt, "USA"
    )
    v.valid("proposal-h3", "controlled-delivery proposal USA to MEX, H3 with its note", h3, "MEX")

    world = World(
        mex=mex, mex_next=mex_next, usa=usa, usa_before=usa_before, col=col, bra=bra, arg=arg,
        now=NOW, created=CREATED, rotated=ROTATED, base=base, routes=routes, receipt=receipt,
        h3=h3, unheard_of=_UnheardOf(), iso=iso,
    )  # fmt: skip
    # Every invalid case, in the order of the checks of docs/envelope.md section 11.
    for group in (
        cases_structure.outer,
        cases_structure.encodings,
        cases_structure.header_types,
        cases_structure.algorithms,
        cases_checks.signatures,
        cases_checks.keys_and_time,
        cases_checks.bodies,
    ):
        group(v, world)

    doc = {
        "format": "cifta-exchange-envelope-vectors",
        "envelope_version": 1,
        "generated_at": iso(datetime.now(UTC)),
        "how_to_use": (__doc__ or "").strip().splitlines()[2:],
        "keys": {p: k.private_json() for p, k in parties.items()},
        "public_keys": {p: k.public_bundle() for p, k in parties.items()},
        "directory": directory,
        "vectors": v.items,
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(v.items)} vectors to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

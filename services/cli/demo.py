"""The demonstration scenario: MEX sends a sealed trafficking-routes report to USA and COL."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from schemas import BODY_MODELS, HandlingCode
from services.core.encoding import b64u, unb64u
from services.core.envelope import EnvelopeError, SenderKeyRecord, open_envelope, seal
from services.core.keys import NodeKeys

PARTIES = ("SEC", "MEX", "USA", "COL")


class _DemoDirectory:
    """The directory's signing-key records for the demo parties."""

    def __init__(self, parties: dict[str, NodeKeys], since: datetime) -> None:
        self._records = {
            (p, k.signing.public().kid): SenderKeyRecord(k.signing.public(), since)
            for p, k in parties.items()
        }

    def signing_key(self, party: str, kid: str) -> SenderKeyRecord | None:
        return self._records.get((party, kid))


class StepFailed(Exception):
    """A demo step did not do what it says."""


def _step(n: int, text: str) -> None:
    print(f"{n}. {text}")


def _keys(workdir: Path) -> dict[str, NodeKeys]:
    keys: dict[str, NodeKeys] = {}
    for party in PARTIES:
        path = workdir / "keys" / f"{party}.key.json"
        if not path.exists():
            NodeKeys.generate(party).save(path)
        keys[party] = NodeKeys.load(path)
    return keys


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    try:
        _scenario(workdir)
    except StepFailed as exc:
        print(f"FAILED: {exc}")
        return 1
    print("Demo finished: every step did what it said.")
    return 0


def _scenario(workdir: Path) -> None:
    keys = _keys(workdir)
    now = datetime.now(UTC)
    directory = _DemoDirectory(keys, since=datetime(2026, 1, 1, tzinfo=UTC))
    _step(1, f"Keys ready for {', '.join(PARTIES)} in {workdir / 'keys'} (files mode 0600).")

    model = BODY_MODELS["info.trafficking_routes"]
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    report = model.model_validate(extra["examples"][0])
    envelope = seal(
        report,
        sender=keys["MEX"],
        recipients=[
            keys["USA"].current_encryption.public(),
            keys["COL"].current_encryption.public(),
        ],
        handling=HandlingCode.H2,
        confidential=True,
        case_id="MX-FGR-2026-0117",
        now=now,
    )
    header = json.loads(unb64u(json.loads(envelope)["protected"]))
    _step(
        2,
        f"MEX sealed a trafficking-routes report (Art. XIII.1.c, H2, confidential) for USA and "
        f"COL: {len(envelope)} bytes, msg_id {header['msg_id']}.",
    )
    for state in ("USA", "COL"):
        opened = open_envelope(envelope, keys=keys[state], directory=directory, now=now)
        if opened.body != report:
            raise StepFailed(f"{state} opened a different body")
        _step(
            3,
            f"{state} verified MEX's signature and decrypted the report ({opened.header.kind}).",
        )

    try:
        open_envelope(envelope, keys=keys["SEC"], directory=directory, now=now)
        raise StepFailed("the secretariat could open a message not addressed to it")
    except EnvelopeError as exc:
        _step(4, f"The secretariat cannot read it: refused with reason '{exc.reason.value}'.")

    env = json.loads(envelope)
    ct = bytearray(unb64u(env["ciphertext"]))
    ct[0] ^= 1
    env["ciphertext"] = b64u(bytes(ct))
    try:
        open_envelope(json.dumps(env).encode(), keys=keys["USA"], directory=directory, now=now)
        raise StepFailed("a tampered envelope opened")
    except EnvelopeError as exc:
        _step(5, f"A copy with one ciphertext bit flipped is refused: reason '{exc.reason.value}'.")

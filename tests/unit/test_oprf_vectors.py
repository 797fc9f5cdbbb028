"""RFC 9497 Appendix A.1.2: ristretto255-SHA512, VOPRF mode, against the ``voprf`` package.

The package draws the blind and the proof's random scalar itself, so the vectors' ``Blind`` and
``Proof`` bytes cannot be reproduced through it; what is deterministic is checked byte for byte:
``DeriveKeyPair`` (skSm from Seed and KeyInfo, shown by pkSm), ``BlindEvaluate`` (the vectors'
BlindedElement evaluates to their EvaluationElement), ``Evaluate``/``Finalize`` (Input gives
Output). A full blind, evaluate, finalize round trip then shows the proof verifies under the
right key and is refused under another.
"""

from __future__ import annotations

import pytest
from voprf import ristretto

from services.core.encoding import b64u
from services.core.oprf import (
    LookupCryptoError,
    LookupKeys,
    OprfPublicKey,
    blind,
    finalize,
)

SEED = bytes.fromhex("a3" * 32)
KEY_INFO = bytes.fromhex("74657374206b6579")  # "test key"
PK_SM = "c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e"

VECTORS = [
    # (Input, BlindedElement, EvaluationElement, Output), Test Vectors 1 and 2, batch size 1
    (
        "00",
        "863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
        "aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
        "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7d"
        "a4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c",
    ),
    (
        "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        "cc0b2a350101881d8a4cba4c80241d74fb7dcbfde4a61fde2f91443c2bf9ef0c",
        "60a59a57208d48aca71e9e850d22674b611f752bed48b36f7a91b372bd7ad468",
        "8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60"
        "356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6",
    ),
]


@pytest.fixture(scope="module")
def evaluator() -> ristretto.Evaluator:
    return ristretto.Evaluator.from_seed(SEED, KEY_INFO)


def test_derive_key_pair_gives_the_rfc_public_key(evaluator: ristretto.Evaluator) -> None:
    assert evaluator.public_key.serialize().hex() == PK_SM


@pytest.mark.parametrize(("data", "blinded", "evaluated", "output"), VECTORS)
def test_blind_evaluate_gives_the_rfc_evaluation_element(
    evaluator: ristretto.Evaluator, data: str, blinded: str, evaluated: str, output: str
) -> None:
    reply = evaluator.evaluate(ristretto.BlindedInput.deserialize(bytes.fromhex(blinded)))
    # serialised as proof (c || s, 64 bytes) then the evaluated element
    assert reply.serialize()[64:].hex() == evaluated


@pytest.mark.parametrize(("data", "blinded", "evaluated", "output"), VECTORS)
def test_evaluate_gives_the_rfc_output(
    evaluator: ristretto.Evaluator, data: str, blinded: str, evaluated: str, output: str
) -> None:
    assert evaluator.evaluate_known_input(bytes.fromhex(data)).hex() == output


@pytest.mark.parametrize(("data", "blinded", "evaluated", "output"), VECTORS)
def test_blind_evaluate_finalize_round_trip_gives_the_rfc_output(
    evaluator: ristretto.Evaluator, data: str, blinded: str, evaluated: str, output: str
) -> None:
    client, element = ristretto.Client.blind(bytes.fromhex(data))
    assert client.finalize(evaluator.evaluate(element), evaluator.public_key).hex() == output


def test_project_wrapper_finalises_to_the_unblinded_output() -> None:
    keys = LookupKeys.generate()
    b = blind(b"cifta-lookup-v1\x00GLOCK\x00BXKM417")
    evaluated, proof = keys.evaluate(b.element)
    out = finalize(b, evaluated, proof, keys.public())
    assert out == keys.output(b"cifta-lookup-v1\x00GLOCK\x00BXKM417")


def test_a_proof_from_the_wrong_key_is_refused() -> None:
    right, wrong = LookupKeys.generate(), LookupKeys.generate()
    b = blind(b"some firearm")
    evaluated, proof = wrong.evaluate(b.element)
    with pytest.raises(LookupCryptoError, match="proof"):
        finalize(b, evaluated, proof, right.public())


def test_a_tampered_evaluation_is_refused() -> None:
    keys = LookupKeys.generate()
    b = blind(b"some firearm")
    _, proof = keys.evaluate(b.element)
    other, _ = keys.evaluate(blind(b"another firearm").element)
    with pytest.raises(LookupCryptoError):
        finalize(b, other, proof, keys.public())


def test_a_public_key_that_is_not_a_group_element_is_refused() -> None:
    with pytest.raises(LookupCryptoError):
        OprfPublicKey.from_text(b64u(b"\xff" * 32))  # not a canonical ristretto255 encoding

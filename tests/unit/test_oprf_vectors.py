"""RFC 9497 Appendix A.1.2: ristretto255-SHA512, VOPRF mode, against the ``voprf`` package.

The package draws the blind and the proof's random scalar itself, so through it the vectors are
checked where they are deterministic: ``DeriveKeyPair`` (pkSm from Seed and KeyInfo),
``BlindEvaluate`` (the vectors' BlindedElement evaluates to their EvaluationElement),
``Evaluate``/``Finalize`` (Input gives Output), and a round trip refused under another key. The
rest (``Blind`` with the vectors' scalar, ``GenerateProof`` with their ProofRandomScalar, including
the batch of Test Vector 3, ``VerifyProof``, ``Finalize``) is reproduced byte for byte by an
independent reference written from the RFCs (``tests/support/ristretto.py``), which also verifies
the package's own proofs.
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
from tests.support import ristretto as reference

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


# -- every byte of the vectors, through the independent reference (tests/support/ristretto.py) --

SK_SM = "e6f73f344b79b379f1a0dd37e07ff62e38d9f71345ce62ae3a9bc60b04ccd909"
BLIND = ("64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706",
         "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e")  # fmt: skip
#: (Blind of each input, ProofRandomScalar, Proof) of Test Vectors 1, 2 and 3 (batch of both)
PROOFS = [
    ([0], "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e",
     "ddef93772692e535d1a53903db24367355cc2cc78de93b3be5a8ffcc6985dd06"
     "6d4346421d17bf5117a2a1ff0fcb2a759f58a539dfbe857a40bce4cf49ec600d"),
    ([1], "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e",
     "401a0da6264f8cf45bb2f5264bc31e109155600babb3cd4e5af7d181a2c9dc0a"
     "67154fabf031fd936051dec80b0b6ae29c9503493dde7393b722eafdf5a50b02"),
    ([0, 1], "419c4f4f5052c53c45f3da494d2b67b220d02118e0857cdbcf037f9ea84bbe0c",
     "cc203910175d786927eeb44ea847328047892ddf8590e723c37205cb74600b0a"
     "5ab5337c8eb4ceae0494c2cf89529dcf94572ed267473d567aeed6ab873dee08"),
]  # fmt: skip
#: Test Vector 3's second input is blinded with the second scalar
BATCH_BLINDED = "90a0145ea9da29254c3a56be4fe185465ebb3bf2a1801f7124bbbadac751e654"
BATCH_EVALUATED = "cc5ac221950a49ceaa73c8db41b82c20372a4c8d63e5dded2db920b7eee36a2a"


def _scalar(hex_le: str) -> int:
    return int.from_bytes(bytes.fromhex(hex_le), "little")


def _batch() -> tuple[list[bytes], list[bytes]]:
    """(BlindedElement, EvaluationElement) of Test Vector 3: input 00 with the first blind,
    input 5a x 17 with the second."""
    return (
        [bytes.fromhex(VECTORS[0][1]), bytes.fromhex(BATCH_BLINDED)],
        [bytes.fromhex(VECTORS[0][2]), bytes.fromhex(BATCH_EVALUATED)],
    )


def test_the_reference_derives_the_rfc_public_key_from_the_rfc_secret_key() -> None:
    assert reference.public_key(_scalar(SK_SM)).hex() == PK_SM


@pytest.mark.parametrize(("data", "blinded", "evaluated", "output"), VECTORS)
def test_blind_gives_the_rfc_blinded_element(
    data: str, blinded: str, evaluated: str, output: str
) -> None:
    assert reference.blind(bytes.fromhex(data), _scalar(BLIND[0])).hex() == blinded


def test_the_batch_vectors_second_blinded_element() -> None:
    second = reference.blind(bytes.fromhex(VECTORS[1][0]), _scalar(BLIND[1]))
    assert second.hex() == BATCH_BLINDED


@pytest.mark.parametrize(("which", "r", "proof"), PROOFS)
def test_generate_proof_gives_the_rfc_proof_and_it_verifies(
    which: list[int], r: str, proof: str
) -> None:
    if len(which) == 1:
        blinded = [bytes.fromhex(VECTORS[which[0]][1])]
        evaluated = [bytes.fromhex(VECTORS[which[0]][2])]
    else:
        blinded, evaluated = _batch()
    made = reference.generate_proof(_scalar(SK_SM), blinded, evaluated, _scalar(r))
    assert made.hex() == proof
    pk = bytes.fromhex(PK_SM)
    assert reference.verify_proof(pk, blinded, evaluated, bytes.fromhex(proof))
    other = [bytes.fromhex(BATCH_EVALUATED)] * len(blinded)  # another evaluation: refused
    assert not reference.verify_proof(pk, blinded, other, bytes.fromhex(proof))


@pytest.mark.parametrize(("data", "blinded", "evaluated", "output"), VECTORS)
def test_finalize_gives_the_rfc_output(
    data: str, blinded: str, evaluated: str, output: str
) -> None:
    got = reference.finalize(bytes.fromhex(data), _scalar(BLIND[0]), bytes.fromhex(evaluated))
    assert got.hex() == output


def test_the_packages_proofs_verify_under_the_independent_reference() -> None:
    """What the project sends (voprf's BlindEvaluate) is what RFC 9497 defines: another
    implementation verifies it, and refuses it under another key."""
    keys, other = LookupKeys.generate(), LookupKeys.generate()
    b = blind(b"cifta-lookup-v1\x00GLOCK\x008XKM417")
    evaluated, proof = keys.evaluate(b.element)
    assert reference.verify_proof(keys.public().raw, [b.element], [evaluated], proof)
    assert not reference.verify_proof(other.public().raw, [b.element], [evaluated], proof)

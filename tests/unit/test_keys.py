"""Key generation, key ids, private key files and public forms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.core.encoding import b64u
from services.core.keys import (
    EncryptionPublicKey,
    KeyFileError,
    NodeKeys,
    SigningPublicKey,
)


def test_key_file_is_written_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "MEX.key.json"
    NodeKeys.generate("MEX").save(path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_key_file_round_trip_keeps_every_key(tmp_path: Path) -> None:
    keys = NodeKeys.generate("MEX", post_quantum_signature=True).with_new_encryption_key()
    path = tmp_path / "MEX.key.json"
    keys.save(path)
    loaded = NodeKeys.load(path)
    assert loaded.public_bundle() == keys.public_bundle()
    assert loaded.signing.mldsa65 is not None


def test_passphrase_sealed_key_file_opens_only_with_the_passphrase(tmp_path: Path) -> None:
    keys = NodeKeys.generate("USA")
    path = tmp_path / "USA.key.json"
    keys.save(path, passphrase=b"correct horse battery staple")
    assert b"ed25519" not in path.read_bytes()
    with pytest.raises(KeyFileError, match="passphrase"):
        NodeKeys.load(path)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        NodeKeys.load(path, passphrase=b"wrong")
    loaded = NodeKeys.load(path, passphrase=b"correct horse battery staple")
    assert loaded.public_bundle() == keys.public_bundle()


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "COL.key.json"
    NodeKeys.generate("COL").save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        NodeKeys.load(path)


def test_damaged_key_file_is_refused_with_key_file_error(tmp_path: Path) -> None:
    path = tmp_path / "COL.key.json"
    path.write_text('{"format": "cifta-keys-v1", "party": "COL"}')
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="damaged"):
        NodeKeys.load(path)


def test_public_keys_round_trip_through_their_published_json_form() -> None:
    keys = NodeKeys.generate("MEX", post_quantum_signature=True)
    sig = keys.signing.public()
    enc = keys.current_encryption.public()
    assert SigningPublicKey.from_json(sig.to_json()).kid == sig.kid
    assert EncryptionPublicKey.from_json(enc.to_json()).raw() == enc.raw()
    assert len(enc.raw()) == 1184 + 32


def test_published_key_with_a_kid_that_does_not_match_is_refused() -> None:
    enc = NodeKeys.generate("MEX").current_encryption.public().to_json()
    enc["kid"] = "0" * 32
    with pytest.raises(ValueError, match="kid"):
        EncryptionPublicKey.from_json(enc)


def test_rotation_keeps_the_previous_encryption_key_until_dropped() -> None:
    keys = NodeKeys.generate("MEX")
    old_kid = keys.current_encryption.public().kid
    rotated = keys.with_new_encryption_key()
    assert rotated.current_encryption.public().kid != old_kid
    assert rotated.encryption_key(old_kid) is not None
    assert rotated.without_encryption_key(old_kid).encryption_key(old_kid) is None


def test_key_history_survives_the_sealed_key_file(tmp_path: Path) -> None:
    keys = NodeKeys.generate("MEX", post_quantum_signature=True)
    first_sig, first_enc = keys.signing.public(), keys.current_encryption.public().kid
    keys = keys.with_pending_signing_key().promote_pending_signing_key()
    keys = keys.with_new_encryption_key().retire_encryption_key(first_enc)
    path = tmp_path / "MEX.key.json"
    keys.save(path, passphrase=b"pass")
    loaded = NodeKeys.load(path, passphrase=b"pass")
    assert loaded.signing_public_key(first_sig.kid) == first_sig
    assert loaded.signing_public_key(keys.signing.public().kid) is not None
    assert loaded.encryption_key(first_enc) is not None
    # retired: kept to open what is stored, no longer published
    assert first_enc not in {k["kid"] for k in loaded.public_bundle()["encryption"]}
    assert b"mldsa65" not in path.read_bytes()


def test_a_replaced_signing_key_keeps_only_its_public_half() -> None:
    old = NodeKeys.generate("MEX")
    keys = old.with_pending_signing_key().promote_pending_signing_key()
    history = keys.private_json()["previous_signing"]
    assert history == [{"ed25519": b64u(old.signing.ed25519.public_key().public_bytes_raw())}]
    assert keys.signing_public_key("0" * 32) is None

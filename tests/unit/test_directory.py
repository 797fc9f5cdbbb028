"""The signed directory: what a node accepts, what it refuses, and the key lifecycle's records."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.directory import KeyStatus, SignedDirectoryEntry
from services.core.directory import (
    DirectoryError,
    DirectoryTrust,
    Refusal,
    RootPublicKey,
    registration_request,
    rotation_request,
    sign_entry,
)
from services.core.encoding import b64u, unb64u
from services.core.keys import NodeKeys
from services.directory.service import DirectoryService
from tests.support.hub import details

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(tmp_path: Path, clock: Clock) -> DirectoryService:
    return DirectoryService.open(tmp_path / "dir", tmp_path / "root.key.json", clock=clock)


def registered(service: DirectoryService, state: str, keys: NodeKeys | None = None) -> NodeKeys:
    keys = keys or NodeKeys.generate(state)
    service.register(registration_request(keys, details(state), service.clock()))
    return keys


def value(signed: SignedDirectoryEntry) -> bytes:
    return signed.model_dump_json().encode()


def test_a_node_accepts_an_entry_signed_by_its_pinned_root(service: DirectoryService) -> None:
    registered(service, "MEX")
    trust = DirectoryTrust(service.root)
    entry = trust.accept("MEX", value(service.signed("MEX")))  # type: ignore[arg-type]
    assert entry is not None and not isinstance(entry, Refusal)
    assert trust.directory().parties() == ["MEX"]


def test_a_forged_entry_is_refused(service: DirectoryService, tmp_path: Path) -> None:
    keys = registered(service, "MEX")
    impostor = DirectoryService.open(tmp_path / "other", tmp_path / "other.key.json")
    impostor.register(registration_request(keys, details("MEX"), T0))
    trust = DirectoryTrust(service.root)
    assert trust.accept("MEX", value(impostor.signed("MEX"))) == Refusal("MEX", "bad_signature")  # type: ignore[arg-type]
    # and an entry of the right root whose bytes were changed after signing
    genuine = service.signed("MEX")
    assert genuine is not None
    edited = unb64u(genuine.entry).replace(b"National point of contact", b"Someone else")
    tampered = genuine.model_copy(update={"entry": b64u(edited)})
    assert trust.accept("MEX", value(tampered)) == Refusal("MEX", "bad_signature")
    assert trust.directory().parties() == []


def test_an_entry_filed_under_another_party_is_refused(service: DirectoryService) -> None:
    registered(service, "MEX")
    trust = DirectoryTrust(service.root)
    assert trust.accept("USA", value(service.signed("MEX"))) == Refusal("USA", "wrong_party")  # type: ignore[arg-type]


def test_an_older_signed_entry_replayed_is_refused(service: DirectoryService, clock: Clock) -> None:
    registered(service, "MEX")
    old = service.signed("MEX")
    clock.now += timedelta(hours=1)
    service.update_contacts("MEX", {"point_of_contact": "Fiscalía General de la República"})
    new = service.signed("MEX")
    trust = DirectoryTrust(service.root)
    assert trust.accept("MEX", value(new)).version == 2  # type: ignore[arg-type, union-attr]
    assert trust.accept("MEX", value(old)) == Refusal("MEX", "older_version")  # type: ignore[arg-type]
    assert trust.accept("MEX", value(new)) is None  # the same version again: nothing to do  # type: ignore[arg-type]
    assert trust.directory().entries["MEX"].point_of_contact.startswith("Fiscalía")


def test_the_cache_is_verified_again_when_a_node_restarts(
    service: DirectoryService, tmp_path: Path
) -> None:
    registered(service, "MEX")
    cache = tmp_path / "node" / "directory.json"
    DirectoryTrust(service.root, cache=cache).accept("MEX", value(service.signed("MEX")))  # type: ignore[arg-type]
    assert DirectoryTrust(service.root, cache=cache).directory().parties() == ["MEX"]
    data = json.loads(cache.read_text())  # someone with access to the file edits an entry
    entry = unb64u(data["entries"][0]["entry"]).replace(b"Liaison officer", b"Impostor")
    data["entries"][0]["entry"] = b64u(entry)
    cache.write_text(json.dumps(data))
    with pytest.raises(DirectoryError, match="signature"):
        DirectoryTrust(service.root, cache=cache)
    other = RootPublicKey(NodeKeys.generate("SEC").signing.ed25519.public_key())
    with pytest.raises(DirectoryError):  # a cache that another root signed
        DirectoryTrust(other, cache=tmp_path / "node2" / "c.json").seed(service.all_signed())


def test_registration_needs_proof_of_possession_of_the_key(service: DirectoryService) -> None:
    keys = NodeKeys.generate("BRA")
    request = registration_request(keys, details("BRA"), T0)
    forged = request.model_copy(
        update={"signatures": [s.model_copy(update={"sig": "A" * 86}) for s in request.signatures]}
    )
    with pytest.raises(DirectoryError, match="not signed by the key it registers"):
        service.register(forged)
    assert service.entry("BRA") is None


def test_rotation_needs_the_current_key_and_keeps_the_old_keys_for_the_overlap(
    service: DirectoryService, clock: Clock
) -> None:
    keys = registered(service, "MEX")
    rotating = keys.with_pending_signing_key().with_new_encryption_key()
    clock.now += timedelta(days=1)
    thief = replace(rotating, signing=NodeKeys.generate("MEX").signing)
    with pytest.raises(DirectoryError, match="current signing key"):
        service.rotate(rotation_request(thief, clock.now, new_encryption=True))
    entry = service.rotate(
        rotation_request(rotating, clock.now, new_encryption=True), timedelta(days=30)
    )
    assert entry.keys is not None and entry.version == 2
    old_sig, new_sig = entry.keys.signing
    assert old_sig.status is KeyStatus.RETIRING and old_sig.valid_until == clock.now + timedelta(30)
    assert new_sig.kid == rotating.pending_signing.public().kid  # type: ignore[union-attr]
    directory = DirectoryTrust(service.root)
    directory.seed(service.all_signed())
    d = directory.directory()
    # new messages are sealed to the new encryption key; the old one still verifies until then
    assert d.encryption_key("MEX", clock.now).kid == rotating.current_encryption.public().kid
    assert d.signing_key("MEX", old_sig.kid) is not None
    assert d.active_signing_kid("MEX", clock.now) == new_sig.kid


def test_revocation_is_recorded_from_the_stated_time(
    service: DirectoryService, clock: Clock
) -> None:
    keys = registered(service, "MEX")
    at = T0 + timedelta(hours=3)
    entry = service.revoke("MEX", keys.signing.public().kid, at)
    assert entry.keys is not None
    record = entry.keys.signing[0]
    assert (record.status, record.revoked_at) == (KeyStatus.REVOKED, at)
    trust = DirectoryTrust(service.root)
    trust.seed(service.all_signed())
    sender = trust.directory().signing_key("MEX", keys.signing.public().kid)
    assert sender is not None and sender.revoked_at == at
    with pytest.raises(DirectoryError, match="no key"):
        service.revoke("MEX", "0" * 32, at)


def test_a_version_can_only_go_up(service: DirectoryService) -> None:
    registered(service, "MEX")
    entry = service.entry("MEX")
    assert entry is not None
    with pytest.raises(DirectoryError, match="not newer"):
        service._store(entry)
    assert sign_entry(entry, service._root).root_kid == service.root.kid

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
    DirectoryService.create_root_key(tmp_path / "root.key.json")
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
    DirectoryService.create_root_key(tmp_path / "other.key.json")
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
        service.rotate(rotation_request(thief, clock.now, new_encryption=True, base_version=1))
    entry = service.rotate(
        rotation_request(rotating, clock.now, new_encryption=True, base_version=1),
        timedelta(days=30),
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
    clock.now = T0 + timedelta(hours=4)  # recorded an hour after it took effect
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


def test_a_rotation_applies_once_to_the_version_it_was_asked_against(
    service: DirectoryService, clock: Clock
) -> None:
    keys = registered(service, "MEX")
    first = keys.with_new_encryption_key()
    request = rotation_request(first, clock.now, new_encryption=True, base_version=1)
    service.rotate(request)
    second = first.with_new_encryption_key()
    service.rotate(rotation_request(second, clock.now, new_encryption=True, base_version=2))
    with pytest.raises(DirectoryError, match="asked against version 1"):
        service.rotate(request)  # replayed: would make the replaced key current again
    d = DirectoryTrust(service.root)
    d.seed(service.all_signed())
    assert (
        d.directory().encryption_key("MEX", clock.now).kid == second.current_encryption.public().kid
    )


def test_a_key_once_listed_cannot_come_back_as_new(service: DirectoryService, clock: Clock) -> None:
    keys = registered(service, "MEX")
    old_enc = keys
    service.revoke("MEX", keys.current_encryption.public().kid, clock.now)
    comeback = rotation_request(old_enc, clock.now, new_encryption=True, base_version=2)
    with pytest.raises(DirectoryError, match="already in MEX's entry"):
        service.rotate(comeback)


def test_re_registration_needs_every_signing_key_revoked_and_keeps_the_history(
    service: DirectoryService, clock: Clock
) -> None:
    keys = registered(service, "MEX")
    with pytest.raises(DirectoryError, match="new keys come by rotation"):
        registered(service, "MEX")
    clock.now += timedelta(hours=1)
    service.revoke("MEX", keys.signing.public().kid, clock.now)
    fresh = registered(service, "MEX")
    entry = service.entry("MEX")
    assert entry is not None and entry.keys is not None and entry.version == 3
    kids = {r.kid: r.status for r in entry.keys.signing}
    assert kids == {
        keys.signing.public().kid: KeyStatus.REVOKED,
        fresh.signing.public().kid: KeyStatus.ACTIVE,
    }


def test_revocation_cannot_be_in_the_future_and_only_moves_earlier(
    service: DirectoryService, clock: Clock
) -> None:
    keys = registered(service, "MEX")
    kid = keys.signing.public().kid
    with pytest.raises(DirectoryError, match="future"):
        service.revoke("MEX", kid, clock.now + timedelta(hours=1))
    with pytest.raises(DirectoryError, match="time zone"):
        service.revoke("MEX", kid, clock.now.replace(tzinfo=None))
    service.revoke("MEX", kid, clock.now - timedelta(hours=2))
    entry = service.revoke("MEX", kid, clock.now)  # later: the earlier time stands
    assert entry.keys is not None
    assert entry.keys.signing[0].revoked_at == clock.now - timedelta(hours=2)


def test_the_secretariat_and_invalid_keys_are_never_signed_into_the_directory(
    service: DirectoryService,
) -> None:
    sec = NodeKeys.generate("SEC")
    with pytest.raises(DirectoryError, match="secretariat"):
        service.register(registration_request(sec, details("MEX"), T0))
    keys = NodeKeys.generate("BRA")
    request = registration_request(keys, details("BRA"), T0)
    from schemas.directory import RegistrationRequest

    body = RegistrationRequest.model_validate_json(unb64u(request.request))
    wrong = body.model_copy(
        update={"encryption_key": body.encryption_key.model_copy(update={"kid": "0" * 32})}  # type: ignore[union-attr]
    )
    from services.core.directory import sign_request

    with pytest.raises(DirectoryError, match="not valid"):
        service.register(sign_request("registration", wrong, [keys.signing]))
    assert service.entry("BRA") is None


def test_a_request_signed_as_one_kind_cannot_be_presented_as_the_other(
    service: DirectoryService,
) -> None:
    keys = NodeKeys.generate("BRA")
    request = registration_request(keys, details("BRA"), T0)
    relabelled = request.model_copy(update={"kind": "rotation"})
    with pytest.raises(DirectoryError):
        service.rotate(relabelled)


def test_a_node_switches_signing_key_when_listed_active_whatever_its_clock(
    service: DirectoryService, clock: Clock
) -> None:
    keys = registered(service, "MEX").with_pending_signing_key()
    clock.now += timedelta(hours=5)  # the secretariat's clock ahead of the node's
    service.rotate(rotation_request(keys, clock.now, new_encryption=False, base_version=1))
    d = DirectoryTrust(service.root)
    d.seed(service.all_signed())
    pending = keys.pending_signing.public().kid  # type: ignore[union-attr]
    assert d.directory().active_signing_kid("MEX", T0) != pending  # not yet valid by T0
    assert d.directory().lists_as_active("MEX", pending)

"""The secretariat reviews and approves registrations, revokes keys and reads entries' history,
against a real hub: approval needs the key id read out by telephone, never shown before."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.cli.main import main
from services.core.directory import registration_request
from services.core.keys import NodeKeys
from services.secretariat.directory_desk import DirectoryDesk, apply_to_hub
from services.secretariat.errors import ErrorCode, SecretariatError
from services.secretariat.network import network_view
from tests.support.hub import Hub, details


def file_registration(desk: DirectoryDesk, state: str) -> tuple[str, str]:
    """A state's registration filed for review: (request id, the signing key id it registers)."""
    keys = NodeKeys.generate(state)
    signed = registration_request(keys, details(state), datetime.now(UTC))
    pending = desk.file_request(signed.model_dump_json().encode())
    return pending.request_id, keys.signing.public().kid


def spoken(kid: str) -> str:
    """A key id as an operator types what was read out: upper case, in groups of four."""
    return " ".join(kid[i : i + 4].upper() for i in range(0, 32, 4))


async def test_a_registration_is_approved_only_with_the_key_id_read_out_by_telephone(
    hub: Hub,
) -> None:
    desk = DirectoryDesk(hub.home, hub.directory)
    request_id, kid = file_registration(desk, "BRA")
    pending = desk.pending()
    assert [(p.party, p.kind, p.known_party) for p in pending] == [("BRA", "registration", False)]
    # the review shows who asks, never the key id the operator must hear from the state
    assert kid not in pending[0].model_dump_json()
    assert pending[0].names is not None and pending[0].names.pt == "República Federativa do Brasil"

    wrong = NodeKeys.generate("BRA").signing.public().kid
    with pytest.raises(SecretariatError) as refused:
        desk.approve_registration(request_id, wrong)
    assert refused.value.code is ErrorCode.KEY_ID_MISMATCH
    assert kid not in repr(refused.value) and kid not in str(refused.value.params)
    with pytest.raises(SecretariatError) as malformed:
        desk.approve_registration(request_id, "1234")
    assert malformed.value.code is ErrorCode.KEY_ID_MALFORMED
    assert hub.directory.entry("BRA") is None and [p.party for p in desk.pending()] == ["BRA"]

    approval = desk.approve_registration(request_id, spoken(kid))
    assert (approval.party, approval.version, approval.new_state) == ("BRA", 1, True)
    assert desk.pending() == []
    assert "BRA" in hub.home.registry().codes()
    await apply_to_hub(desk, new_state="BRA")
    view = await network_view(hub.home, datetime.now(UTC))
    bra = next(s for s in view.states if s.state == "BRA")
    assert bra.provisioned and not bra.connected and bra.backlog == 0
    assert bra.storage_limit == hub.home.plan().state_disk


async def test_a_revocation_shows_in_the_entry_and_its_history(hub: Hub) -> None:
    desk = DirectoryDesk(hub.home, hub.directory)
    entry = next(e for e in desk.entries() if e.party == "COL")
    encryption = next(k for k in entry.keys if k.use == "encryption")
    desk.revoke("COL", encryption.kid)
    history = desk.history("COL")
    assert [h.version for h in history] == [1, 2]
    revoked = next(k for k in history[-1].keys if k.kid == encryption.kid)
    assert revoked.status == "revoked" and revoked.revoked_at is not None
    assert next(k for k in history[0].keys if k.kid == encryption.kid).status == "active"
    with pytest.raises(SecretariatError) as unknown:
        desk.revoke("COL", "0" * 32)
    assert unknown.value.code is ErrorCode.NO_SUCH_KEY


def test_a_file_that_is_not_a_signed_request_is_refused_with_a_code(hub_home: Hub) -> None:
    desk = DirectoryDesk(hub_home.home, hub_home.directory)
    for data in (b"{}", b"not json", b"x" * 70_000):
        with pytest.raises(SecretariatError) as refused:
            desk.file_request(data)
        assert refused.value.code in (ErrorCode.NOT_A_REQUEST, ErrorCode.REQUEST_TOO_LARGE)
    with pytest.raises(SecretariatError) as missing:
        desk.approve_registration("../../etc/passwd", "0" * 32)
    assert missing.value.code is ErrorCode.NO_SUCH_REQUEST
    assert desk.pending() == []


async def test_the_command_line_refuses_a_wrong_key_id_in_one_line_without_the_right_one(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = NodeKeys.generate("PAN")
    request = tmp_path / "PAN.request.json"
    request.write_text(
        registration_request(keys, details("PAN"), datetime.now(UTC)).model_dump_json()
    )
    kid = keys.signing.public().kid
    home = ["secretariat", "--hub-home", str(hub.home.root)]
    assert await asyncio.to_thread(main, [*home, "file-request", str(request)]) == 0
    request_id = capsys.readouterr().out.split()[1].rstrip(":")
    assert await asyncio.to_thread(main, [*home, "requests"]) == 0
    listed = capsys.readouterr().out
    assert request_id in listed and "PAN" in listed and kid not in listed
    wrong = ["approve", request_id, "--confirm", "f" * 32]
    assert await asyncio.to_thread(main, [*home, *wrong]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the one in PAN's request" in err and kid not in err
    right = ["approve", request_id, "--confirm", kid.upper()]
    assert await asyncio.to_thread(main, [*home, *right]) == 0
    assert "PAN: directory entry version 1 signed" in capsys.readouterr().out
    assert "PAN" in hub.home.registry().codes() and hub.directory.entry("PAN") is not None


def test_operator_accounts_live_in_the_hub_home_and_mistakes_are_one_line(
    hub_home: Hub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = ["secretariat", "--hub-home", str(hub_home.home.root)]
    monkeypatch.setenv("OPERATOR_PASSWORD", "a long enough passphrase")
    add = ["account", "add", "--login", "lucia", "--name", "Lucía Romero", "--position",
           "Oficial", "--role", "supervisor", "--password-env", "OPERATOR_PASSWORD"]  # fmt: skip
    assert main([*home, *add, "--lang", "en"]) == 0
    assert "lucia" in capsys.readouterr().out
    assert (hub_home.home.root / "secretariat" / "console.sqlite").stat().st_mode & 0o077 == 0
    assert main([*home, "account", "list", "--json"]) == 0
    assert '"role": "supervisor"' in capsys.readouterr().out
    bad = ["account", "add", "--login", "X", "--name", "a", "--position", "b", "--lang", "en"]
    assert main([*home, *bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "The login X is not valid" in err
    missing = ["secretariat", "--hub-home", str(hub_home.home.root / "none"), "console"]
    assert main(missing) == 2
    assert capsys.readouterr().err.count("\n") == 1

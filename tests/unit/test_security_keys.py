"""Security keys as the second factor: an enrolled key signs its officer in; a replayed answer,
a forged one, another officer's key, another origin, a spent or expired challenge, a counter
that did not go forward are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pyotp
import pytest

from services.core.accounts import AccountError, Accounts
from services.core.security_keys import CHALLENGE_TTL, RelyingParty, SecurityKeys
from services.node.accounts import open_accounts
from tests.support.authenticator import SoftAuthenticator
from tests.support.console import PASSWORD, Clock, officer

Stores = tuple[Accounts, SecurityKeys]
RP = RelyingParty(id="localhost", origin="http://localhost:8080", name="CIFTA Exchange")


@pytest.fixture
def stores(tmp_path: Path) -> Stores:
    accounts, database = open_accounts(tmp_path / "store.sqlite")
    return accounts, SecurityKeys(database)


def _enrolled(
    accounts: Accounts, keys: SecurityKeys, clock: Clock, login: str = "ana"
) -> SoftAuthenticator:
    o = officer(login)
    accounts.add(
        login=login, name=o.name, position=o.position, agency=o.agency, language="pt",
        role="officer", password=PASSWORD, now=clock.now, totp_secret=o.secret,
    )  # fmt: skip
    signed = accounts.authenticate(login, PASSWORD, pyotp.TOTP(o.secret).at(clock.now), clock.now)
    session = accounts.open_session(signed, clock.now)
    device = SoftAuthenticator(origin=RP.origin)
    options = keys.registration_options(signed, session, RP, clock.now)
    keys.register(signed, session, device.create(options), RP, clock.now)
    return device


def _key_session(accounts: Accounts, login: str, clock: Clock) -> str:
    signed = accounts.authenticate(login, PASSWORD, None, clock.now, with_key=True)
    return accounts.open_session(signed, clock.now, awaiting_key=True)


def test_an_enrolled_key_completes_a_sign_in_begun_with_the_password(stores: Stores) -> None:
    accounts, keys = stores
    clock = Clock()
    device = _enrolled(accounts, keys, clock)
    assert keys.enrolled("ana") and keys.of("ana")[0].transports == ("usb",)
    token = _key_session(accounts, "ana", clock)
    half = accounts.session(token, clock.now)
    assert half is not None and not half.complete and half.pending_totp is None
    options = keys.authentication_options("ana", token, RP, clock.now)
    assert json.loads(options)["userVerification"] == "preferred"
    used = keys.authenticate("ana", token, device.get(options), RP, clock.now)
    assert used.sign_count == 1
    completed = accounts.complete_session(token, clock.now)
    done = accounts.session(completed.token, clock.now)
    assert done is not None and done.complete
    # session fixation: the half-open session's token opens nothing once it is complete
    assert completed.token != token and accounts.session(token, clock.now) is None
    assert done.csrf_token != half.csrf_token


def test_a_replayed_answer_is_refused_its_challenge_is_spent(stores: Stores) -> None:
    accounts, keys = stores
    clock = Clock()
    device = _enrolled(accounts, keys, clock)
    token = _key_session(accounts, "ana", clock)
    answer = device.get(keys.authentication_options("ana", token, RP, clock.now))
    keys.authenticate("ana", token, answer, RP, clock.now)
    with pytest.raises(AccountError) as spent:
        keys.authenticate("ana", token, answer, RP, clock.now)
    assert spent.value.code == "key.expired"
    keys.authentication_options("ana", token, RP, clock.now)  # a fresh challenge: still refused
    with pytest.raises(AccountError) as replayed:
        keys.authenticate("ana", token, answer, RP, clock.now)
    assert replayed.value.code == "key.refused"


def test_a_forged_signature_another_origin_or_a_counter_gone_back_is_refused(
    stores: Stores,
) -> None:
    accounts, keys = stores
    clock = Clock()
    device = _enrolled(accounts, keys, clock)
    token = _key_session(accounts, "ana", clock)
    impostor = SoftAuthenticator(origin=RP.origin, credential_id=device.credential_id)
    for forger in (impostor, SoftAuthenticator(origin="http://evil.example", key=device.key,
                                               credential_id=device.credential_id)):  # fmt: skip
        options = keys.authentication_options("ana", token, RP, clock.now)
        with pytest.raises(AccountError) as refused:
            keys.authenticate("ana", token, forger.get(options), RP, clock.now)
        assert refused.value.code == "key.refused"
    keys.authenticate("ana", token, device.get(keys.authentication_options(
        "ana", token, RP, clock.now)), RP, clock.now)  # fmt: skip
    device.counter = 0  # a clone of the key, behind the original's counter
    with pytest.raises(AccountError) as cloned:
        keys.authenticate("ana", token, device.get(keys.authentication_options(
            "ana", token, RP, clock.now)), RP, clock.now)  # fmt: skip
    assert cloned.value.code == "key.refused"


def test_another_officers_key_or_session_does_not_sign_in(stores: Stores) -> None:
    accounts, keys = stores
    clock = Clock()
    _enrolled(accounts, keys, clock, "ana")
    bruno_key = _enrolled(accounts, keys, clock, "bruno")
    token = _key_session(accounts, "ana", clock)
    options = keys.authentication_options("ana", token, RP, clock.now)
    with pytest.raises(AccountError) as foreign:
        keys.authenticate("ana", token, bruno_key.get(options), RP, clock.now)
    assert foreign.value.code == "key.refused"
    other = _key_session(accounts, "bruno", clock)  # bound to the session that asked
    answer = bruno_key.get(keys.authentication_options("bruno", token, RP, clock.now))
    with pytest.raises(AccountError) as unbound:
        keys.authenticate("bruno", other, answer, RP, clock.now)
    assert unbound.value.code == "key.expired"


def test_a_challenge_expires(stores: Stores) -> None:
    accounts, keys = stores
    clock = Clock()
    device = _enrolled(accounts, keys, clock)
    token = _key_session(accounts, "ana", clock)
    answer = device.get(keys.authentication_options("ana", token, RP, clock.now))
    clock.advance(CHALLENGE_TTL.total_seconds() + 1)
    with pytest.raises(AccountError) as late:
        keys.authenticate("ana", token, answer, RP, clock.now)
    assert late.value.code == "key.expired"


def test_a_key_is_enrolled_once_and_removed_by_an_administrator(stores: Stores) -> None:
    accounts, keys = stores
    clock = Clock()
    device = _enrolled(accounts, keys, clock)
    ana = accounts.get("ana")
    token = accounts.open_session(ana, clock.now)
    options = json.loads(keys.registration_options(ana, token, RP, clock.now))
    assert [c["id"] for c in options["excludeCredentials"]] != []
    with pytest.raises(AccountError):
        keys.register(ana, token, device.create(options), RP, clock.now)
    assert keys.counts() == {"ana": 1}
    assert accounts.session(token, clock.now) is not None
    assert keys.remove_all("ana") == 1 and not keys.enrolled("ana")
    # a lost or stolen key may have opened a session: removing the keys ends them all
    assert accounts.session(token, clock.now) is None
    with pytest.raises(AccountError) as none:
        keys.authentication_options("ana", token, RP, clock.now)
    assert none.value.code == "key.none"


def test_the_password_alone_never_completes_a_session(stores: Stores) -> None:
    accounts, keys = stores
    clock = Clock()
    _enrolled(accounts, keys, clock)
    with pytest.raises(AccountError):
        accounts.authenticate("ana", "not the password at all", None, clock.now, with_key=True)
    token = _key_session(accounts, "ana", clock)
    session = accounts.session(token, clock.now)
    assert session is not None and not session.complete

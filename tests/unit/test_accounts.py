"""Officer accounts: Argon2id passwords, TOTP with no replay, lockout, disabling, reset."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyotp
import pytest

from services.core.accounts import MAX_FAILURES, AccountError, Accounts, Role, SignInRefused
from services.core.totp_vault import is_sealed
from services.node.accounts import open_accounts
from tests.support.console import PASSWORD, Clock, officer


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return open_accounts(tmp_path / "store.sqlite")[0]


def _add(accounts: Accounts, clock: Clock, login: str = "ana", enrolled: bool = True) -> str:
    o = officer(login)
    accounts.add(
        login=login, name=o.name, position=o.position, agency=o.agency, language="pt",
        role="supervisor", password=PASSWORD, now=clock.now,
        totp_secret=o.secret if enrolled else None,
    )  # fmt: skip
    return o.secret


def test_password_is_stored_as_argon2id_never_in_clear(accounts: Accounts, tmp_path: Path) -> None:
    _add(accounts, Clock())
    raw = (tmp_path / "store.sqlite").read_bytes()
    assert PASSWORD.encode() not in raw
    stored = (
        open_accounts(tmp_path / "store.sqlite")[1]
        .db.execute("SELECT password_hash FROM officers")
        .fetchone()[0]
    )
    assert stored.startswith("$argon2id$")


def test_sign_in_needs_password_and_current_code_and_a_code_is_never_accepted_twice(
    accounts: Accounts,
) -> None:
    clock = Clock()
    secret = _add(accounts, clock)
    code = pyotp.TOTP(secret).at(clock.now)
    with pytest.raises(AccountError) as no_code:
        accounts.authenticate("ana", PASSWORD, None, clock.now)
    assert no_code.value.code == "login.refused"
    signed = accounts.authenticate("ana", PASSWORD, code, clock.now)
    assert signed.role is Role.SUPERVISOR and signed.identity()["name"] == "Ana Pérez"
    with pytest.raises(AccountError):  # RFC 6238 5.2: the same code again is refused
        accounts.authenticate("ana", PASSWORD, code, clock.now)
    clock.advance(30)
    accounts.authenticate("ana", PASSWORD, pyotp.TOTP(secret).at(clock.now), clock.now)


def test_failures_lock_the_account_even_for_the_right_password(accounts: Accounts) -> None:
    clock = Clock()
    secret = _add(accounts, clock)
    for _ in range(MAX_FAILURES):
        with pytest.raises(AccountError) as refused:
            accounts.authenticate("ana", "wrong password!", "000000", clock.now)
        assert refused.value.code == "login.refused"
    clock.advance(30)
    with pytest.raises(SignInRefused) as locked:
        accounts.authenticate("ana", PASSWORD, pyotp.TOTP(secret).at(clock.now), clock.now)
    # told apart only in the record: a stranger gets the same answer as for a wrong password
    assert locked.value.code == "login.refused" and locked.value.reason == "locked"
    clock.advance(timedelta(minutes=15).total_seconds() + 30)
    accounts.authenticate("ana", PASSWORD, pyotp.TOTP(secret).at(clock.now), clock.now)


def test_disabling_ends_the_sessions_at_once(accounts: Accounts) -> None:
    clock = Clock()
    _add(accounts, clock)
    token = accounts.open_session(accounts.get("ana"), clock.now)
    assert accounts.session(token, clock.now) is not None
    accounts.disable("ana", clock.now)
    assert accounts.session(token, clock.now) is None


def test_a_session_ends_after_idle_time(accounts: Accounts) -> None:
    clock = Clock()
    _add(accounts, clock)
    token = accounts.open_session(accounts.get("ana"), clock.now)
    clock.advance(31 * 60)
    assert accounts.session(token, clock.now) is None


def test_unenrolled_officer_gets_a_session_that_must_enrol_first(accounts: Accounts) -> None:
    clock = Clock()
    _add(accounts, clock, enrolled=False)
    officer_ = accounts.authenticate("ana", PASSWORD, None, clock.now)
    token = accounts.open_session(officer_, clock.now)
    session = accounts.session(token, clock.now)
    assert session is not None and not session.complete and session.pending_totp
    with pytest.raises(AccountError) as wrong:
        accounts.enrol(token, "12345", clock.now)
    assert wrong.value.code == "login.totp_wrong" and wrong.value.params["typed"] == "12345"
    completed = accounts.enrol(token, pyotp.TOTP(session.pending_totp).at(clock.now), clock.now)
    again = accounts.session(completed.token, clock.now)
    assert again is not None and again.complete and accounts.get("ana").enrolled
    # session fixation: the half-open session's token opens nothing once it is complete
    assert completed.token != token and accounts.session(token, clock.now) is None
    assert again.csrf_token != session.csrf_token


def test_a_second_half_open_session_cannot_replace_an_enrolled_second_factor(
    accounts: Accounts,
) -> None:
    """Someone with the password signs in before the officer and waits; the officer enrols; the
    waiting session's enrolment is refused and the officer's own factor still works."""
    clock = Clock()
    _add(accounts, clock, enrolled=False)
    who = accounts.authenticate("ana", PASSWORD, None, clock.now)
    intruder = accounts.open_session(who, clock.now)
    officer_token = accounts.open_session(who, clock.now)
    intruder_secret = accounts.session(intruder, clock.now).pending_totp  # type: ignore[union-attr]
    officer_secret = accounts.session(officer_token, clock.now).pending_totp  # type: ignore[union-attr]
    assert intruder_secret and officer_secret and intruder_secret != officer_secret
    accounts.enrol(officer_token, pyotp.TOTP(officer_secret).at(clock.now), clock.now)
    assert accounts.session(intruder, clock.now) is None  # ended by the officer's enrolment
    with pytest.raises(AccountError) as late:
        accounts.enrol(intruder, pyotp.TOTP(intruder_secret).at(clock.now), clock.now)
    assert late.value.code == "session.expired"
    clock.now += timedelta(seconds=30)
    code = pyotp.TOTP(officer_secret).at(clock.now)
    assert accounts.authenticate("ana", PASSWORD, code, clock.now).login == "ana"


def test_reset_password_requires_a_new_second_factor(accounts: Accounts) -> None:
    clock = Clock()
    _add(accounts, clock)
    accounts.reset_password("ana", "another long password", clock.now)
    assert not accounts.get("ana").enrolled
    assert accounts.authenticate("ana", "another long password", None, clock.now).login == "ana"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("login", "Ana Ruiz", "officer.login_format"),
        ("role", "chief", "officer.role_unknown"),
        ("language", "de", "officer.language_unknown"),
        ("password", "short", "officer.password_short"),
        ("name", "  ", "officer.field_required"),
    ],
)
def test_bad_profile_is_refused_with_a_code_naming_what_was_typed(
    accounts: Accounts, field: str, value: str, code: str
) -> None:
    profile = {"login": "ana", "name": "Ana", "position": "Analista", "agency": "PF",
               "language": "pt", "role": "officer", "password": PASSWORD}  # fmt: skip
    profile[field] = value
    with pytest.raises(AccountError) as refused:
        accounts.add(**profile, now=Clock().now)
    assert refused.value.code == code


def test_actions_are_recorded_under_the_structured_identity(accounts: Accounts) -> None:
    clock = Clock()
    _add(accounts, clock)
    accounts.record("ana", "message_opened", clock.now, msg_id="0193")
    [action] = accounts.actions("ana")
    assert action["identity"] == {
        "name": "Ana Pérez", "position": "Oficial de enlace",
        "agency": "Fiscalía General de la República",
    }  # fmt: skip
    assert action["action"] == "message_opened" and action["detail"] == {"msg_id": "0193"}


def test_unknown_login_wrong_password_and_locked_account_are_refused_alike(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same code and parameters for all three, and an Argon2 verification for each (a dummy
    hash for the unknown login), so neither the answer nor its time tells which logins exist."""
    import services.core.accounts as module

    verified: list[str] = []
    real = module.verify_password

    def counting(password_hash: str, password: str) -> bool:
        verified.append(password_hash[:10])
        return real(password_hash, password)

    monkeypatch.setattr(module, "verify_password", counting)
    clock = Clock()
    _add(accounts, clock)
    answers = {}
    for login, password in (("nobody", PASSWORD), ("ana", "wrong password!")):
        with pytest.raises(SignInRefused) as refused:
            accounts.authenticate(login, password, "000000", clock.now)
        answers[refused.value.reason] = (refused.value.code, refused.value.params)
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInRefused):
            accounts.authenticate("ana", "wrong password!", "000000", clock.now)
    with pytest.raises(SignInRefused) as locked:
        accounts.authenticate("ana", PASSWORD, "000000", clock.now)
    answers[locked.value.reason] = (locked.value.code, locked.value.params)
    assert set(answers) == {"unknown_login", "wrong_password", "locked"}
    assert len(set(map(repr, answers.values()))) == 1
    assert answers["locked"] == ("login.refused", {"failures": MAX_FAILURES, "minutes": 15})
    assert len(verified) == 2 + MAX_FAILURES + 1
    assert all(h.startswith("$argon2id$") for h in verified)


def test_totp_secrets_are_sealed_in_the_store_and_sign_in_still_works(tmp_path: Path) -> None:
    import sqlite3

    accounts = open_accounts(tmp_path / "store.sqlite")[0]
    clock = Clock()
    secret = _add(accounts, clock)
    _add(accounts, clock, "bia", enrolled=False)
    bia = accounts.authenticate("bia", PASSWORD, None, clock.now)
    pending = accounts.open_session(bia, clock.now)
    raw = sqlite3.connect(tmp_path / "store.sqlite")
    stored = raw.execute("SELECT totp_secret FROM officers WHERE login = 'ana'").fetchone()[0]
    waiting = raw.execute("SELECT pending_totp FROM console_sessions").fetchone()[0]
    assert is_sealed(stored) and secret not in stored and is_sealed(waiting)
    assert secret.encode() not in (tmp_path / "store.sqlite").read_bytes()
    key = tmp_path / "console-totp.key"
    assert key.stat().st_mode & 0o777 == 0o600
    clock.advance(30)
    assert accounts.authenticate("ana", PASSWORD, pyotp.TOTP(secret).at(clock.now), clock.now)
    assert accounts.session(pending, clock.now).pending_totp  # type: ignore[union-attr]


def test_a_store_with_base32_secrets_is_sealed_when_opened(tmp_path: Path) -> None:
    """The migration: rows an earlier version wrote in base32 are sealed at the next open."""
    import sqlite3

    accounts = open_accounts(tmp_path / "store.sqlite")[0]
    clock = Clock()
    secret = _add(accounts, clock)
    raw = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None)
    raw.execute("UPDATE officers SET totp_secret = ? WHERE login = 'ana'", (secret,))
    reopened = open_accounts(tmp_path / "store.sqlite")[0]
    stored = raw.execute("SELECT totp_secret FROM officers WHERE login = 'ana'").fetchone()[0]
    assert is_sealed(stored) and secret not in stored
    clock.advance(30)
    assert reopened.authenticate("ana", PASSWORD, pyotp.TOTP(secret).at(clock.now), clock.now)


def test_a_store_restored_without_its_key_refuses_the_second_factor_plainly(
    tmp_path: Path,
) -> None:
    """The key file lost: sign-in is refused like any other (no crash), its reason recorded;
    a password reset gives the officer a new second factor."""
    accounts = open_accounts(tmp_path / "store.sqlite")[0]
    clock = Clock()
    secret = _add(accounts, clock)
    (tmp_path / "console-totp.key").unlink()
    # the administrator resetting passwords is the recovery (a console refuses to open)
    restored = open_accounts(tmp_path / "store.sqlite", recovering=True)[0]
    with pytest.raises(SignInRefused) as refused:
        restored.authenticate("ana", PASSWORD, pyotp.TOTP(secret).at(clock.now), clock.now)
    assert refused.value.reason == "second_factor_unreadable"
    restored.reset_password("ana", PASSWORD, clock.now)
    assert restored.authenticate("ana", PASSWORD, None, clock.now).login == "ana"


def test_a_code_used_while_another_sign_in_verified_its_password_is_not_accepted_again(
    accounts: Accounts,
) -> None:
    """The console verifies passwords off its event loop: two sign-ins with the same code may
    overlap. The second is concluded on the row as it is then, so the code counts once."""
    clock = Clock()
    secret = _add(accounts, clock)
    code = pyotp.TOTP(secret).at(clock.now)
    first, second = accounts.sign_in_attempt("ana"), accounts.sign_in_attempt("ana")
    assert accounts.conclude(first, True, code, clock.now).login == "ana"
    with pytest.raises(SignInRefused) as replayed:
        accounts.conclude(second, True, code, clock.now)
    assert replayed.value.reason == "wrong_code"


def test_a_lost_totp_key_is_said_rather_than_replaced(tmp_path: Path) -> None:
    """Deleting the key beside a store that holds sealed secrets must not quietly make a new
    key (every officer would then be refused as for a wrong code): opening says what is missing
    and what to do."""
    accounts = open_accounts(tmp_path / "store.sqlite")[0]
    _add(accounts, Clock())
    (tmp_path / "console-totp.key").unlink()
    with pytest.raises(AccountError) as missing:
        open_accounts(tmp_path / "store.sqlite")
    assert missing.value.code == "accounts.totp_key_missing"
    assert not (tmp_path / "console-totp.key").exists()
    # a store without sealed secrets (no officer enrolled yet) makes its key as before
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    open_accounts(fresh / "store.sqlite")
    assert (fresh / "console-totp.key").exists()

"""Officer accounts of a console: who may sign in, with which role, and what each one did.

Shared by the node (its officers, ``cifta officer ...`` and the officer console) and by the
secretariat's console: the tables live in the owner's SQLite store (the node's migration 9 creates
them), and this repository works on any :class:`AccountDatabase`. Passwords are Argon2id hashes
(RFC 9106, argon2-cffi's defaults); the second factor is TOTP (RFC 6238, 30-second steps, six
digits) whose last used step is kept so that a code is never accepted twice (RFC 6238 5.2), and
whose secret is kept sealed (services/core/totp_vault.py), never in base32.
Sessions are server-side: the cookie holds a random token, the store its SHA-256 only, so a
disabled officer's sessions end at once and a copied store opens none.

Every method takes ``now``: time is passed in, never read here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.core.totp_vault import PREFIX as SEALED_PREFIX
from services.core.totp_vault import KeyFileRefused, TotpVault, VaultError, is_sealed

LOGIN_PATTERN: Final = re.compile(r"[a-z0-9._-]{3,32}")
MIN_PASSWORD: Final = 12
#: Consecutive failures that lock an account, and for how long (OWASP ASVS 2.2.1).
MAX_FAILURES: Final = 5
LOCKOUT: Final = timedelta(minutes=15)
#: A session ends after this long unused, and in any case after its absolute lifetime.
IDLE_TIMEOUT: Final = timedelta(minutes=30)
ABSOLUTE_LIFETIME: Final = timedelta(hours=12)
TOTP_STEP_S: Final = 30

_HASHER: Final = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the login is unknown, so both cases take the same time. Made on
    first use, not at import: every ``cifta`` command imports this module."""
    return _HASHER.hash(secrets.token_urlsafe(16))


class Role(StrEnum):
    OFFICER = "officer"
    #: answers Art. XII consent requests and approves H2/H3 releases, Art. XVIII consents
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


def holds_sealed_secrets(db: sqlite3.Connection) -> bool:
    """Whether the accounts' store holds a TOTP secret sealed under its vault's key."""
    row = db.execute(
        "SELECT 1 FROM officers WHERE substr(totp_secret, 1, ?) = ? LIMIT 1",
        (len(SEALED_PREFIX), SEALED_PREFIX),
    ).fetchone()
    return row is not None


class AccountError(Exception):
    """A refused account operation: ``code`` and ``params`` for :func:`services.i18n.translate`."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def open_vault(key_file: Path) -> TotpVault:
    """The vault whose key is in ``key_file`` (made if missing); :class:`AccountError` when
    the key file must not be used (readable by others, another user's, damaged)."""
    try:
        return TotpVault.at(key_file)
    except KeyFileRefused as exc:
        raise AccountError(exc.code, **exc.params) from None


class SignInRefused(AccountError):
    """A refused sign-in. The person is told only ``login.refused``, the same for an unknown
    login, a wrong password or code, a disabled or a locked account (OWASP ASVS 2.2.1, 3.2.2:
    no answer tells a stranger which logins exist); ``reason`` is for the record alone."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "login.refused", failures=MAX_FAILURES, minutes=int(LOCKOUT.total_seconds() // 60)
        )
        self.reason = reason


@dataclass(frozen=True)
class SignInAttempt:
    """A login looked up before its password is checked: the hash to verify the password
    against (a dummy one for an unknown login, so both take the same time) and the row."""

    login: str
    password_hash: str
    row: sqlite3.Row | None


class AccountDatabase(Protocol):
    """The store the tables live in: a connection for reads, a transaction for writes."""

    @property
    def db(self) -> sqlite3.Connection: ...

    def tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...


@dataclass(frozen=True)
class Officer:
    """An officer as recorded: the structured identity every action is recorded under."""

    login: str
    name: str
    position: str
    agency: str
    language: str
    role: Role
    enrolled: bool
    disabled: bool
    locked_until: datetime | None

    def identity(self) -> dict[str, str]:
        """Name, position and agency, as audit records carry them."""
        return {"name": self.name, "position": self.position, "agency": self.agency}

    def may(self, role: Role | str) -> bool:
        """Whether this officer holds ``role`` (an administrator holds every role)."""
        role = Role(role)
        return (
            self.role is role
            or self.role is Role.ADMIN
            or (role is Role.OFFICER and self.role is Role.SUPERVISOR)
        )


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its officer, its CSRF token, and whether the second factor is done."""

    officer: Officer
    csrf_token: str
    complete: bool
    pending_totp: str | None


@dataclass(frozen=True)
class Completed:
    """A session its second factor completed: the officer, and the session's new token. The
    token it had while half-open opens nothing any more (session fixation: OWASP ASVS 3.2.1,
    a new token at authentication), nor does its CSRF token."""

    officer: Officer
    token: str


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def totp_counter(secret: str, code: str, now: datetime) -> int | None:
    """The time step at which ``code`` is valid for ``secret`` (one step of drift either way,
    RFC 6238 5.2), or None."""
    totp = pyotp.TOTP(secret, interval=TOTP_STEP_S)
    current = int(now.timestamp()) // TOTP_STEP_S
    for counter in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.generate_otp(counter), code):
            return counter
    return None


def totp_uri(secret: str, login: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the enrolment QR code."""
    return pyotp.TOTP(secret, interval=TOTP_STEP_S).provisioning_uri(name=login, issuer_name=issuer)


class Accounts:
    """The officers of one store, their sessions and their recorded actions."""

    def __init__(self, database: AccountDatabase, vault: TotpVault) -> None:
        self._database = database
        self._vault = vault
        self._seal_plain_secrets()

    def console_key(self, purpose: str) -> bytes:
        """A key of the console these accounts belong to, for ``purpose`` alone (derived from
        the key that seals their TOTP secrets: one secret file per console)."""
        return self._vault.derive(f"cifta console {purpose}")

    def _seal_plain_secrets(self) -> None:
        """Seal the TOTP secrets a store written by an earlier version keeps in base32 (a data
        migration, run on every open: once sealed, nothing is left to do)."""
        db = self._database.db
        officers = db.execute(
            "SELECT login, totp_secret FROM officers WHERE totp_secret IS NOT NULL"
        ).fetchall()
        pending = db.execute(
            "SELECT token_sha256, login, pending_totp FROM console_sessions"
            " WHERE pending_totp IS NOT NULL"
        ).fetchall()
        officers = [r for r in officers if not is_sealed(r["totp_secret"])]
        pending = [r for r in pending if not is_sealed(r["pending_totp"])]
        if not officers and not pending:
            return
        with self._database.tx() as tx:
            for r in officers:
                tx.execute(
                    "UPDATE officers SET totp_secret = ? WHERE login = ? AND totp_secret = ?",
                    (self._vault.seal(r["totp_secret"], r["login"]), r["login"], r["totp_secret"]),
                )
            for r in pending:
                tx.execute(
                    "UPDATE console_sessions SET pending_totp = ? WHERE token_sha256 = ?",
                    (self._vault.seal(r["pending_totp"], r["login"]), r["token_sha256"]),
                )

    # -- officers -----------------------------------------------------------------------------

    def add(
        self, *, login: str, name: str, position: str, agency: str, language: str, role: str,
        password: str, now: datetime, totp_secret: str | None = None,
    ) -> Officer:  # fmt: skip
        """Create an officer; the second factor is enrolled at first sign-in unless
        ``totp_secret`` is given (demo accounts)."""
        _check_profile(login, name, position, agency, language, role)
        _check_password(password)
        try:
            with self._database.tx() as db:
                db.execute(
                    "INSERT INTO officers (login, name, position, agency, language, role, "
                    "password_hash, totp_secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (login, name.strip(), position.strip(), agency.strip(), language, role,
                     _HASHER.hash(password),
                     None if totp_secret is None else self._vault.seal(totp_secret, login),
                     _iso(now)),
                )  # fmt: skip
        except sqlite3.IntegrityError:
            raise AccountError("officer.exists", login=login) from None
        return self.get(login)

    def get(self, login: str) -> Officer:
        row = self._database.db.execute("SELECT * FROM officers WHERE login = ?", (login,))
        found = row.fetchone()
        if found is None:
            raise AccountError("officer.unknown", login=login)
        return _officer(found)

    def officers(self) -> list[Officer]:
        """Every officer, by login."""
        rows = self._database.db.execute("SELECT * FROM officers ORDER BY login")
        return [_officer(r) for r in rows.fetchall()]

    def disable(self, login: str, now: datetime) -> Officer:
        """Disable an officer and end every session of theirs at once."""
        self.get(login)
        with self._database.tx() as db:
            db.execute("UPDATE officers SET disabled_at = ? WHERE login = ?", (_iso(now), login))
            db.execute("DELETE FROM console_sessions WHERE login = ?", (login,))
        return self.get(login)

    def reset_password(self, login: str, password: str, now: datetime) -> Officer:
        """Set a new password, unlock, end the sessions, and require a new second factor."""
        self.get(login)
        _check_password(password)
        with self._database.tx() as db:
            db.execute(
                "UPDATE officers SET password_hash = ?, totp_secret = NULL, totp_last_counter = 0,"
                " failed_attempts = 0, locked_until = NULL WHERE login = ?",
                (_HASHER.hash(password), login),
            )
            db.execute("DELETE FROM console_sessions WHERE login = ?", (login,))
        return self.get(login)

    # -- signing in ---------------------------------------------------------------------------

    def authenticate(
        self, login: str, password: str, code: str | None, now: datetime, *,
        with_key: bool = False,
    ) -> Officer:  # fmt: skip
        """The officer whose password (and, once enrolled, current TOTP code) these are.

        ``with_key``: the second factor is a security key the caller checks next
        (services/core/security_keys.py): the password alone is checked here, and only a
        session awaiting the key (:meth:`open_session`'s ``awaiting_key``) may follow.

        Raises :class:`SignInRefused` without saying which part was wrong, or that the account
        is locked; every failure counts towards the lockout. A console runs the three steps
        itself, the password's verification off its event loop (services/console/web/auth.py).
        """
        attempt = self.sign_in_attempt(login)
        ok = verify_password(attempt.password_hash, password)
        return self.conclude(attempt, ok, code, now, with_key=with_key)

    def sign_in_attempt(self, login: str) -> SignInAttempt:
        """The first step of a sign-in: the hash ``login``'s password is verified against."""
        row = self._database.db.execute(
            "SELECT * FROM officers WHERE login = ?", (login,)
        ).fetchone()
        return SignInAttempt(login, _dummy_hash() if row is None else row["password_hash"], row)

    def conclude(
        self, attempt: SignInAttempt, password_ok: bool, code: str | None, now: datetime, *,
        with_key: bool = False,
    ) -> Officer:  # fmt: skip
        """The last step: the officer, once the password verified and the code is current (or,
        ``with_key``, the security key is asked next); otherwise :class:`SignInRefused` with the
        real reason, the failure counted."""
        if attempt.row is None:
            raise SignInRefused("unknown_login")
        # Read again: other sign-ins may have run while the password was verified (a code used
        # meanwhile must not be accepted twice, a lockout decided meanwhile holds).
        row = self._database.db.execute(
            "SELECT * FROM officers WHERE login = ?", (attempt.login,)
        ).fetchone()
        if row is None or row["password_hash"] != attempt.password_hash:
            raise SignInRefused("changed_meanwhile")
        officer = _officer(row)
        if officer.locked_until is not None and officer.locked_until > now:
            # Checked after the password's verification, so a locked account takes as long
            # to refuse as any other; not counted, so the lockout does not grow under attack.
            raise SignInRefused("locked")
        reason = "disabled" if officer.disabled else None if password_ok else "wrong_password"
        counter: int | None = None
        if reason is None and officer.enrolled and not with_key:
            try:
                secret = self._vault.open(row["totp_secret"], officer.login)
            except VaultError:  # a store restored without its key: reset-password mends it
                raise SignInRefused("second_factor_unreadable") from None
            counter = totp_counter(secret, (code or "").strip(), now)
            if counter is None or counter <= row["totp_last_counter"]:
                reason = "wrong_code"
        if reason is not None:
            self._failed(officer, now)
            raise SignInRefused(reason)
        login = officer.login
        if with_key:
            # the password alone: the failures are forgotten once the key has answered
            # (complete_session), or a stolen password could reset the count between guesses
            return officer
        with self._database.tx() as db:
            db.execute(
                "UPDATE officers SET failed_attempts = 0, locked_until = NULL,"
                " totp_last_counter = COALESCE(?, totp_last_counter) WHERE login = ?",
                (counter, login),
            )
        return self.get(login)

    def count_failure(self, login: str, now: datetime) -> None:
        """Count a refused second factor checked outside (a security key's answer) towards the
        lockout, as a wrong TOTP code counts."""
        self._failed(self.get(login), now)

    def complete_session(self, token: str, now: datetime) -> Completed:
        """Complete a session awaiting its security key, once the key answered, under a new
        token; its failures are forgotten as after any sign-in."""
        session = self.session(token, now)
        if session is None or session.complete or session.pending_totp is not None:
            raise AccountError("session.expired")
        with self._database.tx() as db:
            renewed = _renew(db, token)
            db.execute(
                "UPDATE officers SET failed_attempts = 0, locked_until = NULL WHERE login = ?",
                (session.officer.login,),
            )
        return Completed(self.get(session.officer.login), renewed)

    def _failed(self, officer: Officer, now: datetime) -> None:
        with self._database.tx() as db:
            failures = db.execute(
                "UPDATE officers SET failed_attempts = failed_attempts + 1 WHERE login = ?"
                " RETURNING failed_attempts",
                (officer.login,),
            ).fetchone()[0]
            if failures >= MAX_FAILURES:
                db.execute(
                    "UPDATE officers SET failed_attempts = 0, locked_until = ? WHERE login = ?",
                    (_iso(now + LOCKOUT), officer.login),
                )

    def enrol(self, token: str, code: str, now: datetime) -> Completed:
        """Confirm the second factor shown at enrolment with its first code; completes the
        session under a new token."""
        session = self.session(token, now)
        if session is None or session.pending_totp is None:
            raise AccountError("session.expired")
        counter = totp_counter(session.pending_totp, code.strip(), now)
        if counter is None:
            raise AccountError("login.totp_wrong", typed=code.strip()[:12])
        login = session.officer.login
        with self._database.tx() as db:
            # Only an officer with no second factor yet enrols one: a half-open session someone
            # else started with the password must not replace the factor the officer enrolled.
            enrolled = db.execute(
                "UPDATE officers SET totp_secret = ?, totp_last_counter = ?"
                " WHERE login = ? AND totp_secret IS NULL",
                (self._vault.seal(session.pending_totp, login), counter, login),
            ).rowcount
            renewed = _renew(db, token) if enrolled == 1 else ""
            # every other session still waiting to enrol ends here (and this one, if too late)
            db.execute(
                "DELETE FROM console_sessions WHERE login = ? AND complete = 0",
                (login,),
            )
        if enrolled != 1:
            raise AccountError("session.expired")
        return Completed(self.get(login), renewed)

    # -- sessions -----------------------------------------------------------------------------

    def open_session(self, officer: Officer, now: datetime, *, awaiting_key: bool = False) -> str:
        """A new session for an authenticated officer; returns the cookie's token. An officer
        without a second factor gets a session that can only enrol one; ``awaiting_key``, one
        that only a security key's answer completes (:meth:`complete_session`)."""
        token = secrets.token_urlsafe(32)
        pending = None if officer.enrolled or awaiting_key else pyotp.random_base32()
        with self._database.tx() as db:
            db.execute(
                "INSERT INTO console_sessions (token_sha256, login, csrf_token, complete,"
                " pending_totp, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_digest(token), officer.login, secrets.token_urlsafe(32),
                 int(officer.enrolled and not awaiting_key),
                 pending and self._vault.seal(pending, officer.login), _iso(now), _iso(now)),
            )  # fmt: skip
        return token

    def session(self, token: str | None, now: datetime, *, touch: bool = True) -> Session | None:
        """The live session of ``token``, touched (unless ``touch`` is false: a page polling by
        itself is no sign that someone is at the keyboard); None when unknown, expired, or its
        officer disabled."""
        if not token:
            return None
        digest = _digest(token)
        row = self._database.db.execute(
            "SELECT s.csrf_token, s.complete, s.pending_totp, s.created_at, s.last_seen_at, o.*"
            " FROM console_sessions s JOIN officers o ON o.login = s.login"
            " WHERE s.token_sha256 = ?",
            (digest,),
        ).fetchone()
        if row is None:
            return None
        created, seen = _parse(row["created_at"]), _parse(row["last_seen_at"])
        assert created is not None and seen is not None
        officer = _officer(row)
        if officer.disabled or now - seen > IDLE_TIMEOUT or now - created > ABSOLUTE_LIFETIME:
            self.close_session(token)
            return None
        if touch:
            with self._database.tx() as db:
                db.execute(
                    "UPDATE console_sessions SET last_seen_at = ? WHERE token_sha256 = ?",
                    (_iso(now), digest),
                )
        pending = row["pending_totp"]
        try:
            pending = pending and self._vault.open(pending, officer.login)
        except VaultError:  # sealed under a key this store no longer has: sign in again
            self.close_session(token)
            return None
        return Session(officer, row["csrf_token"], bool(row["complete"]), pending)

    def close_session(self, token: str) -> None:
        with self._database.tx() as db:
            db.execute("DELETE FROM console_sessions WHERE token_sha256 = ?", (_digest(token),))

    # -- the record of actions ----------------------------------------------------------------

    def record(self, login: str, action: str, now: datetime, **detail: Any) -> None:
        """Record ``action`` under the officer's structured identity (metadata only, never a
        message body)."""
        identity: dict[str, str] = {}
        with contextlib.suppress(AccountError):
            identity = self.get(login).identity()
        with self._database.tx() as db:
            db.execute(
                "INSERT INTO officer_actions (at, login, identity, action, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (_iso(now), login, json.dumps(identity), action, json.dumps(detail, default=str)),
            )

    def actions(self, login: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The latest recorded actions, newest first."""
        sql = "SELECT at, login, identity, action, detail FROM officer_actions"
        args: tuple[Any, ...] = ()
        if login is not None:
            sql, args = sql + " WHERE login = ?", (login,)
        rows = self._database.db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [
            {"at": r["at"], "login": r["login"], "identity": json.loads(r["identity"]),
             "action": r["action"], "detail": json.loads(r["detail"])}
            for r in rows.fetchall()
        ]  # fmt: skip


def _renew(db: sqlite3.Connection, token: str) -> str:
    """Complete the session of ``token`` under a new token and CSRF token (within the caller's
    transaction); returns the new token."""
    renewed = secrets.token_urlsafe(32)
    db.execute(
        "UPDATE console_sessions SET token_sha256 = ?, csrf_token = ?, complete = 1,"
        " pending_totp = NULL WHERE token_sha256 = ?",
        (_digest(renewed), secrets.token_urlsafe(32), _digest(token)),
    )
    return renewed


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from (Argon2id: about 0.2 s of
    CPU, so a console calls it off its event loop)."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _officer(row: sqlite3.Row) -> Officer:
    return Officer(
        login=row["login"], name=row["name"], position=row["position"], agency=row["agency"],
        language=row["language"], role=Role(row["role"]), enrolled=row["totp_secret"] is not None,
        disabled=row["disabled_at"] is not None, locked_until=_parse(row["locked_until"]),
    )  # fmt: skip


def _check_profile(
    login: str, name: str, position: str, agency: str, language: str, role: str
) -> None:
    if not LOGIN_PATTERN.fullmatch(login):
        raise AccountError("officer.login_format", typed=login)
    for field, value in (("name", name), ("position", position), ("agency", agency)):
        if not value.strip():
            raise AccountError("officer.field_required", field=field)
    if language not in ("es", "en", "fr", "pt"):
        raise AccountError("officer.language_unknown", typed=language)
    if role not in {r.value for r in Role}:
        raise AccountError("officer.role_unknown", typed=role)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError("officer.password_short", min=MIN_PASSWORD)

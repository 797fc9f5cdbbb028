"""Security keys (WebAuthn Level 2) as an officer's second factor, beside TOTP.

An officer signed in with password and TOTP enrols a key from their account page; from then on
password and key sign them in. The verification is py_webauthn's (W3C WebAuthn, sections 7.1 and
7.2); what is kept here is what those checks need: each key's credential id, COSE public key,
signature counter and transports, in the owner's store (the node's migration 11).

Each challenge is random, single use (taken from the store before it is checked, so a failed
answer spends it too), bound to the session that asked for it, and expires after
:data:`CHALLENGE_TTL`. The relying party is the console's host name (WebAuthn forbids an IP
address as RP ID: the console is reached as ``localhost``, not ``127.0.0.1``) and the origin the
browser reports must be the console's own.

Every method takes ``now``: time is passed in, never read here.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from services.core.accounts import AccountDatabase, AccountError, Officer

#: How long a challenge may be answered (the browser's own timeout is :data:`TIMEOUT_MS`).
CHALLENGE_TTL: Final = timedelta(minutes=2)
TIMEOUT_MS: Final = 60_000
#: Keys one officer may hold (a spare in the safe, one at the desk, ...).
MAX_KEYS: Final = 10

Purpose = Literal["register", "authenticate"]


@dataclass(frozen=True)
class RelyingParty:
    """The console as WebAuthn names it: ``id`` its host name, ``origin`` what the browser
    reports (``scheme://host[:port]``), ``name`` what the authenticator shows."""

    id: str
    origin: str
    name: str


@dataclass(frozen=True)
class SecurityKey:
    """An enrolled key as recorded (its public key stays in the store)."""

    credential_id: str
    login: str
    transports: tuple[str, ...]
    sign_count: int
    created_at: str
    last_used_at: str | None


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_host(rp: RelyingParty) -> None:
    """WebAuthn 5.1.4.1 and 5.1.3: an RP ID is a domain; a browser refuses an IP address."""
    try:
        ipaddress.ip_address(rp.id.strip("[]"))
    except ValueError:
        return
    raise AccountError("key.address_host", host=rp.id)


def _transports(names: tuple[str, ...]) -> list[AuthenticatorTransport]:
    known = {t.value for t in AuthenticatorTransport}
    return [AuthenticatorTransport(n) for n in names if n in known]


class SecurityKeys:
    """The security keys of one store's officers, and the challenges waiting for an answer."""

    def __init__(self, database: AccountDatabase) -> None:
        self._database = database

    # -- what is enrolled ---------------------------------------------------------------------

    def of(self, login: str) -> list[SecurityKey]:
        """The officer's keys, oldest first."""
        rows = self._database.db.execute(
            "SELECT credential_id, login, transports, sign_count, created_at, last_used_at"
            " FROM officer_keys WHERE login = ? ORDER BY created_at",
            (login,),
        )
        return [
            SecurityKey(r["credential_id"], r["login"], tuple(json.loads(r["transports"])),
                        r["sign_count"], r["created_at"], r["last_used_at"])
            for r in rows.fetchall()
        ]  # fmt: skip

    def enrolled(self, login: str) -> bool:
        """Whether the officer holds at least one key."""
        row = self._database.db.execute("SELECT 1 FROM officer_keys WHERE login = ?", (login,))
        return row.fetchone() is not None

    def counts(self) -> dict[str, int]:
        """How many keys each officer holds (officers without any left out)."""
        rows = self._database.db.execute(
            "SELECT login, COUNT(*) AS n FROM officer_keys GROUP BY login"
        )
        return {r["login"]: r["n"] for r in rows.fetchall()}

    def remove_all(self, login: str) -> int:
        """Remove every key of the officer (an administrator's act, often for a lost or stolen
        key) and end the officer's sessions, which one of them may have opened; returns how
        many keys."""
        with self._database.tx() as db:
            removed = db.execute("DELETE FROM officer_keys WHERE login = ?", (login,)).rowcount
            sessions = [
                r[0]
                for r in db.execute(
                    "SELECT token_sha256 FROM console_sessions WHERE login = ?", (login,)
                ).fetchall()
            ]
            for digest in sessions:
                db.execute("DELETE FROM webauthn_challenges WHERE session_sha256 = ?", (digest,))
            db.execute("DELETE FROM console_sessions WHERE login = ?", (login,))
            return int(removed)

    # -- enrolment (WebAuthn 7.1) -------------------------------------------------------------

    def registration_options(
        self, officer: Officer, session_token: str, rp: RelyingParty, now: datetime
    ) -> str:
        """The ``PublicKeyCredentialCreationOptions`` (JSON) for a new key of ``officer``."""
        _check_host(rp)
        held = self.of(officer.login)
        if len(held) >= MAX_KEYS:
            raise AccountError("key.too_many", max=MAX_KEYS)
        options = generate_registration_options(
            rp_id=rp.id, rp_name=rp.name, user_name=officer.login,
            user_id=secrets.token_bytes(16), user_display_name=officer.name,
            timeout=TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.DISCOURAGED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[self._descriptor(k) for k in held],
        )  # fmt: skip
        self._issue(session_token, "register", options.challenge, now)
        return options_to_json(options)

    def register(
        self, officer: Officer, session_token: str, response: str, rp: RelyingParty,
        now: datetime,
    ) -> SecurityKey:  # fmt: skip
        """Verify the browser's answer to :meth:`registration_options` and keep the key."""
        challenge = self._take(session_token, "register", now)
        try:
            credential = parse_registration_credential_json(response)
            verified = verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp.id,
                expected_origin=rp.origin,
            )  # fmt: skip
        except (WebAuthnException, ValueError, KeyError, TypeError):
            raise AccountError("key.refused") from None
        credential_id = bytes_to_base64url(verified.credential_id)
        transports = [t.value for t in credential.response.transports or []]
        try:
            with self._database.tx() as db:
                db.execute(
                    "INSERT INTO officer_keys (credential_id, login, public_key, sign_count,"
                    " transports, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (credential_id, officer.login, verified.credential_public_key,
                     verified.sign_count, json.dumps(transports), _iso(now)),
                )  # fmt: skip
        except sqlite3.IntegrityError:  # this key is enrolled already
            raise AccountError("key.refused") from None
        return next(k for k in self.of(officer.login) if k.credential_id == credential_id)

    # -- sign-in (WebAuthn 7.2) ---------------------------------------------------------------

    def authentication_options(
        self, login: str, session_token: str, rp: RelyingParty, now: datetime
    ) -> str:
        """The ``PublicKeyCredentialRequestOptions`` (JSON) asking for one of the officer's
        keys."""
        _check_host(rp)
        held = self.of(login)
        if not held:
            raise AccountError("key.none")
        options = generate_authentication_options(
            rp_id=rp.id, timeout=TIMEOUT_MS,
            allow_credentials=[self._descriptor(k) for k in held],
            user_verification=UserVerificationRequirement.PREFERRED,
        )  # fmt: skip
        self._issue(session_token, "authenticate", options.challenge, now)
        return options_to_json(options)

    def authenticate(
        self, login: str, session_token: str, response: str, rp: RelyingParty, now: datetime
    ) -> SecurityKey:
        """Verify the browser's answer to :meth:`authentication_options`: a key of ``login``
        (never another officer's), the challenge of this session, this console's RP ID and
        origin, a valid signature and a signature counter that went forward (WebAuthn 6.1.1:
        a counter that did not may be a cloned key)."""
        challenge = self._take(session_token, "authenticate", now)
        try:
            credential_id = str(json.loads(response)["id"])
        except (ValueError, KeyError, TypeError):
            raise AccountError("key.refused") from None
        row = self._database.db.execute(
            "SELECT public_key, sign_count FROM officer_keys WHERE credential_id = ? AND login = ?",
            (credential_id, login),
        ).fetchone()
        if row is None:
            raise AccountError("key.refused")
        try:
            verified = verify_authentication_response(
                credential=response, expected_challenge=challenge, expected_rp_id=rp.id,
                expected_origin=rp.origin, credential_public_key=row["public_key"],
                credential_current_sign_count=row["sign_count"],
            )  # fmt: skip
        except (WebAuthnException, ValueError, KeyError, TypeError):
            raise AccountError("key.refused") from None
        with self._database.tx() as db:
            db.execute(
                "UPDATE officer_keys SET sign_count = ?, last_used_at = ? WHERE credential_id = ?",
                (verified.new_sign_count, _iso(now), credential_id),
            )
        return next(k for k in self.of(login) if k.credential_id == credential_id)

    # -- challenges ---------------------------------------------------------------------------

    @staticmethod
    def _descriptor(key: SecurityKey) -> PublicKeyCredentialDescriptor:
        return PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(key.credential_id), transports=_transports(key.transports)
        )

    def _issue(self, session_token: str, purpose: Purpose, challenge: bytes, now: datetime) -> None:
        # one challenge per session and purpose: asking again replaces the one before
        with self._database.tx() as db:
            db.execute("DELETE FROM webauthn_challenges WHERE expires_at < ?", (_iso(now),))
            db.execute(
                "INSERT OR REPLACE INTO webauthn_challenges (session_sha256, purpose, challenge,"
                " expires_at) VALUES (?, ?, ?, ?)",
                (_digest(session_token), purpose, challenge, _iso(now + CHALLENGE_TTL)),
            )

    def _take(self, session_token: str, purpose: Purpose, now: datetime) -> bytes:
        """The session's challenge for ``purpose``, removed: it is never answered twice."""
        with self._database.tx() as db:
            row = db.execute(
                "DELETE FROM webauthn_challenges WHERE session_sha256 = ? AND purpose = ?"
                " RETURNING challenge, expires_at",
                (_digest(session_token), purpose),
            ).fetchone()
        if row is None or row["expires_at"] < _iso(now):
            raise AccountError("key.expired")
        return bytes(row["challenge"])

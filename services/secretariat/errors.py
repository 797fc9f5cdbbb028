"""The one exception the secretariat's layer raises: a code and its parameters."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a secretariat command or query was refused (front ends translate each)."""

    NO_SUCH_REQUEST = "no_such_request"
    NOT_A_REQUEST = "not_a_request"
    REQUEST_TOO_LARGE = "request_too_large"
    KEY_ID_MISSING = "key_id_missing"
    KEY_ID_MALFORMED = "key_id_malformed"
    KEY_ID_MISMATCH = "key_id_mismatch"
    #: too many wrong key ids for this request, or typed by this operator: a freeze
    APPROVAL_FROZEN = "approval_frozen"
    APPROVER_FROZEN = "approver_frozen"
    NOT_A_REGISTRATION = "not_a_registration"
    NOT_A_ROTATION = "not_a_rotation"
    DIRECTORY_REFUSED = "directory_refused"
    NO_SUCH_PARTY = "no_such_party"
    NO_SUCH_KEY = "no_such_key"
    REVOCATION_TIME = "revocation_time"
    HUB_NOT_RUNNING = "hub_not_running"
    HUB_UNREACHABLE = "hub_unreachable"
    HUB_REFUSED = "hub_refused"
    NO_AUDIT_LOG = "no_audit_log"
    VERIFICATION_RUNNING = "verification_running"
    BAD_INPUT = "bad_input"


class SecretariatError(Exception):
    """A refusal: ``code`` says why, ``params`` what it concerns (never a key id to confirm)."""

    def __init__(self, code: ErrorCode, **params: str | int) -> None:
        super().__init__(code.value)
        self.code = code
        self.params = params

    def __repr__(self) -> str:
        return f"SecretariatError({self.code.value}, {self.params})"

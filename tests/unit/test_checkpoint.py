"""Checkpoints as C2SP signed notes: signing, parsing, verifying, cosigning."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from services.core.checkpoint import (
    NoteError,
    cosign,
    key_hash,
    parse_checkpoint,
    sign_checkpoint,
    signed_by,
    split_note,
    verify_checkpoint,
)

ORIGIN = "cifta-exchange.example.org/audit"
ROOT = bytes(range(32))


def test_a_checkpoint_is_three_lines_a_blank_line_and_a_signature() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cp = sign_checkpoint(ORIGIN, 1024, ROOT, ORIGIN, key)
    lines = cp.note.split("\n")
    assert lines[:4] == [ORIGIN, "1024", base64.b64encode(ROOT).decode(), ""]
    assert lines[4].startswith("\u2014 " + ORIGIN + " ")
    raw = base64.b64decode(lines[4].rsplit(" ", 1)[1])
    assert raw[:4] == key_hash(ORIGIN, key.public_key()) and len(raw) == 68
    parsed = verify_checkpoint(cp.note, ORIGIN, key.public_key())
    assert (parsed.origin, parsed.size, parsed.root) == (ORIGIN, 1024, ROOT)


def test_a_changed_body_or_another_key_does_not_verify() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cp = sign_checkpoint(ORIGIN, 7, ROOT, ORIGIN, key)
    forged = cp.note.replace("\n7\n", "\n8\n", 1)
    assert not signed_by(forged, ORIGIN, key.public_key())
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(NoteError):
        verify_checkpoint(cp.note, ORIGIN, other)


def test_witnesses_add_cosignatures_over_the_same_body() -> None:
    log, mex, usa = (ed25519.Ed25519PrivateKey.generate() for _ in range(3))
    note = sign_checkpoint(ORIGIN, 3, ROOT, ORIGIN, log).note
    note = cosign(cosign(note, "witness/MEX", mex), "witness/USA", usa)
    body, sigs = split_note(note)
    assert body == f"{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}\n"
    assert [s.name for s in sigs] == [ORIGIN, "witness/MEX", "witness/USA"]
    assert signed_by(note, "witness/MEX", mex.public_key())
    assert signed_by(note, "witness/USA", usa.public_key())
    assert signed_by(note, ORIGIN, log.public_key())
    assert parse_checkpoint(note).size == 3


def test_garbage_is_a_note_error() -> None:
    for text in ("", "no block", "a\n1\nAAAA\n\nnot a signature", "a\nx\nAAAA\n\n"):
        with pytest.raises(NoteError):
            parse_checkpoint(text)

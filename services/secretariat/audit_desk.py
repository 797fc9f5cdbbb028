"""The audit log as the secretariat watches it: size, latest checkpoint, how far each witness is
behind, alarms, and verification of the whole log on demand with its progress.

Read from the log's SQLite file (read-only) while the audit service writes it (WAL mode lets a
reader see the last committed state without blocking the writer).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from services.audit.log import AuditLog
from services.core import subjects
from services.core.checkpoint import NoteError, parse_checkpoint
from services.core.directory import DirectoryTrust
from services.hub.home import HubHome
from services.secretariat.errors import ErrorCode, SecretariatError

WITNESS_PREFIX = "witness/"
ALARMS_SHOWN = 50


class WitnessView(BaseModel):
    """A state witnessing the log: its last cosignature and how far behind it is."""

    model_config = ConfigDict(frozen=True)

    state: str
    last_cosigned: int | None  # tree size of the last checkpoint it cosigned; None: never
    entries_behind: int  # leaves in the latest checkpoint it has not cosigned
    checkpoints_behind: int  # checkpoints signed since its last cosignature


class AlarmView(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: str
    witness: str
    detail: str


class AuditView(BaseModel):
    model_config = ConfigDict(frozen=True)

    size: int
    checkpoints: int
    latest_checkpoint: int | None
    latest_root: str | None
    witnesses: list[WitnessView]
    alarms: list[AlarmView]


def open_read_only(path: Path) -> sqlite3.Connection:
    """The audit log's database, read-only; NO_AUDIT_LOG when the service never ran."""
    if not path.exists():
        raise SecretariatError(ErrorCode.NO_AUDIT_LOG)
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def audit_view(hub: HubHome) -> AuditView:
    """What the log holds now, and each registered state's standing as its witness."""
    db = open_read_only(hub.audit_log_path)
    try:
        size = db.execute("SELECT COUNT(*) FROM leaves").fetchone()[0]
        sizes = [int(r[0]) for r in db.execute("SELECT size FROM checkpoints ORDER BY size")]
        latest = sizes[-1] if sizes else None
        root = None
        if latest is not None:
            note = db.execute("SELECT note FROM checkpoints WHERE size = ?", (latest,)).fetchone()
            try:
                root = parse_checkpoint(note[0]).root.hex()
            except NoteError:
                root = None  # verification reports it
        cosigned: dict[str, int] = {}
        for witness, last in db.execute(
            "SELECT witness, MAX(size) FROM cosignatures GROUP BY witness"
        ):
            cosigned[str(witness).removeprefix(WITNESS_PREFIX)] = int(last)
        rows = db.execute(
            "SELECT at, witness, detail FROM alarms ORDER BY rowid DESC LIMIT ?", (ALARMS_SHOWN,)
        ).fetchall()
    finally:
        db.close()
    witnesses = []
    for state in hub.registry().codes():
        last = cosigned.get(state)
        witnesses.append(
            WitnessView(
                state=state,
                last_cosigned=last,
                entries_behind=(latest or 0) - (last or 0),
                checkpoints_behind=len([s for s in sizes if s > (last or 0)]),
            )
        )
    return AuditView(
        size=int(size), checkpoints=len(sizes), latest_checkpoint=latest, latest_root=root,
        witnesses=witnesses,
        alarms=[AlarmView(at=a, witness=w, detail=d) for a, w, d in rows],
    )  # fmt: skip


class VerificationState(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["idle", "running", "intact", "broken", "failed"]
    done: int = 0
    total: int = 0
    problems: list[str] = []
    started_at: datetime | None = None


def witness_keys(hub: HubHome) -> dict[str, Any]:
    """Every signing key each party ever had (rotations), as the log's witnesses sign."""
    service = hub.directory_service()
    trust = DirectoryTrust(service.root)
    trust.seed(service.all_signed())
    directory = trust.directory()
    keys: dict[str, Any] = {}
    for party in directory.parties():
        entry = directory.entries[party]
        records = entry.keys.signing if entry.keys else []
        found = [directory.signing_key(party, r.kid) for r in records]
        keys[f"{WITNESS_PREFIX}{party}"] = [k.key.ed25519 for k in found if k is not None]
    return keys


class Verifier:
    """Verification of the whole log, one run at a time, in a worker thread; ``state`` tells
    its progress to whoever asks."""

    def __init__(self, hub: HubHome) -> None:
        self.hub = hub
        self._lock = threading.Lock()
        self._state = VerificationState(status="idle")

    @property
    def state(self) -> VerificationState:
        with self._lock:
            return self._state

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._state = self._state.model_copy(update=changes)

    def start(self, now: datetime) -> asyncio.Task[VerificationState]:
        """Begin a verification; VERIFICATION_RUNNING while one runs."""
        with self._lock:
            if self._state.status == "running":
                raise SecretariatError(ErrorCode.VERIFICATION_RUNNING)
            if not self.hub.audit_log_path.exists():
                raise SecretariatError(ErrorCode.NO_AUDIT_LOG)
            self._state = VerificationState(status="running", started_at=now)
        return asyncio.get_running_loop().create_task(asyncio.to_thread(self.run))

    def run(self) -> VerificationState:
        """Verify now, in this thread (``start`` runs it in a worker)."""
        log = AuditLog(self.hub.audit_log_path)
        try:
            audit_key = self.hub.load_key(self.hub.audit_key_file).signing.ed25519.public_key()
            problems = log.verify(
                subjects.AUDIT_ORIGIN,
                audit_key,
                witness_keys(self.hub),
                progress=lambda done, total: self._set(done=done, total=total),
            )
        except (sqlite3.Error, OSError) as exc:
            self._set(status="failed", problems=[type(exc).__name__])
            return self.state
        finally:
            log.close()
        self._set(status="broken" if problems else "intact", problems=[p.what for p in problems])
        return self.state

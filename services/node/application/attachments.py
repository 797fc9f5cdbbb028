"""Attachments through the application layer: send a message or a tracing request with files,
list a message's attachments, save one decrypted to a file.

Sending first checks the whole command as a dry run (body, recipients, handling), so a mistake
is reported before any file is sealed or uploaded; then each file is sealed into the node's
store and stored at the hub for every recipient; only then is the message naming them sealed
and queued, so the outbox never publishes an envelope whose attachments are not all stored.

Forwarding a received message with files (Art. XII) follows the same order: the Article's checks
first, as a dry run; then this node's own verified copy of each file, the very ciphertext the
signed manifest names, is stored at the hub for every new state in this node's own stream (same
key, same digest: nothing is sealed again); only then is the copy queued.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from nats.errors import Error as NatsError

from schemas.attachment import AttachmentManifest
from services.core.attachments import AttachmentError, ChunkOpener, read_chunks
from services.node.application import deliveries, messaging, tracing
from services.node.application.errors import ApplicationError
from services.node.application.models import (
    AttachmentView,
    Notice,
    OfficerIdentity,
    Queued,
    SaveAttachment,
    SavedAttachment,
    SendMessage,
)
from services.node.application.plumbing import refusals, resolve
from services.node.application.procedure_models import FileTracingRequest, ForwardMessage
from services.node.attachment_flow import (
    attachment_store,
    check_room,
    leaf_api,
    record_stored,
)
from services.node.attachments import (
    AttachmentSourceError,
    AttachmentTransferError,
    Prepared,
    Progress,
    RecipientBacklog,
    upload,
)
from services.node.core import NodeCore
from services.node.lookup_client import connect
from services.node.settings import NodeSettings

Attached = SendMessage | FileTracingRequest


def _queue(core: NodeCore, cmd: Attached, manifests: Sequence[AttachmentManifest]) -> Queued:
    if isinstance(cmd, SendMessage):
        return messaging.send(core, cmd, manifests)
    return tracing.file_request(core, cmd, manifests)


def _check_files(files: Sequence[Path]) -> None:
    """Refuse, before anything is sealed, what every recipient would refuse: a body's
    attachments have distinct names (docs/envelope.md section 13), so one file twice or two
    files of one name are a mistake of the command."""
    names: set[str] = set()
    for f in files:
        if not f.is_file():
            raise ApplicationError("attachment.no_file", field="attachments", path=str(f))
        if f.name in names:
            raise ApplicationError(
                "attachment.duplicate", field="attachments", name=f.name, path=str(f)
            )
        names.add(f.name)


def _no_progress(done: int, total: int) -> None:
    """Shows nothing."""


async def send(
    core: NodeCore, settings: NodeSettings, cmd: Attached, progress: Progress = _no_progress
) -> Queued:
    """Send ``cmd`` with its files. Run again after a failure, it resumes the uploads where they
    stopped (a file changed meanwhile is sealed anew)."""
    _check_files(cmd.attachments)
    checked = _queue(core, cmd.model_copy(update={"dry_run": True}), ())
    if cmd.dry_run or not cmd.attachments:
        return _noted(checked, cmd) if cmd.dry_run else _queue(core, cmd, ())
    store = attachment_store(settings)
    try:
        prepared = [
            store.prepare(f, max_bytes=settings.attachment_max_bytes) for f in cmd.attachments
        ]
        await _upload(settings, core, checked.recipients, prepared, progress)
    except AttachmentError as exc:
        raise ApplicationError(
            "attachment.refused", reason=exc.fault.value, detail=exc.detail
        ) from None
    except AttachmentSourceError as exc:
        raise ApplicationError(
            "attachment.unreadable", field="attachments", path=str(exc.path), problem=exc.problem
        ) from None
    queued = _queue(core, cmd, [p.manifest for p in prepared])
    for f in cmd.attachments:
        store.forget(f)
    record_stored(core, queued.msg_id, prepared)
    return _noted(queued, cmd)


async def forward(
    core: NodeCore, settings: NodeSettings, cmd: ForwardMessage, progress: Progress = _no_progress
) -> Queued:
    """Forward a received message, as Art. XII allows, with its files: each stored at the hub
    for every new state, from this node's own verified copy, before the copy is queued. Run
    again after a failure, it resumes the uploads where they stopped. Refused
    (``forward.attachments_not_held``) when this node does not hold every file intact."""
    checked = deliveries.forward(core, cmd.model_copy(update={"dry_run": True}))
    message = resolve(core, cmd.msg_id)
    with refusals():
        manifests = core.open_stored(message).body.attachments  # checked, not shown: no opening
    if not manifests:
        return checked if cmd.dry_run else deliveries.forward(core, cmd)
    prepared = _held(settings, message.msg_id, manifests)
    if cmd.dry_run:  # every check ran: the preview is what forwarding does, but the upload
        return checked
    await _upload(settings, core, checked.recipients, prepared, progress)
    queued = deliveries.forward(core, cmd, files_stored=True)
    record_stored(core, queued.msg_id, prepared)
    return queued


def _held(
    settings: NodeSettings, msg_id: str, manifests: Sequence[AttachmentManifest]
) -> list[Prepared]:
    """This node's copies of ``manifests``, each checked against its signed digest: only what
    this node fetched and verified is passed on, or the new state would refuse the copy as
    ``attachment_corrupt`` or ``attachment_missing``."""
    store = attachment_store(settings)
    held = [Prepared(m, store.path(m.ciphertext_sha256)) for m in manifests]
    missing = sum(not _intact(p) for p in held)
    if missing:
        # counted, not named: their names are the message's content, and nothing was opened
        raise ApplicationError(
            "forward.attachments_not_held", msg_id=msg_id, missing=missing, count=len(held)
        )
    return held


def _intact(p: Prepared) -> bool:
    digest = hashlib.sha256()
    try:
        with p.path.open("rb") as f:
            for piece in iter(lambda: f.read(1 << 20), b""):
                digest.update(piece)
    except OSError:  # never fetched (refused, still pending) or lost
        return False
    return digest.hexdigest() == p.manifest.ciphertext_sha256


async def _upload(
    settings: NodeSettings,
    core: NodeCore,
    recipients: Sequence[str],
    prepared: Sequence[Prepared],
    progress: Progress,
) -> None:
    party = core.party
    try:
        async with connect(settings, f"cifta-{party}-attachments") as nc:
            await check_room(nc, core, recipients, prepared, api=leaf_api(settings))
            for p in prepared:
                await upload(nc, party, recipients, p, progress=progress)
    except RecipientBacklog as exc:
        raise ApplicationError(
            "attachment.recipient_backlog", recipient=exc.recipient,
            held_mib=round(exc.held / 2**20, 1), share_mib=round(exc.share / 2**20, 1),
        ) from None  # fmt: skip
    except AttachmentTransferError as exc:
        raise ApplicationError("attachment.upload_incomplete", problem=str(exc)) from None
    except (OSError, NatsError, TimeoutError) as exc:
        raise ApplicationError(
            "attachment.hub_unreachable", hub_url=settings.hub_url, problem=type(exc).__name__
        ) from None


def _noted(q: Queued, cmd: Attached) -> Queued:
    if not cmd.attachments:
        return q
    notice = Notice(code="attachments.sent", params={"names": [f.name for f in cmd.attachments]})
    return q.model_copy(update={"notices": [*q.notices, notice]})


def _manifests(
    core: NodeCore, msg_id: str, officer: OfficerIdentity
) -> tuple[str, list[AttachmentManifest]]:
    """The message's full id and its attachments; reading them is an opening, recorded."""
    message = resolve(core, msg_id)
    with refusals():
        _, opened = core.read(message.msg_id, officer.recorded)
    return message.msg_id, list(opened.body.attachments)


def attachments(
    core: NodeCore, settings: NodeSettings, msg_id: str, officer: OfficerIdentity
) -> list[AttachmentView]:
    """A message's attachments and whether this node holds each (verified)."""
    full, manifests = _manifests(core, msg_id, officer)
    return views(core, settings, full, manifests)


def views(
    core: NodeCore, settings: NodeSettings, msg_id: str, manifests: Sequence[AttachmentManifest]
) -> list[AttachmentView]:
    """The attachments an opened message names (its full id), and whether this node holds each;
    opens nothing."""
    status = core.store.attachment_fetches.status(msg_id)
    held = attachment_store(settings)
    out = []
    for m in manifests:
        state, reason, detail = "held", None, None
        if not held.has(m):
            state = "pending" if status is None or status[0] == "pending" else "refused"
            if state == "refused" and status is not None:
                reason, detail = status[1], status[2]
        out.append(
            AttachmentView(
                name=m.name,
                media_type=m.media_type,
                size=m.size,
                ciphertext_sha256=m.ciphertext_sha256,
                state=state,
                reason=reason,
                detail=detail,
            )
        )
    return out


def _named(
    core: NodeCore,
    settings: NodeSettings,
    msg_id: str,
    name: str,
    officer: OfficerIdentity,
    out: Path | None = None,
    force: bool = False,
) -> tuple[str, AttachmentManifest]:
    """The message's full id and its attachment ``name``, held here (else its error code, in
    this order: no such attachment, ``out`` exists without ``force``, not held here)."""
    full, manifests = _manifests(core, msg_id, officer)
    named = [m for m in manifests if m.name == name]
    if not named:
        raise ApplicationError(
            "attachment.not_found", msg_id=full, name=name, names=[m.name for m in manifests]
        )
    if out is not None and out.exists() and not force:
        raise ApplicationError("attachment.out_exists", field="out", path=str(out))
    if not attachment_store(settings).has(named[0]):
        view = next(v for v in views(core, settings, full, named) if v.name == name)
        raise ApplicationError(
            "attachment.not_here", name=name, state=view.state, reason=view.reason
        )
    return full, named[0]


def plaintext(
    core: NodeCore, settings: NodeSettings, msg_id: str, name: str, officer: OfficerIdentity
) -> tuple[AttachmentView, Iterator[bytes]]:
    """One attachment, decrypted chunk by chunk for a download: the node's copy is checked
    against the signed manifest's digest first (read in bounded pieces), then each chunk is
    authenticated as it is decrypted; memory holds one chunk, never the file."""
    full, manifest = _named(core, settings, msg_id, name, officer)
    path = attachment_store(settings).path(manifest.ciphertext_sha256)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            digest.update(piece)
    if digest.hexdigest() != manifest.ciphertext_sha256:
        raise ApplicationError(
            "attachment.refused", reason="digest_mismatch", detail=f"{name}: the copy held here"
        )
    [view] = views(core, settings, full, [manifest])
    return view, _decrypted(path, manifest)


def _decrypted(path: Path, manifest: AttachmentManifest) -> Iterator[bytes]:
    opener = ChunkOpener(manifest)
    with path.open("rb") as f:
        for chunk in read_chunks(f, manifest):
            yield opener.open(chunk)  # AttachmentError on any chunk altered since: the download
    opener.finish()  # is cut short, never completed with wrong bytes (STREAM's last flag)


def save(core: NodeCore, settings: NodeSettings, cmd: SaveAttachment) -> SavedAttachment:
    """Decrypt one attachment into ``cmd.out``, every chunk and the digest verified first."""
    full, manifest = _named(core, settings, cmd.msg_id, cmd.name, cmd.officer, cmd.out, cmd.force)
    try:
        attachment_store(settings).save_plaintext(manifest, cmd.out)
    except AttachmentError as exc:
        raise ApplicationError(
            "attachment.refused", reason=exc.fault.value, detail=exc.detail
        ) from None
    except OSError as exc:
        raise ApplicationError("io.failed", path=str(cmd.out), problem=exc.strerror or "") from None
    return SavedAttachment(msg_id=full, name=cmd.name, size=manifest.size, out=cmd.out)

"""Attachments at the node: sealing files, storing them at the hub, fetching and verifying them.

The node keeps every attachment it sent or received as its ciphertext, in ``<home>/attachments``,
named by the ciphertext's SHA-256: encrypted at rest under a key that exists only inside the
message's body, itself sealed at rest in the store. At the hub each state stores what it sends in
its own stream (services/hub/attachments.py), one message per segment of chunks and recipient; a
recipient reads its segments back by subject through the sender's export, a window at a time, so
memory stays bounded whatever the file's size. Both resume where they stopped: an upload from the
chunks the hub acknowledged (a sidecar file records them), a download from the chunks already
written and verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import mimetypes
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from schemas.attachment import AttachmentManifest
from services.core import subjects
from services.core.attachments import (
    TAG_LEN,
    AttachmentError,
    AttachmentFault,
    ChunkOpener,
    ciphertext_size,
    read_chunks,
    seal_stream,
)
from services.core.files import write_secret
from services.core.logs import get_logger

log = get_logger("cifta.node.attachments")

#: 100 MiB: what a node sends or accepts in one attachment unless its settings say otherwise.
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
#: Chunks stored as one message at the hub (a *segment*, about 1 MiB): the hub fsyncs every
#: message it stores (services/hub/config.py, ``sync_interval``), so one message per 64 KiB chunk
#: would spend most of an upload waiting for the disk. The chunk format is unchanged by it.
SEGMENT_CHUNKS = 16
#: Segments in flight at once (published and not yet acknowledged, or asked for and not yet
#: read): enough to keep a link busy, 4 MiB of memory at most.
WINDOW = 4
#: A recipient that has not yet confirmed what it was sent keeps at most this share of its
#: sender's room at the hub (``ATTACH_<sender>``'s size) from new files for it, beyond one
#: message: a recipient whose node is offline or hostile cannot fill that room and so delay the
#: sender's files to every other state (design section 5).
RECIPIENT_SHARE = 4
#: What a progress callback is told: bytes done and bytes in all.
Progress = Callable[[int, int], None]


class AttachmentSourceError(Exception):
    """A file to attach could not be read whole (it changed size while sealed, or the system
    refused it); nothing of it is left in the store. ``problem`` is one line for people."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class AttachmentTransferError(Exception):
    """An upload could not complete (the hub refused or did not answer); it can be resumed."""


class RecipientBacklog(AttachmentTransferError):
    """Files for ``recipient`` refused before anything was stored: it has not confirmed
    ``held`` bytes sent to it before, and ``share`` bytes is what it may hold of this node's
    room at the hub."""

    def __init__(self, recipient: str, held: int, share: int) -> None:
        super().__init__(
            f"{recipient} has not yet confirmed {held / 2**20:.1f} MiB of files sent to it before, "
            f"and may hold {share / 2**20:.1f} MiB of this node's room at the hub"
        )
        self.recipient, self.held, self.share = recipient, held, share


def _no_progress(done: int, total: int) -> None:
    """A progress callback that shows nothing."""


@dataclass(frozen=True)
class Prepared:
    """A file sealed for sending: its manifest and the node's own encrypted copy."""

    manifest: AttachmentManifest
    path: Path


class AttachmentStore:
    """The node's own copies of attachments: ciphertext files named by their digest."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, object_id: str) -> Path:
        subjects.attachment_object_filter("SEC", "SEC", object_id)  # validates the id
        return self.root / object_id

    def has(self, manifest: AttachmentManifest) -> bool:
        return self.path(manifest.ciphertext_sha256).exists()

    def partial(self, object_id: str, sender: str) -> Path:
        """Where a download of ``object_id`` from ``sender``'s stream is written until it is whole
        and verified: one file per sender, so that two senders naming one file (a forward of it,
        or a co-recipient naming its digest) never write into, or discard, each other's."""
        final = self.path(object_id)
        return final.with_name(f"{final.name}.{subjects.party_code(sender)}.part")

    def discard_partial(self, manifests: Sequence[AttachmentManifest], sender: str) -> None:
        """Drop what was downloaded of ``manifests`` from ``sender`` and not finished: the
        message is refused, and a sender that stores all but one segment, again and again, must
        not fill this disk."""
        for m in manifests:
            self.partial(m.ciphertext_sha256, sender).unlink(missing_ok=True)

    def prepare(
        self, source: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, media_type: str | None = None
    ) -> Prepared:
        """Seal the file at ``source`` with a fresh key into this store; refuse one over
        ``max_bytes`` (``AttachmentError(TOO_LARGE)``); AttachmentSourceError for a file that
        cannot be read whole (one that grows or shrinks meanwhile, as /proc files do).

        The same file (same path, size and modification time) prepared again before
        :meth:`forget` is given the same sealed copy, so that a send that failed half way
        resumes its upload instead of starting another under a new key. Until then the
        manifest, key included, waits in a 0600 file of the node's home, as the key file does.
        """
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise AttachmentSourceError(source, exc.strerror or type(exc).__name__) from None
        if size > max_bytes:
            raise AttachmentError(
                AttachmentFault.TOO_LARGE, f"{source.name} is {size} bytes, over {max_bytes}"
            )
        pending = self._pending(source)
        with contextlib.suppress(OSError, ValueError):
            manifest = AttachmentManifest.model_validate_json(pending.read_bytes())
            if self.has(manifest):
                return Prepared(manifest, self.path(manifest.ciphertext_sha256))
        guessed = media_type or mimetypes.guess_type(source.name)[0] or "application/octet-stream"
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = self.root / f".sealing-{pending.stem}"
        try:
            with source.open("rb") as src, part.open("wb") as sink:
                sealed = seal_stream(src, size, sink, name=source.name, media_type=guessed.lower())
                sink.flush()
                os.fsync(sink.fileno())
            final = self.path(sealed.manifest.ciphertext_sha256)
            os.replace(part, final)
        except ValueError as exc:  # its size changed: the manifest's size is signed
            raise AttachmentSourceError(source, f"{exc} (it changed while read)") from None
        except OSError as exc:
            raise AttachmentSourceError(source, exc.strerror or type(exc).__name__) from None
        finally:
            part.unlink(missing_ok=True)  # gone once renamed; a failure leaves nothing
        write_secret(pending, sealed.manifest.model_dump_json().encode())
        return Prepared(sealed.manifest, final)

    def forget(self, source: Path) -> None:
        """The message naming ``source``'s sealed copy is queued: drop its pending record (the
        key now lives only in the sealed body)."""
        self._pending(source).unlink(missing_ok=True)

    def _pending(self, source: Path) -> Path:
        st = source.stat()
        ident = f"{source.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()
        return self.root / f".pending-{hashlib.sha256(ident).hexdigest()[:32]}.json"

    def save_plaintext(self, manifest: AttachmentManifest, out: Path) -> None:
        """Decrypt this node's copy into ``out``, verifying every chunk and the digest; ``out``
        appears only once the whole file verified."""
        src = self.path(manifest.ciphertext_sha256)
        if not src.exists():
            raise AttachmentError(AttachmentFault.MISSING, "this node holds no copy of it")
        tmp = out.with_name(f".{out.name}.part")
        opener = ChunkOpener(manifest)
        try:
            with src.open("rb") as f, tmp.open("wb") as sink:
                for chunk in read_chunks(f, manifest):
                    sink.write(opener.open(chunk))
                opener.finish()
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)


# -- upload ------------------------------------------------------------------------------------


def hub_api(on_leaf: bool) -> str | None:
    """The JetStream API prefix of the sender's stream at the hub: from a state's leaf, the
    hub's domain (the leaf's own JetStream answers the plain prefix); None, the plain one. The
    segments themselves are plain publishes: the leaf carries them to the hub's stream, whose
    PubAck comes back the same way (services/hub/leaf.py grants both)."""
    return subjects.hub_api() if on_leaf else None


def _sent_record(prepared: Prepared) -> Path:
    return prepared.path.with_name(prepared.path.name + ".sent.json")


def _read_sent(prepared: Prepared) -> dict[str, int]:
    try:
        data = json.loads(_sent_record(prepared).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_sent(prepared: Prepared, sent: dict[str, int]) -> None:
    record = _sent_record(prepared)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(sent))
    os.replace(tmp, record)


def _segments(manifest: AttachmentManifest) -> list[tuple[int, int]]:
    """(offset, length) in the ciphertext of each segment: SEGMENT_CHUNKS chunks, one message."""
    total = ciphertext_size(manifest.size)
    step = SEGMENT_CHUNKS * (manifest.chunk_size + TAG_LEN)  # every chunk but the last is full
    return [(at, min(step, total - at)) for at in range(0, total, step)]


async def upload(
    nc: Client,
    sender: str,
    recipients: Sequence[str],
    prepared: Prepared,
    *,
    progress: Progress = _no_progress,
    timeout_s: float = 10.0,
) -> None:
    """Store ``prepared``'s ciphertext for each recipient in ``sender``'s own stream at the hub,
    resuming after the segments the hub acknowledged before. Returns once all of it is stored
    for every recipient (only then may the envelope naming it be queued);
    AttachmentTransferError otherwise."""
    js = nc.jetstream(timeout=timeout_s)
    manifest, segments = prepared.manifest, _segments(prepared.manifest)
    sent = _read_sent(prepared)
    total = ciphertext_size(manifest.size) * len(recipients)
    done = sum(sum(n for _, n in segments[: sent.get(r, 0)]) for r in recipients)
    for recipient in recipients:
        index = sent.get(recipient, 0)
        with prepared.path.open("rb") as f:
            while index < len(segments):
                ids = range(index, min(index + WINDOW, len(segments)))
                f.seek(segments[index][0])
                window = [f.read(segments[i][1]) for i in ids]
                await _publish_window(js, sender, recipient, manifest, index, window)
                index += len(window)
                done += sum(len(c) for c in window)
                sent[recipient] = index
                _write_sent(prepared, sent)
                progress(min(done, total), total)
    _sent_record(prepared).unlink(missing_ok=True)
    log.info(
        "attachment_stored",
        object=manifest.ciphertext_sha256,
        recipients=list(recipients),
        bytes=ciphertext_size(manifest.size),
    )


async def _publish_window(
    js: object, sender: str, recipient: str, manifest: AttachmentManifest, first: int,
    window: list[bytes],
) -> None:  # fmt: skip
    object_id = manifest.ciphertext_sha256

    async def one(i: int, segment: bytes) -> None:
        subject = subjects.attachment_chunk_subject(recipient, sender, object_id, first + i)
        # No Nats-Msg-Id: one message per subject already means a segment published again
        # replaces itself, and the stream is the sender's alone (no other account publishes
        # into it), so nothing else can claim this subject's place.
        ack = await js.publish(subject, segment)  # type: ignore[attr-defined]
        if ack.duplicate:  # never for a publish without an id: the hub kept something else
            raise AttachmentTransferError(
                f"the hub took segment {first + i} for {recipient} as a duplicate and did "
                "not store it"
            )

    try:
        await asyncio.gather(*(one(i, c) for i, c in enumerate(window)))
    except (NatsError, TimeoutError) as exc:
        raise AttachmentTransferError(
            f"the hub did not store segment(s) {first}-{first + len(window) - 1} for "
            f"{recipient} ({type(exc).__name__}: {exc}); run the same command again to resume"
        ) from None


async def stream_room(
    nc: Client, party: str, *, api: str | None = None, timeout_s: float = 10.0
) -> tuple[int, float]:
    """(max_bytes, max_age in seconds) of ``party``'s own attachment stream at the hub; a
    non-positive value is no limit. ``api``: the hub's JetStream API prefix, for a node on a
    leaf (:func:`hub_api`)."""
    js = nc.jetstream(timeout=timeout_s, prefix=api or "$JS.API")
    info = await js.stream_info(subjects.attachment_stream(party))
    return info.config.max_bytes or -1, info.config.max_age or 0.0


# -- download ----------------------------------------------------------------------------------


def _resume(part: Path, opener: ChunkOpener, manifest: AttachmentManifest) -> None:
    """Verify the whole segments a former download wrote; cut what follows them."""
    if not part.exists():
        return
    good = 0
    with part.open("rb") as f:
        for offset, length in _segments(manifest):
            segment = f.read(length)
            if len(segment) != length:
                break
            for chunk in _split(segment, opener):
                opener.open(chunk)
            good = offset + length
    with part.open("r+b") as f:
        f.truncate(good)


def _split(segment: bytes, opener: ChunkOpener) -> list[bytes]:
    """The chunks of one segment, cut at the lengths the manifest's size means."""
    out, at, index = [], 0, opener.next_index
    while at < len(segment):
        n = opener.chunk_length(index) if index < opener.count else len(segment) - at
        out.append(segment[at : at + n])
        at, index = at + n, index + 1
    return out


async def fetch(
    nc: Client,
    party: str,
    sender: str,
    manifest: AttachmentManifest,
    store: AttachmentStore,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress = _no_progress,
    timeout_s: float = 10.0,
) -> Path:
    """Fetch the attachment ``sender`` stored for ``party`` (in ``sender``'s stream, through its
    export to ``party``) into the node's store, verifying
    each chunk as it comes and the whole at the end; resumes a download that stopped.

    AttachmentError: ``attachment_too_large`` (nothing fetched), ``attachment_missing`` (a
    segment is not at the hub), ``attachment_corrupt`` (a chunk or the whole is not what the
    signed manifest names; what was fetched is discarded).
    """
    final = store.path(manifest.ciphertext_sha256)
    js = nc.jetstream(timeout=timeout_s, prefix=subjects.attachment_api(sender))
    segments = _segments(manifest)
    if final.exists():
        # Held already (another message named the same file): reused if the manifest's key
        # opens it and the sender did store it, so that naming a digest without storing the
        # file tells a sender nothing of what this node holds.
        _check_held(final, manifest)
        await _get_segment(js, party, sender, manifest, 0, len(segments))
        return final
    if manifest.size > max_bytes:
        raise AttachmentError(
            AttachmentFault.TOO_LARGE, f"{manifest.size} bytes, over this node's {max_bytes}"
        )
    store.root.mkdir(parents=True, exist_ok=True)
    part = store.partial(manifest.ciphertext_sha256, sender)
    opener = ChunkOpener(manifest)
    total = ciphertext_size(manifest.size)
    try:
        _resume(part, opener, manifest)
        with part.open("ab") as sink:
            done = sink.tell()
            index = next((i for i, (at, _) in enumerate(segments) if at >= done), len(segments))
            while index < len(segments):
                ids = range(index, min(index + WINDOW, len(segments)))
                window = await asyncio.gather(
                    *(_get_segment(js, party, sender, manifest, i, len(segments)) for i in ids)
                )
                for segment in window:
                    for chunk in _split(segment, opener):
                        opener.open(chunk)
                    sink.write(segment)
                    done += len(segment)
                index += len(window)
                progress(done, total)
            opener.finish()
            sink.flush()
            os.fsync(sink.fileno())
    except AttachmentError as exc:
        if exc.fault is AttachmentFault.CORRUPT:
            part.unlink(missing_ok=True)  # the hub's copy is bad: fetching it again won't help
        raise
    os.replace(part, final)
    return final


def _check_held(path: Path, manifest: AttachmentManifest) -> None:
    """The file of this digest this node holds opens under ``manifest``'s key (its first chunk,
    authenticated): a manifest that names a file held here under another key is refused as
    corrupt, and its sender learns nothing of what this node holds."""
    opener = ChunkOpener(manifest)
    with path.open("rb") as f:
        opener.open(f.read(opener.chunk_length(0)))


async def _get_segment(
    js: object, party: str, sender: str, manifest: AttachmentManifest, index: int, count: int
) -> bytes:
    # a direct get by the subject in the API subject: the only read the sender's export grants
    stream = subjects.attachment_stream(sender)
    subject = subjects.attachment_chunk_subject(party, sender, manifest.ciphertext_sha256, index)
    try:
        msg = await js.get_msg(stream, subject=subject, direct=True)  # type: ignore[attr-defined]
    except NotFoundError:
        raise AttachmentError(
            AttachmentFault.MISSING, f"segment {index} of {count} is not at the hub"
        ) from None
    return bytes(msg.data or b"")


async def purge(
    nc: Client, party: str, recipient: str, object_id: str, *, api: str | None = None,
    timeout_s: float = 10.0,
) -> None:  # fmt: skip
    """Drop the object ``party`` stored for ``recipient`` from ``party``'s own stream at the hub,
    once ``recipient``'s receipt confirms its own copy (docs/envelope.md section 13.6). NatsError
    or TimeoutError if the hub did not do it (retention drops it in the end anyway). ``api``: as
    for :func:`stream_room`."""
    await nc.jetstream(timeout=timeout_s, prefix=api or "$JS.API").purge_stream(
        subjects.attachment_stream(party),
        subject=subjects.attachment_object_filter(recipient, party, object_id),
    )

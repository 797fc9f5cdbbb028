"""The application layer's one entry point: :class:`Application`, over one node's home.

Every front end (the ``cifta`` CLI, the officers' console) opens a node with :func:`open_node`
and calls its methods: commands take and return the models of ``models.py`` and
``procedure_models.py``; failures are :class:`ApplicationError` codes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from pydantic import ValidationError

from schemas.attachment import AttachmentManifest
from services.core.directory import DirectoryError, DirectoryTrust, RootPublicKey
from services.core.keys import KeyFileError, NodeKeys
from services.node import app as node_app
from services.node.application import (
    attachments,
    deliveries,
    messaging,
    queries,
    tracing,
    trail,
)
from services.node.application.errors import ApplicationError
from services.node.application.models import (
    Alert,
    AttachmentView,
    Deadline,
    InboxQuery,
    KindInfo,
    MessageSummary,
    MessageView,
    OfficerIdentity,
    Queued,
    RecipientStatusView,
    ReplyMessage,
    SaveAttachment,
    SavedAttachment,
    SendMessage,
    Template,
)
from services.node.application.procedure_models import (
    AcknowledgeTrace,
    AnswerConsent,
    AnswerTrace,
    CloseDelivery,
    ConfirmTransfer,
    ConsentDelivery,
    DeclineDelivery,
    DispatchTransfer,
    Exported,
    ExportMessage,
    FileTracingRequest,
    ForwardMessage,
    NotifyDisclosure,
    NotifyTransfer,
    OperationView,
    ProposeDelivery,
    ReceiveTransfer,
    RecordHandover,
    RecordInterception,
    RequestConsent,
    TraceStatsView,
    TraceView,
    TransferView,
)
from services.node.application.trail import AuditTrail
from services.node.attachments import Progress
from services.node.core import NodeCore, RebuildRefused
from services.node.settings import NodeSettings
from services.node.store import Store


def load_settings(home: str | Path | None) -> NodeSettings:
    """A node home's settings (``node.json`` and CIFTA_NODE_*)."""
    if not home:
        raise ApplicationError("node.no_home")
    path = Path(home)
    if not (path / "node.json").exists():
        raise ApplicationError("node.not_a_home", home=str(path))
    try:
        return NodeSettings.load(path)
    except ValidationError as exc:
        first = exc.errors()[0]
        # the settings' own validators say what they take (log levels, say); else the type
        problem = str(first.get("ctx", {}).get("error", "")) or first["type"]
        field = ".".join(str(p) for p in first["loc"])
        raise ApplicationError(
            "node.bad_settings", home=str(path), field=field, problem=problem
        ) from None


def open_node(home: str | Path | None, environ: Mapping[str, str] | None = None) -> Application:
    """Open a node's home (keys, directory, store) for officers' commands."""
    environ = os.environ if environ is None else environ
    s = load_settings(home)
    passphrase = None
    if s.passphrase_env:
        value = environ.get(s.passphrase_env)
        if value is None:
            raise ApplicationError("node.passphrase_unset", variable=s.passphrase_env)
        passphrase = value.encode()
    try:
        keys = NodeKeys.load(s.keys_path, passphrase)
    except KeyFileError as exc:
        raise ApplicationError(
            "node.keys_unreadable", reason=exc.reason, file=str(s.keys_path), **exc.params
        ) from None
    try:
        root = RootPublicKey.load(s.root_path)
    except DirectoryError:
        raise ApplicationError(
            "node.directory_unreadable", reason="root", file=str(s.root_path)
        ) from None
    try:
        directory = DirectoryTrust(root, cache=s.directory_path).directory()
    except DirectoryError:  # unreadable, or an entry whose signature does not verify
        raise ApplicationError(
            "node.directory_unreadable", reason="cache", file=str(s.directory_path)
        ) from None
    core = NodeCore(
        keys,
        directory,
        Store(s.store_path),
        clock=node_app.system_clock,
        tracing_policy=s.tracing_policy(),
    )
    return Application(core, s)


def node_alerts(home: str | Path | None) -> list[Alert]:
    """The alerts a node raised for its operator (no keys needed: the store alone)."""
    store = Store(load_settings(home).store_path)
    try:
        return [Alert(at=at, source=src, detail=d) for at, src, d in store.alerts()]
    finally:
        store.close()


class Application:
    """What an officer or operator does at one node. Front ends hold no procedure logic: they
    build a command, call one method, render the answer or the error's code."""

    def __init__(self, core: NodeCore, settings: NodeSettings | None = None) -> None:
        self.core = core
        self.settings = settings  # the home's, where it was opened from one (the audit trail)

    @property
    def party(self) -> str:
        return self.core.party

    def close(self) -> None:
        self.core.store.close()

    def states(self) -> list[str]:
        """The states on the network (the directory's), this one excepted."""
        return sorted(p for p in self.core.directory.entries if p != self.party)

    # -- messages --------------------------------------------------------------------------------

    def send(self, cmd: SendMessage) -> Queued:
        self._no_files(cmd)
        return messaging.send(self.core, cmd)

    def reply(self, cmd: ReplyMessage) -> Queued:
        return messaging.reply(self.core, cmd)

    def inbox(self, q: InboxQuery) -> list[MessageSummary]:
        return messaging.inbox(self.core, q)

    def thread(self, case_id: str) -> list[MessageSummary]:
        return messaging.thread(self.core, case_id)

    def show(self, msg_id: str, officer: OfficerIdentity) -> MessageView:
        return messaging.show(self.core, msg_id, officer)

    def summary(self, msg_id: str) -> MessageSummary:
        """One message's metadata (its handling code among them), without opening it."""
        from services.node.application.plumbing import resolve

        return messaging.summary(resolve(self.core, msg_id))

    def status(self, msg_id: str) -> tuple[MessageSummary, list[RecipientStatusView]]:
        return messaging.status(self.core, msg_id)

    def has_message(self, msg_id: str) -> bool:
        """Whether this node holds the message (sent or received) of this full id."""
        return self.core.store.has_message(msg_id)

    def resolve_id(self, text: str) -> str:
        """A message's full id from what a person typed (a unique prefix, a short id)."""
        from services.node.application.plumbing import resolve

        return resolve(self.core, text).msg_id

    @staticmethod
    def kinds() -> list[KindInfo]:
        return messaging.kinds()

    @staticmethod
    def template(kind: str, *, example: bool = False) -> Template:
        return messaging.template(kind, example=example)

    # -- tracing (Art. XIII.3) -------------------------------------------------------------------

    def file_trace(self, cmd: FileTracingRequest) -> Queued:
        self._no_files(cmd)
        return tracing.file_request(self.core, cmd)

    def acknowledge_trace(self, cmd: AcknowledgeTrace) -> Queued:
        return tracing.acknowledge(self.core, cmd)

    def answer_trace(self, cmd: AnswerTrace) -> Queued:
        return tracing.answer(self.core, cmd)

    def traces(self, *, open_only: bool = False) -> list[TraceView]:
        return queries.traces(self.core, open_only=open_only)

    def trace_stats(self) -> list[TraceStatsView]:
        return queries.trace_stats(self.core)

    # -- licensed transfers (Art. IX) ------------------------------------------------------------

    def notify_transfer(self, cmd: NotifyTransfer) -> Queued:
        return tracing.notify_transfer(self.core, cmd)

    def confirm_transfer(self, cmd: ConfirmTransfer) -> Queued:
        return tracing.confirm_transfer(self.core, cmd)

    def dispatch_transfer(self, cmd: DispatchTransfer) -> Queued:
        return tracing.dispatch_transfer(self.core, cmd)

    def receive_transfer(self, cmd: ReceiveTransfer) -> Queued:
        return tracing.receive_transfer(self.core, cmd)

    def transfers(self) -> list[TransferView]:
        return queries.transfer_list(self.core)

    # -- controlled deliveries (Art. XVIII) ------------------------------------------------------

    def propose_delivery(self, cmd: ProposeDelivery) -> Queued:
        return deliveries.propose(self.core, cmd)

    def consent_delivery(self, cmd: ConsentDelivery) -> Queued:
        return deliveries.consent(self.core, cmd)

    def decline_delivery(self, cmd: DeclineDelivery) -> Queued:
        return deliveries.decline(self.core, cmd)

    def record_handover(self, cmd: RecordHandover) -> Queued:
        return deliveries.handover(self.core, cmd)

    def record_interception(self, cmd: RecordInterception) -> Queued:
        return deliveries.intercept(self.core, cmd)

    def close_delivery(self, cmd: CloseDelivery) -> Queued:
        return deliveries.close(self.core, cmd)

    def operations(self) -> list[OperationView]:
        return queries.operations(self.core)

    def operation(self, operation_id: str, proposer: str | None = None) -> OperationView:
        op = deliveries.find_operation(self.core, operation_id, proposer)
        return queries.operation_view(op)

    # -- Article XII -----------------------------------------------------------------------------

    def request_consent(self, cmd: RequestConsent) -> Queued:
        return deliveries.request_consent(self.core, cmd)

    def answer_consent(self, cmd: AnswerConsent) -> Queued:
        return deliveries.answer_consent(self.core, cmd)

    def notify_disclosure(self, cmd: NotifyDisclosure) -> Queued:
        return deliveries.notify_disclosure(self.core, cmd)

    def forward(self, cmd: ForwardMessage) -> Queued:
        """Forward a message without attachments (one with them: ``forward_attached``)."""
        return deliveries.forward(self.core, cmd)

    def forwards_files(self, msg_id: str) -> bool:
        """Whether forwarding this received message stores files at the hub first (it has
        attachments): then it goes through ``forward_attached``, which is async."""
        return deliveries.forwards_files(self.core, msg_id)

    async def forward_attached(
        self, cmd: ForwardMessage, progress: Progress | None = None
    ) -> Queued:
        """Forward any received message: its files, if it has any, stored at the hub for the new
        states (from this node's own copies) before the copy is queued; ``progress(done,
        total)`` as bytes go up."""
        if not self.forwards_files(cmd.msg_id):
            return self.forward(cmd)  # nothing to store: no hub, no home needed
        return await attachments.forward(
            self.core, self._home_settings(), cmd, progress or (lambda done, total: None)
        )

    def export(self, cmd: ExportMessage, write: Callable[[Exported], None]) -> Exported:
        return deliveries.export(self.core, cmd, write)

    async def audit_trail(self, msg_id: str) -> AuditTrail:
        """The message's audit trail, each inclusion proof checked here (asks the audit service
        over the hub)."""
        if self.settings is None:
            raise ApplicationError("node.no_home")
        return await trail.audit_trail(self.settings, self.resolve_id(msg_id))

    # -- attachments (photographs of markings, licences, scans) -------------------------------

    async def send_attached(
        self, cmd: SendMessage | FileTracingRequest, progress: Progress | None = None
    ) -> Queued:
        """Send a message or a tracing request with its files: each stored at the hub for every
        recipient before the message is queued; ``progress(done, total)`` as bytes go up."""
        return await attachments.send(
            self.core, self._home_settings(), cmd, progress or (lambda done, total: None)
        )

    def attachments(self, msg_id: str, officer: OfficerIdentity) -> list[AttachmentView]:
        """A message's attachments and whether this node holds each (reading is recorded)."""
        return attachments.attachments(self.core, self._home_settings(), msg_id, officer)

    def attachments_shown(self, view: MessageView) -> list[AttachmentView]:
        """The attachments of a message just opened (``show``), without opening it again."""
        manifests = [AttachmentManifest.model_validate(a) for a in view.body.get("attachments", [])]
        if not manifests:
            return []
        return attachments.views(self.core, self._home_settings(), view.summary.msg_id, manifests)

    def open_attachment(
        self, msg_id: str, name: str, officer: OfficerIdentity
    ) -> tuple[AttachmentView, Iterator[bytes]]:
        """One attachment's plaintext, chunk by chunk, verified (reading is recorded)."""
        return attachments.plaintext(self.core, self._home_settings(), msg_id, name, officer)

    def save_attachment(self, cmd: SaveAttachment) -> SavedAttachment:
        return attachments.save(self.core, self._home_settings(), cmd)

    def _home_settings(self) -> NodeSettings:
        if self.settings is None:
            raise ApplicationError("node.no_home")
        return self.settings

    @staticmethod
    def _no_files(cmd: SendMessage | FileTracingRequest) -> None:
        if cmd.attachments and not cmd.dry_run:  # the files go up first: an async upload
            raise ValueError("a command with attachments is sent with send_attached()")

    # -- across procedures -----------------------------------------------------------------------

    def deadlines(self) -> list[Deadline]:
        return queries.deadlines(self.core)

    def rebuild_casework(self) -> tuple[int, int]:
        """Make the procedures' state again from the stored messages; (applied, skipped)."""
        try:
            return self.core.rebuild_casework()
        except RebuildRefused as exc:
            raise ApplicationError(
                "rebuild.refused", count=exc.count, reasons=exc.reasons
            ) from None
